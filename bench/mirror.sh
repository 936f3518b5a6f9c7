#!/usr/bin/env bash
# Mirror benchmarks (issue 12), side by side in one run, the arms alternating ROUNDS times
# (medians and their ratio; the machine's load is printed before and after):
#  1. initial sync of 30,000 small files into an empty mirror: fs_mirror's INIT (mirrord
#     booted once beforehand; its boot is timed too) vs `rsync -a SRC/ DST/`;
#  2. latency from a file's close to its copy in the mirror at 1,000 changes/s
#     (bench/mirror_latency.py: p50/p99): fs_mirror vs lsyncd in its default rsync mode with
#     `delay = 0` (and once with its default delay);
#  3. watch set-up for 100,000 directories: mirrord from start to "boot init finished"
#     (watches + snapshot) vs `inotifywait -r` to "Watches established.".
# Every arm writes into directories of its own and nothing is deleted before the end: on ext4
# without a journal (as here) the inode allocator skips inodes freed in the last minutes, one
# by one, so a file created right after a mass deletion costs up to a millisecond of kernel
# time (`recently_deleted` in perf) — whichever arm ran right after a deletion paid for it.
# Installs lsyncd, rsync and inotify-tools with apt-get. Needs root (owners are kept).
# usage: bench/mirror.sh [sync|latency|watch|all]
#        (FILES=30000 DIRS=100000 RATE=1000 COUNT=3000 ROUNDS=3 WORK=/var/tmp)
set -euo pipefail
cd "$(dirname "$0")/.."
part=${1:-all}
FILES=${FILES:-30000}
DIRS=${DIRS:-100000}
RATE=${RATE:-1000}
COUNT=${COUNT:-3000}
ROUNDS=${ROUNDS:-3}
need() { command -v "$1" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }; }
need lsyncd lsyncd
need rsync rsync
need inotifywait inotify-tools
cargo build --release -q -p upm-mirror
BIN=$PWD/target/release
LAT=$PWD/bench/mirror_latency.py
work=$(mktemp -d "${WORK:-/var/tmp}/upm-mirror-bench-XXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
echo "load before: $(uptime)"

now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l | xargs printf '%.2f\n'; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# CPU seconds (user + system) a process used so far.
cpu() { awk -v t="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / t}' "/proc/$1/stat"; }
# "median A s, median B s, ratio A/B" of two files of numbers.
compare() {
  local a b
  a=$(median <"$1")
  b=$(median <"$2")
  echo "median $3 $a s, $4 $b s, ratio $(echo "$a / $b" | bc -l | xargs printf '%.2f')"
}

# Start mirrord on identity system of $work/info-$2 watching $1; sets PORT, MD_PID and BOOT.
start_mirrord() {
  rm -rf "$work/info-$2" "$work/state-$2"
  "$BIN/fs_info" -d "$work/info-$2" -a "t:$1" system
  local t0
  t0=$(now)
  coproc MD { exec "$BIN/mirrord" --fs-info-dir "$work/info-$2" --state-dir "$work/state-$2" --listen 127.0.0.1:0 2>"$work/mirrord-$2.err"; }
  pids+=("$MD_PID")
  local line
  read -r line <&"${MD[0]}"
  PORT=${line##*:}
  read -r line <&"${MD[0]}"
  [[ $line == "boot init finished" ]] || { cat "$work/mirrord-$2.err"; exit 1; }
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

sync_rsync() { # ROUND
  local t0 t1
  t0=$(now)
  /usr/bin/env time -f "%U %S" -o "$work/rsync.cpu" rsync -a "$src/" "$work/rsync-dst$1/"
  t1=$(now)
  secs "$t0" "$t1" >>"$work/sync.rsync"
  echo "  rsync -a:       $(secs "$t0" "$t1") s (cpu $(awk '{printf "%.2f", $1 + $2}' "$work/rsync.cpu") s)"
}

sync_fs_mirror() { # ROUND
  local t0 t1 t2 md0 fp
  md0=$(cpu "$MD_PID")
  t0=$(now)
  "$BIN/fs_mirror" -v --host 127.0.0.1 --port "$PORT" --datadir "$work/mirror$1" 2>"$work/fs_mirror$1.err" &
  fp=$!
  pids+=("$fp")
  until grep -q "INIT done" "$work/fs_mirror$1.err"; do sleep 0.01; done
  t1=$(now)
  wait_for "$work/mirror$1/sn"
  t2=$(now)
  secs "$t0" "$t1" >>"$work/sync.fs_mirror"
  echo "  fs_mirror INIT: $(secs "$t0" "$t1") s (cpu fs_mirror $(cpu "$fp") s + mirrord $(echo "$(cpu "$MD_PID") - $md0" | bc -l | xargs printf '%.2f') s; durable, syncfs then sn: $(secs "$t0" "$t2") s)"
  kill "$fp"
  wait "$fp" 2>/dev/null || true
  diff -r "$src" "$work/mirror$1$src" >/dev/null || { echo "  the mirror is NOT identical"; exit 1; }
}

if [[ $part == sync || $part == all ]]; then
  echo "== initial sync of $FILES small files, $ROUNDS rounds"
  src=$work/sync-src
  small_files "$src" "$FILES"
  sync
  start_mirrord "$src" sync
  echo "mirrord boot: $BOOT s (walk, $((FILES / 100)) watches, snapshot of $((FILES + FILES / 100 + 1)) paths)"
  : >"$work/sync.rsync" >"$work/sync.fs_mirror"
  for r in $(seq "$ROUNDS"); do
    if ((r % 2)); then sync_fs_mirror "$r"; sync_rsync "$r"; else sync_rsync "$r"; sync_fs_mirror "$r"; fi
  done
  echo "every mirror identical: yes"
  compare "$work/sync.fs_mirror" "$work/sync.rsync" "fs_mirror INIT" "rsync -a"
  stop_all
fi

lat_fs_mirror() { # ROUND
  local src=$work/lat-fm$1
  mkdir -p "$src"/d{0..9}
  start_mirrord "$src" "lat$1"
  "$BIN/fs_mirror" --host 127.0.0.1 --port "$PORT" --datadir "$work/lat-mirror$1" 2>"$work/lat-fs_mirror$1.err" &
  pids+=($!)
  wait_for "$work/lat-mirror$1/sn"
  local out
  out=$(python3 "$LAT" "$src" "$work/lat-mirror$1$src" "$RATE" "$COUNT" 30)
  echo "$out" | sed 's/.*p99_ms=\([0-9.]*\).*/\1/' >>"$work/lat.fs_mirror"
  echo "  fs_mirror:           $out"
  stop_all
}

lat_lsyncd() { # ROUND DELAY
  local src=$work/lat-ls$1-$2 dst=$work/lat-ls-dst$1-$2 conf=$work/lsyncd$1-$2.conf
  mkdir -p "$src"/d{0..9} "$dst"
  {
    echo "settings { nodaemon = true, logfile = \"$work/lsyncd$1-$2.log\", statusFile = \"$work/lsyncd$1-$2.status\" }"
    if [[ $2 == default ]]; then
      echo "sync { default.rsync, source = \"$src\", target = \"$dst\" }"
    else
      echo "sync { default.rsync, source = \"$src\", target = \"$dst\", delay = $2 }"
    fi
  } >"$conf"
  lsyncd "$conf" >"$work/lsyncd$1-$2.out" 2>&1 &
  pids+=($!)
  # Its start-up rsync is done when the directories are there.
  until [[ -d $dst/d9 ]]; do sleep 0.05; done
  local out
  out=$(python3 "$LAT" "$src" "$dst" "$RATE" "$COUNT" 60)
  [[ $2 == 0 ]] && echo "$out" | sed 's/.*p99_ms=\([0-9.]*\).*/\1/' >>"$work/lat.lsyncd"
  echo "  lsyncd delay=$2:     $out"
  stop_all
}

if [[ $part == latency || $part == all ]]; then
  echo "== close-to-copy latency at $RATE changes/s ($COUNT files of 200 bytes), $ROUNDS rounds"
  : >"$work/lat.fs_mirror" >"$work/lat.lsyncd"
  for r in $(seq "$ROUNDS"); do
    if ((r % 2)); then lat_fs_mirror "$r"; lat_lsyncd "$r" 0; else lat_lsyncd "$r" 0; lat_fs_mirror "$r"; fi
  done
  lat_lsyncd 0 default
  a=$(median <"$work/lat.fs_mirror")
  b=$(median <"$work/lat.lsyncd")
  echo "median p99: fs_mirror $a ms, lsyncd delay=0 $b ms, ratio $(echo "$a / $b" | bc -l | xargs printf '%.2f')"
fi

if [[ $part == watch || $part == all ]]; then
  echo "== watch set-up for $DIRS directories, $ROUNDS rounds"
  tree=$work/dirs
  python3 - "$tree" "$DIRS" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    os.makedirs(os.path.join(root, f"a{i // 1000:03}", f"b{(i // 50) % 20:02}", f"c{i}"), exist_ok=True)
PY
  n=$(find "$tree" -type d | wc -l)
  sync
  : >"$work/watch.iw" >"$work/watch.mirrord"
  watch_iw() {
    local t0 t1 line
    t0=$(now)
    coproc IW { exec inotifywait -m -r -e create "$tree" 2>&1; }
    pids+=("$IW_PID")
    while read -r line <&"${IW[0]}"; do [[ $line == "Watches established." ]] && break; done
    t1=$(now)
    secs "$t0" "$t1" >>"$work/watch.iw"
    echo "  inotifywait -r: $(secs "$t0" "$t1") s ($n directories)"
    stop_all
  }
  watch_mirrord() {
    start_mirrord "$tree" watch
    echo "$BOOT" >>"$work/watch.mirrord"
    echo "  mirrord:        $BOOT s (to \"boot init finished\": watches and a snapshot of $n paths in sqlite; cpu $(cpu "$MD_PID") s)"
    stop_all
  }
  for r in $(seq "$ROUNDS"); do
    if ((r % 2)); then watch_mirrord; watch_iw; else watch_iw; watch_mirrord; fi
  done
  compare "$work/watch.mirrord" "$work/watch.iw" "mirrord" "inotifywait -r"
fi
echo "load after: $(uptime)"
