#!/usr/bin/env bash
# Issue 8 benchmark: the watcher (the upm-watch crate).
#  1. Set-up on 100,041 directories: upm-watch against `inotifywait -r` (inotify-tools) on the
#     same tree, each timed from its start until it says "Watches established." (both walk the
#     tree and add one watch per directory), runs alternating, medians and their ratio.
#  2. A directory rename (a directory with 9 subdirectories, renamed back and forth) under
#     10,000 watches: the watcher of BEFORE (default: main before the watcher became its own
#     crate, whose rename rewrote every watch's path) against this one, alternating.
#  3. inotify against fanotify on the same 100,041 directories (upm-watch both times): set-up
#     time, the process's memory (VmRSS) and the kernel's (inotify watches counted in
#     /proc/PID/fdinfo, up to 1080 bytes each per inotify(7); fanotify: its marks), alternating.
#     `bench/watch.sh fanotify` runs this part alone.
# As root (it raises fs.inotify.max_user_watches when needed). ROUNDS=N sets the runs per side.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-7}
BEFORE=${BEFORE:-6627b31}
command -v inotifywait >/dev/null || { apt-get update -qq && apt-get install -y -qq inotify-tools >/dev/null; }
if [ "$(sysctl -n fs.inotify.max_user_watches)" -lt 400000 ]; then
  sysctl -qw fs.inotify.max_user_watches=400000
fi
work=$(mktemp -d /var/tmp/upm-watch-bench-XXXX)
trap 'rm -rf "$work"' EXIT

