#!/usr/bin/env bash
# Binary package benchmark (issue 11), in overlay sandboxes over the real root (needs root),
# for xz (recipes/xz.toml, prefix /usr):
#  1. export: `upm export xz` (read back and check every file, tar, zstd, sign) against
#     `tar --zstd -c` of the same paths; time (median of RUNS) and size;
#  2. import: `upm import` on a fresh root (verify, check, plan, create the package user,
#     write, ldconfig, record) against `tar --zstd -x` of the same files there;
#  3. install from a binary host (`binhost.url` on python3's http.server on 127.0.0.1, an
#     index from `upm export --all`) against building (`upm install --build`, -j$JOBS).
# Each measured command runs in a sandbox of its own; only the command is on the clock.
# usage: bench/binpkg.sh   (RUNS=5 BUILD_RUNS=3 JOBS=2 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
BUILD_RUNS=${BUILD_RUNS:-3}
JOBS=${JOBS:-2}
cargo build --release -q
UPM=$PWD/target/release/upm
SRC=$(realpath ../shared/sources)
RECIPE=$PWD/recipes/xz.toml
work=$(mktemp -d /var/tmp/upm-bench-binpkg-XXXX)
chmod 755 "$work"
server=
cleanup() {
  [[ -n $server ]] && kill "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# Runs a shell script in a fresh sandbox; its stdout lines `T NAME MS` are the timings.
# On failure, the end of its stderr is printed.
in_sandbox() {
  local out=$work/last.err
  if ! "$UPM" sandbox "$@" 2>"$out"; then
    echo "failed: sandbox $*" >&2
    tail -20 "$out" >&2
    return 1
  fi
}

# A shell function, for the sandboxed scripts: `clock NAME CMD...` prints `T NAME MS`.
CLOCK='clock() { n=$1; shift; t0=$(date +%s%N); "$@" >/dev/null 2>/tmp/clock.err || { cat /tmp/clock.err >&2; exit 1; }; echo "T $n $(( ($(date +%s%N) - t0) / 1000000 ))"; }'

echo "== building xz once (-j$JOBS) and exporting it, in a kept sandbox"
in_sandbox --keep "$work/build" -- sh -ec "
  $CLOCK
  cd /var/tmp
  $UPM init >/dev/null
  $UPM key generate --comment bench >/dev/null
  $UPM install $RECIPE --sources-dir $SRC --no-check -j $JOBS >/dev/null 2>&1
  mkdir -p $work/out
  for i in \$(seq $RUNS); do clock export $UPM export xz -o $work/out/xz.upm.tar.zst; done
  $UPM --json files xz | python3 -c 'import json,sys; [print(f[\"path\"]) for f in json.load(sys.stdin)]' >$work/out/paths
  for i in \$(seq $RUNS); do clock tar_c tar --zstd --no-recursion -cf $work/out/xz.tar.zst -C / -T $work/out/paths; done
  $UPM export --all -o $work/out/host >/dev/null
  cp /etc/upm/signing.pub $work/out/bench.pub
" >"$work/build.times"
up=$work/build/upper$work/out
cp -r "$up" "$work/data"
d=$work/data
size() { stat -c %s "$1"; }
printf '%-28s %10s %12s\n' "" "median ms" "bytes"
printf '%-28s %10s %12s\n' "upm export xz" "$(awk '$2=="export"{print $3}' "$work/build.times" | median)" "$(size "$d/xz.upm.tar.zst")"
printf '%-28s %10s %12s\n' "tar --zstd -c (same paths)" "$(awk '$2=="tar_c"{print $3}' "$work/build.times" | median)" "$(size "$d/xz.tar.zst")"
echo "   ($(wc -l <"$d/paths") paths; the archive also holds the profile and a manifest with sha256s)"

echo "== import on a fresh root vs tar --zstd -x, $RUNS runs each"
: >"$work/import.times"
for i in $(seq "$RUNS"); do
  in_sandbox -- sh -ec "
    $CLOCK
    $UPM init >/dev/null
    $UPM key trust $d/bench.pub >/dev/null
    clock import $UPM import $d/xz.upm.tar.zst
  " >>"$work/import.times"
  in_sandbox -- sh -ec "
    $CLOCK
    clock tar_x tar --zstd -xpf $d/xz.tar.zst -C /
  " >>"$work/import.times"
done
printf '%-28s %10s\n' "upm import xz" "$(awk '$2=="import"{print $3}' "$work/import.times" | median)"
printf '%-28s %10s\n' "tar --zstd -x (same files)" "$(awk '$2=="tar_x"{print $3}' "$work/import.times" | median)"

echo "== upm install xz: from the binary host vs building (-j$JOBS)"
python3 -u -m http.server --bind 127.0.0.1 0 --directory "$d/host" >"$work/http.log" 2>&1 &
server=$!
port=
for _ in $(seq 50); do
  port=$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$work/http.log" | head -1)
  [[ -n $port ]] && break
  sleep 0.1
done
[[ -n $port ]] || { echo "http.server did not start" >&2; cat "$work/http.log" >&2; exit 1; }
: >"$work/install.times"
for i in $(seq "$BUILD_RUNS"); do
  for arm in binhost build; do
    flag=; [[ $arm == build ]] && flag=--build
    in_sandbox -- sh -ec "
      $CLOCK
      $UPM init >/dev/null
      $UPM key trust $d/bench.pub >/dev/null
      $UPM tree set /etc/upm/upm.toml binhost.url http://127.0.0.1:$port >/dev/null
      clock $arm $UPM install $RECIPE --sources-dir $SRC --no-check -j $JOBS $flag
      $UPM info xz | grep -q 'phase: *compile' && echo BUILT $arm || echo IMPORTED $arm
    " >>"$work/install.times"
  done
done
printf '%-28s %10s  (%s)\n' "from the binary host" "$(awk '$2=="binhost"{print $3}' "$work/install.times" | median)" "$(grep -c '^IMPORTED binhost' "$work/install.times") of $BUILD_RUNS imported"
printf '%-28s %10s  (%s)\n' "building (--build)" "$(awk '$2=="build"{print $3}' "$work/install.times" | median)" "$(grep -c '^BUILT build' "$work/install.times") of $BUILD_RUNS built"
