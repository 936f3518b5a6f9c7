#!/usr/bin/env bash
# Mirror benchmarks (issue 12), side by side in one run:
#  1. initial sync of 30,000 small files into an empty mirror: fs_mirror's INIT (mirrord
#     already booted; its boot is timed too) vs `rsync -a SRC/ DST/`;
#  2. latency from a file's close to its copy in the mirror at 1,000 changes/s
#     (bench/mirror_latency.py: p50/p99): fs_mirror vs lsyncd in its default rsync mode with
#     `delay = 0` and with its default delay;
#  3. watch set-up for 100,000 directories: mirrord from start to "boot init finished"
#     (watches + snapshot) vs `inotifywait -r` to "Watches established.".
# Installs lsyncd, rsync and inotify-tools with apt-get. Needs root (owners are kept).
# usage: bench/mirror.sh [sync|latency|watch|all]   (FILES=30000 DIRS=100000 RATE=1000 COUNT=3000)
set -euo pipefail
cd "$(dirname "$0")/.."
part=${1:-all}
FILES=${FILES:-30000}
DIRS=${DIRS:-100000}
RATE=${RATE:-1000}
COUNT=${COUNT:-3000}
need() { command -v "$1" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }; }
need lsyncd lsyncd
need rsync rsync
need inotifywait inotify-tools
cargo build --release -q -p upm-mirror
BIN=$PWD/target/release
LAT=$PWD/bench/mirror_latency.py
work=$(mktemp -d /var/tmp/upm-mirror-bench-XXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l | xargs printf '%.2f'; }

# Start mirrord on identity system of $work/info watching $1; sets PORT and BOOT (seconds).
start_mirrord() {
  rm -rf "$work/info" "$work/state"
  "$BIN/fs_info" -d "$work/info" -a "t:$1" system
  local t0
  t0=$(now)
  coproc MD { exec "$BIN/mirrord" --fs-info-dir "$work/info" --state-dir "$work/state" --listen 127.0.0.1:0 2>"$work/mirrord.err"; }
  pids+=("$MD_PID")
  local line
  read -r line <&"${MD[0]}"
  PORT=${line##*:}
  read -r line <&"${MD[0]}"
  [[ $line == "boot init finished" ]] || { cat "$work/mirrord.err"; exit 1; }
  BOOT=$(secs "$t0" "$(now)")
}

stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
}

# Wait until file $1 is non-empty (fs_mirror's sn after its INIT).
wait_for() { until [[ -s $1 ]]; do sleep 0.01; done; }

small_files() { # DIR COUNT: COUNT files of 100..2000 bytes, 100 a directory
  python3 - "$1" "$2" <<'PY'
import os, sys, random
root, n = sys.argv[1], int(sys.argv[2]); random.seed(12)
for i in range(n):
    d = os.path.join(root, f"d{i // 100:04}")
    if i % 100 == 0: os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i}"), "wb") as f: f.write(os.urandom(random.randint(100, 2000)))
PY
}

if [[ $part == sync || $part == all ]]; then
  echo "== initial sync of $FILES small files"
  src=$work/sync-src
  small_files "$src" "$FILES"
  sync
  t0=$(now); rsync -a "$src/" "$work/rsync-dst/"; t1=$(now); sync; t2=$(now)
  echo "rsync -a:            $(secs "$t0" "$t1") s (then sync: $(secs "$t0" "$t2") s)"
  start_mirrord "$src"
  echo "mirrord boot:        $BOOT s (walk, $((FILES / 100)) watches, snapshot of $((FILES + FILES / 100 + 1)) paths)"
  t0=$(now)
  "$BIN/fs_mirror" -v --host 127.0.0.1 --port "$PORT" --datadir "$work/mirror" 2>"$work/fs_mirror.err" &
  pids+=($!)
  until grep -q "INIT done" "$work/fs_mirror.err"; do sleep 0.01; done
  t1=$(now)
  wait_for "$work/mirror/sn"
  t2=$(now)
  echo "fs_mirror INIT:      $(secs "$t0" "$t1") s (every file in place; durable, syncfs then sn: $(secs "$t0" "$t2") s)"
  diff -r "$src" "$work/mirror$src" >/dev/null && echo "mirror identical:    yes" || echo "mirror identical:    NO"
  stop_all
  rm -rf "$src" "$work/rsync-dst" "$work/mirror"
fi

if [[ $part == latency || $part == all ]]; then
  echo "== close-to-copy latency at $RATE changes/s ($COUNT files of 200 bytes)"
  src=$work/lat-src
  mkdir -p "$src"/d{0..9}
  start_mirrord "$src"
  "$BIN/fs_mirror" --host 127.0.0.1 --port "$PORT" --datadir "$work/mirror" 2>"$work/fs_mirror.err" &
  pids+=($!)
  wait_for "$work/mirror/sn"
  echo "fs_mirror:           $(python3 "$LAT" "$src" "$work/mirror$src" "$RATE" "$COUNT" 30)"
  stop_all
  for delay in 0 default; do
    rm -rf "$src" "$work/lsyncd-dst"
    mkdir -p "$src"/d{0..9} "$work/lsyncd-dst"
    conf=$work/lsyncd.conf
    {
      echo "settings { nodaemon = true, logfile = \"$work/lsyncd.log\", statusFile = \"$work/lsyncd.status\" }"
      if [[ $delay == default ]]; then
        echo "sync { default.rsync, source = \"$src\", target = \"$work/lsyncd-dst\" }"
      else
        echo "sync { default.rsync, source = \"$src\", target = \"$work/lsyncd-dst\", delay = 0 }"
      fi
    } >"$conf"
    lsyncd "$conf" >"$work/lsyncd.out" 2>&1 &
    pids+=($!)
    # Its start-up rsync is done when the directories are there.
    until [[ -d $work/lsyncd-dst/d9 ]]; do sleep 0.05; done
    echo "lsyncd delay=$delay: $(python3 "$LAT" "$src" "$work/lsyncd-dst" "$RATE" "$COUNT" 60)"
    stop_all
  done
  rm -rf "$src" "$work/lsyncd-dst" "$work/mirror"
fi

if [[ $part == watch || $part == all ]]; then
  echo "== watch set-up for $DIRS directories"
  tree=$work/dirs
  python3 - "$tree" "$DIRS" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    os.makedirs(os.path.join(root, f"a{i // 1000:03}", f"b{(i // 50) % 20:02}", f"c{i}"), exist_ok=True)
PY
  n=$(find "$tree" -type d | wc -l)
  sync
  t0=$(now)
  coproc IW { exec inotifywait -m -r -e create "$tree" 2>&1; }
  pids+=("$IW_PID")
  while read -r line <&"${IW[0]}"; do [[ $line == "Watches established." ]] && break; done
  t1=$(now)
  echo "inotifywait -r:      $(secs "$t0" "$t1") s ($n directories)"
  stop_all
  start_mirrord "$tree"
  echo "mirrord:             $BOOT s (to \"boot init finished\": watches and a snapshot of $n paths in sqlite)"
  stop_all
fi