# The executable cargo builds for bench target $1 of the workspace in the current directory.
bench_exe() {
  cargo bench -q -p upm-watch --bench "$1" --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == sys.argv[1] and m.get("executable"):
        print(m["executable"])' "$1"
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# Microseconds from starting "$@" until it prints "Watches established." on stderr; then it is
# killed, and its watches go before the next run starts.
established() {
  local t0 t1 line
  t0=$(date +%s%N)
  coproc W { exec "$@" 2>&1 >/dev/null; }
  local pid=$W_PID
  while IFS= read -r line <&"${W[0]}"; do
    [[ $line == *"Watches established."* ]] && break
  done
  t1=$(date +%s%N)
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  echo $(((t1 - t0) / 1000))
}

make_tree() {
  python3 - "$work/tree" <<'PY'
import os, sys
t = sys.argv[1]
for a in range(40):
    for b in range(50):
        for c in range(49):
            os.makedirs(f"{t}/{a}/{b}/{c}")
PY
}

# "MICROSECONDS RSS_KIB INOTIFY_WATCHES FANOTIFY_MARKS" of one set-up over backend $1,
# measured while it holds its watches.
setup_mem() {
  local t0 t1 line pid rss watches marks
  t0=$(date +%s%N)
  coproc W { exec "$SETUP" --backend "$1" --established "$work/tree" 2>&1 >/dev/null; }
  pid=$W_PID
  while IFS= read -r line <&"${W[0]}"; do
    [[ $line == *"Watches established."* ]] && break
  done
  t1=$(date +%s%N)
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
  watches=$(cat /proc/"$pid"/fdinfo/* 2>/dev/null | grep -c '^inotify wd:' || true)
  marks=$(cat /proc/"$pid"/fdinfo/* 2>/dev/null | grep -c '^fanotify .*mflags' || true)
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  echo "$(((t1 - t0) / 1000)) $rss $watches $marks"
}

fanotify_arm() {
  echo "== 3. inotify against fanotify (upm-watch), $(find "$work/tree" -type d | wc -l) directories"
  : >"$work/ino" >"$work/fan"
  setup_mem inotify >/dev/null
  setup_mem fanotify >/dev/null
  for i in $(seq "$ROUNDS"); do
    if ((i % 2)); then
      setup_mem inotify >>"$work/ino"
      setup_mem fanotify >>"$work/fan"
    else
      setup_mem fanotify >>"$work/fan"
      setup_mem inotify >>"$work/ino"
    fi
  done
  python3 - "$work/ino" "$work/fan" <<'PY'
import statistics, sys
def load(f):
    rows = [list(map(int, l.split())) for l in open(f) if l.strip()]
    return [statistics.median(c) for c in zip(*rows)], rows
(ino, irows), (fan, frows) = load(sys.argv[1]), load(sys.argv[2])
print("runs (ms), inotify: ", " ".join(f"{r[0]/1000:.0f}" for r in irows))
print("runs (ms), fanotify:", " ".join(f"{r[0]/1000:.0f}" for r in frows))
print(f"median set-up: inotify {ino[0]/1000:.0f} ms, fanotify {fan[0]/1000:.0f} ms, fanotify/inotify {fan[0]/ino[0]:.2f}")
print(f"median RSS: inotify {ino[1]/1024:.1f} MiB, fanotify {fan[1]/1024:.1f} MiB")
print(f"kernel: inotify {ino[2]:.0f} watches (up to {ino[2]*1080/2**20:.0f} MiB at 1080 B each, inotify(7)), "
      f"fanotify {fan[3]:.0f} mark(s) and {fan[2]:.0f} inotify watches")
PY
}

SETUP=$(bench_exe watch_setup)
if [ "${1:-}" = fanotify ]; then
  make_tree
  fanotify_arm
  exit
fi

echo "== 1. watch set-up: upm-watch against inotifywait -r"
make_tree
echo "directories: $(find "$work/tree" -type d | wc -l)"
iw=(inotifywait -m -r -e create,close_write,attrib,delete,move "$work/tree")
ours=("$SETUP" --established "$work/tree")
established "${iw[@]}" >/dev/null
established "${ours[@]}" >/dev/null
: >"$work/ours" >"$work/iw"
for i in $(seq "$ROUNDS"); do
  if ((i % 2)); then
    established "${ours[@]}" >>"$work/ours"
    established "${iw[@]}" >>"$work/iw"
  else
    established "${iw[@]}" >>"$work/iw"
    established "${ours[@]}" >>"$work/ours"
  fi
done
a=$(median <"$work/ours")
b=$(median <"$work/iw")
echo "runs (ms), upm-watch:   $(awk '{printf "%.0f ", $1/1000}' "$work/ours")"
echo "runs (ms), inotifywait: $(awk '{printf "%.0f ", $1/1000}' "$work/iw")"
python3 -c "import sys; a,b=map(int,sys.argv[1:]); print(f'median set-up: upm-watch {a/1000:.0f} ms, inotifywait -r {b/1000:.0f} ms, ratio {a/b:.2f}')" "$a" "$b"

echo "== 2. a directory rename under 10,000 watches: $BEFORE against this tree"
AFTER=$(bench_exe watch_rename)
mkdir "$work/before"
git archive "$BEFORE" | tar -x -C "$work/before"
mkdir -p "$work/before/upm/examples"
sed -e 's|^use upm_watch::{Rules, Watcher}; // API|use upm::watch::{Rules, Watcher};|' \
    -e 's|w.read(&mut \|_\| seen += 1).expect("read"); // API|let mut v = Vec::new(); w.read(\&mut v).expect("read"); seen += v.len();|' \
    watch/benches/watch_rename.rs >"$work/before/upm/examples/watch_rename.rs"
grep -q 'upm::watch' "$work/before/upm/examples/watch_rename.rs"
grep -q 'v.len()' "$work/before/upm/examples/watch_rename.rs"
(cd "$work/before" && CARGO_TARGET_DIR="$OLDPWD/target/bench-before" cargo build -q --release -p upm --example watch_rename)
BEFORE_EXE=$PWD/target/bench-before/release/examples/watch_rename
us() { "$@" 10000 2000 | python3 -c 'import json,sys; print(json.load(sys.stdin)["us_per_rename"])'; }
: >"$work/before.txt" >"$work/after.txt"
for i in $(seq "$ROUNDS"); do
  if ((i % 2)); then
    us "$BEFORE_EXE" >>"$work/before.txt"
    us "$AFTER" >>"$work/after.txt"
  else
    us "$AFTER" >>"$work/after.txt"
    us "$BEFORE_EXE" >>"$work/before.txt"
  fi
done
echo "runs (us per rename), before: $(tr '\n' ' ' <"$work/before.txt")"
echo "runs (us per rename), after:  $(tr '\n' ' ' <"$work/after.txt")"
a=$(median <"$work/before.txt")
b=$(median <"$work/after.txt")
python3 -c "import sys; a,b=map(float,sys.argv[1:]); print(f'median per rename: before {a:.1f} us, after {b:.1f} us, before/after {a/b:.1f}x')" "$a" "$b"

fanotify_arm
