#!/usr/bin/env bash
# Mirror fault benchmarks (issue 13), fs_mirror and lsyncd side by side in one run, arms
# alternating, on one tree of FILES small files (100 a directory):
#  1. restart: the server (mirrord; lsyncd) is killed, CHANGED files are rewritten while it is
#     down, it is started again. Time from its start to a converged mirror, and the bytes it
#     moved. mirrord compares its snapshot with the disk and logs the differences; clients go on
#     with SN:. lsyncd runs its full startup rsync.
#  2. overflow: the server is stopped (SIGSTOP), WRITES files are rewritten (far more events than
#     fs.inotify.max_queued_events), it is continued (SIGCONT). Time to a converged mirror and
#     bytes. mirrord rescans against its snapshot; lsyncd resets (a full rsync) when it sees the
#     overflow.
# Bytes: fs_mirror's are the content bytes mirrord's GETs sent (its -v log); lsyncd's are those
# of the rsync it runs, measured by the same rsync with --stats --dry-run just before (content
# bytes it will copy, and the file list it sends: it walks the whole tree on both sides).
# Convergence: fs_mirror's sn reaches the serial of the last record mirrord logged; lsyncd's log
# says its startup rsync finished (or, without a reset, a dry-run rsync finds nothing to do).
# Every timed part starts after `sync`: fs_mirror's syncfs flushes the whole file system, and
# would otherwise pay for the data lsyncd's rsync or the workload left unwritten.
# Installs lsyncd and rsync with apt-get. Needs root.
# usage: bench/mirror_faults.sh [restart|overflow|all]  (FILES=100000 CHANGED=1000 WRITES=40000 ROUNDS=2)
set -euo pipefail
cd "$(dirname "$0")/.."
part=${1:-all}
FILES=${FILES:-100000}
CHANGED=${CHANGED:-1000}
WRITES=${WRITES:-40000}
ROUNDS=${ROUNDS:-2}
need() { command -v "$1" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }; }
need lsyncd lsyncd
need rsync rsync
cargo build --release -q -p upm-mirror
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release
work=$(mktemp -d /var/tmp/upm-mirror-faults-XXXX)
src=$work/src
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l | xargs printf '%.2f'; }
echo "load before: $(uptime)"
echo "fs.inotify.max_queued_events = $(cat /proc/sys/fs/inotify/max_queued_events)"

echo "== a tree of $FILES files"
python3 - "$src" "$FILES" <<'PY'
import os, sys, random
root, n = sys.argv[1], int(sys.argv[2]); random.seed(13)
for i in range(n):
    d = os.path.join(root, f"d{i // 100:04}")
    if i % 100 == 0: os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i}"), "wb") as f: f.write(os.urandom(random.randint(100, 2000)))
PY
"$BIN/fs_info" -d "$work/info" -a "t:$src" system

# Rewrite N files picked with SEED (same size, new content); prints their total size.
rewrite() {
  python3 - "$src" "$FILES" "$1" "$2" <<'PY'
import os, sys, random
root, n, k, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
random.seed(seed); total = 0
for i in random.sample(range(n), min(k, n)):
    p = os.path.join(root, f"d{i // 100:04}", f"f{i}")
    size = os.path.getsize(p)
    with open(p, "wb") as f: f.write(os.urandom(size))
    total += size
print(total)
PY
}

# --- fs_mirror ------------------------------------------------------------------------------
MD=""; FM=""
start_mirrord() {
  "$BIN/mirrord" -v --fs-info-dir "$work/info" --state-dir "$work/state" --listen "127.0.0.1:${PORT:-0}" \
    >"$work/mirrord.out" 2>>"$work/mirrord.err" &
  MD=$!; pids+=("$MD")
  until grep -q "boot init finished" "$work/mirrord.out" 2>/dev/null; do sleep 0.005; done
  PORT=$(head -1 "$work/mirrord.out"); PORT=${PORT##*:}
}
start_fs_mirror() {
  "$BIN/fs_mirror" --host 127.0.0.1 --port "$PORT" --datadir "$work/mirror" 2>>"$work/fs_mirror.err" &
  FM=$!; pids+=("$FM")
}
# The serial of the last record mirrord logged.
md_head() { grep -oE '^mirrord: [0-9]+ ' "$work/mirrord.err" | tail -1 | grep -oE '[0-9]+' || echo 0; }
sn_serial() { local s; s=$(cat "$work/mirror/sn" 2>/dev/null || true); echo "${s##*,}"; }
wait_sn() { local h=$1; until [[ -n $(sn_serial) && $(sn_serial) -ge $h ]]; do sleep 0.005; done; }
md_bytes() { # content bytes sent since log offset $1
  tail -c +"$(($1 + 1))" "$work/mirrord.err" | grep -oE ' sent [0-9]+ bytes' | awk '{s += $2} END {print s + 0}'
}
check_fm() { diff -rq "$src" "$work/mirror$src" >/dev/null && echo "identical" || echo "DIFFERS"; }

echo "== fs_mirror first sync (not timed here: bench/mirror.sh)"
start_mirrord
start_fs_mirror
until grep -q "INIT done" "$work/fs_mirror.err" 2>/dev/null || [[ -s $work/mirror/sn ]]; do sleep 0.05; done
wait_sn "$(md_head)"

# --- lsyncd ---------------------------------------------------------------------------------
LS=""
lsyncd_conf() {
  cat >"$work/lsyncd.conf" <<EOF
settings { nodaemon = true, logfile = "$work/lsyncd.log", statusFile = "$work/lsyncd.status", insist = true }
sync { default.rsync, source = "$src", target = "$work/lsyncd-dst", delay = 0 }
EOF
}
start_lsyncd() {
  lsyncd "$work/lsyncd.conf" >>"$work/lsyncd.out" 2>&1 &
  LS=$!; pids+=("$LS")
}
# Wait for the N-th "Startup of ... finished" in lsyncd's log.
startups() { local n; n=$(grep -c "Startup of .* finished" "$work/lsyncd.log" 2>/dev/null || true); echo "${n:-0}"; }
wait_startup() { until [[ $(startups) -ge $1 ]]; do sleep 0.005; done; }
rescans() { local n; n=$(grep -c "rescan done" "$work/mirrord.err" 2>/dev/null || true); echo "${n:-0}"; }
rsync_stats() { # what lsyncd's startup rsync will move: content bytes, and bytes sent (file list)
  rsync --delete --ignore-errors -ltsr --stats --dry-run "$src/" "$work/lsyncd-dst/" |
    awk -F': ' '/Total transferred file size/ {gsub(/[ ,a-z]/, "", $2); t = $2}
                /Total bytes sent/ {gsub(/[ ,]/, "", $2); s = $2}
                /Number of files:/ {split($2, a, " "); gsub(/,/, "", a[1]); n = a[1]}
                END {printf "%s content bytes, %s bytes of file list for %s paths", t + 0, s + 0, n}'
}
check_ls() { [[ -z $(rsync -ani --delete "$src/" "$work/lsyncd-dst/" | head -1) ]] && echo "identical" || echo "DIFFERS"; }

lsyncd_conf
mkdir -p "$work/lsyncd-dst"
echo "== lsyncd first sync"
start_lsyncd
wait_startup 1
kill "$LS"; wait "$LS" 2>/dev/null || true

restart_round() {
  local r=$1 bytes t0 t1 off
  echo "-- restart round $r: $CHANGED files rewritten while the server is down"
  # fs_mirror arm (lsyncd is not running).
  kill -9 "$MD" "$FM"; wait "$MD" "$FM" 2>/dev/null || true
  bytes=$(rewrite "$CHANGED" "$((100 + r))")
  off=$(stat -c %s "$work/mirrord.err")
  sync  # neither arm pays for the other's unwritten data (fs_mirror's syncfs would)
  t0=$(now)
  start_mirrord
  start_fs_mirror
  wait_sn "$(md_head)"
  t1=$(now)
  echo "fs_mirror: $(secs "$t0" "$t1") s to converge (mirrord scan + resume), $(md_bytes "$off") bytes sent for $bytes changed; $(grep -c 'INIT at serial' "$work/mirrord.err" || true) INITs in total; $(check_fm)"
  grep "resumed:" "$work/mirrord.err" | tail -1 | sed 's/^/    /'
  # lsyncd arm (mirrord stopped, so the changes below are its next round's).
  kill -STOP "$MD" "$FM"
  start_lsyncd; wait_startup "$(( $(startups) + 1 ))"; kill "$LS"; wait "$LS" 2>/dev/null || true
  bytes=$(rewrite "$CHANGED" "$((200 + r))")
  local stats; stats=$(rsync_stats)
  local n; n=$(startups)
  sync  # neither arm pays for the other's unwritten data (fs_mirror's syncfs would)
  t0=$(now)
  start_lsyncd
  wait_startup "$((n + 1))"
  t1=$(now)
  echo "lsyncd:    $(secs "$t0" "$t1") s to converge (startup rsync of the whole tree), $stats; $bytes changed; $(check_ls)"
  kill "$LS"; wait "$LS" 2>/dev/null || true
  kill -CONT "$MD" "$FM"
  # fs_mirror catches up with lsyncd's round's changes before its next round.
  sleep 1; wait_sn "$(md_head)"
}

overflow_round() {
  local r=$1 bytes t0 t1 off h
  echo "-- overflow round $r: $WRITES files rewritten while the server is stopped"
  wait_sn "$(md_head)"
  kill -STOP "$MD"
  bytes=$(rewrite "$WRITES" "$((300 + r))")
  off=$(stat -c %s "$work/mirrord.err")
  sync  # neither arm pays for the other's unwritten data (fs_mirror's syncfs would)
  t0=$(now)
  kill -CONT "$MD"
  until tail -c +"$((off + 1))" "$work/mirrord.err" | grep -q "rescan done"; do sleep 0.005; done
  h=$(md_head)
  wait_sn "$h"
  t1=$(now)
  echo "fs_mirror: $(secs "$t0" "$t1") s to converge (rescan + fetch), $(md_bytes "$off") bytes sent for $bytes changed; $(check_fm)"
  tail -c +"$((off + 1))" "$work/mirrord.err" | grep -E "rescan done" | sed 's/^/    /'
  kill -STOP "$MD" "$FM"
  start_lsyncd; wait_startup "$(( $(startups) + 1 ))"
  local n; n=$(startups)
  kill -STOP "$LS"
  bytes=$(rewrite "$WRITES" "$((400 + r))")
  local stats; stats=$(rsync_stats)
  local lines; lines=$(wc -l <"$work/lsyncd.log")
  sync  # neither arm pays for the other's unwritten data (fs_mirror's syncfs would)
  t0=$(now)
  kill -CONT "$LS"
  # An overflow makes lsyncd reset: a new startup rsync. Without one, poll for convergence.
  while :; do
    if [[ $(startups) -gt $n ]]; then how="reset, full startup rsync"; break; fi
    if ! tail -n +"$((lines + 1))" "$work/lsyncd.log" | grep -q OVERFLOW && [[ $(check_ls) == identical ]]; then
      how="no overflow seen: events followed"; break
    fi
    sleep 0.005
  done
  t1=$(now)
  echo "lsyncd:    $(secs "$t0" "$t1") s to converge ($how), $stats; $bytes changed; $(check_ls)"
  kill "$LS"; wait "$LS" 2>/dev/null || true
  # mirrord overflows on lsyncd's round's writes too: let it rescan before the next round.
  local before; before=$(rescans)
  kill -CONT "$MD" "$FM"
  until [[ $(rescans) -gt $before ]]; do sleep 0.01; done
  wait_sn "$(md_head)"
}

for r in $(seq 1 "$ROUNDS"); do
  if [[ $part == restart || $part == all ]]; then restart_round "$r"; fi
  if [[ $part == overflow || $part == all ]]; then overflow_round "$r"; fi
done
echo "load after: $(uptime)"
