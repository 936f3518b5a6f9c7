#!/usr/bin/env bash
# Issue 3 benchmarks, all in overlay sandboxes (needs root):
#  1. overhead: whole build+install and the install phase alone, tracked (`upm install`) vs
#     untracked (the same package-user build by hand, bench/untracked.sh), zlib and xz;
#  2. accuracy: manifest recall and precision against the overlay's upper directory for every
#     package in ../shared/sources, for upm and for porg (LD_PRELOAD logging, its own sandbox);
#  3. owner: lookup latency on a database of 100,000 files in 500 packages, `upm owner` vs
#     `porg -q` on the same files (porg logged them itself).
# usage: bench/install.sh [overhead|accuracy [PKG...]|owner|all] (RUNS=5 JOBS=2 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
part=${1:-all}
RUNS=${RUNS:-5}
JOBS=${JOBS:-2}
need() { command -v "$1" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }; }
need porg porg
need hyperfine hyperfine
cargo build --release -q
UPM=$PWD/target/release/upm
SRC=$(realpath ../shared/sources)
work=$(mktemp -d /var/tmp/upm-bench-XXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

if [[ $part == overhead || $part == all ]]; then
  echo "== 1. tracked (upm install) vs untracked (same package-user build by hand), $RUNS runs, -j$JOBS"
  for pkg in zlib xz; do
    : >"$work/$pkg.untracked"
    : >"$work/$pkg.tracked"
    # The arms alternate, so drift in the machine's speed hits both alike.
    for _ in $(seq "$RUNS"); do
      for arm in untracked tracked; do
        "$UPM" sandbox -- sh "$PWD/bench/$arm.sh" "$UPM" "$PWD/recipes/$pkg.toml" "$SRC" "$JOBS" 2>/dev/null \
          | sed -n 's/^TIMES //p' >>"$work/$pkg.$arm"
      done
    done
    tt=$(sed 's/.*total_ms=\([0-9]*\).*/\1/' "$work/$pkg.tracked" | median)
    tu=$(sed 's/.*total_ms=\([0-9]*\).*/\1/' "$work/$pkg.untracked" | median)
    it=$(sed 's/.*install_ms=\([0-9]*\).*/\1/' "$work/$pkg.tracked" | median)
    iu=$(sed 's/.*install_ms=\([0-9]*\).*/\1/' "$work/$pkg.untracked" | median)
    awk -v p="$pkg" -v tt="$tt" -v tu="$tu" -v it="$it" -v iu="$iu" 'BEGIN {
      printf "%-5s whole: tracked %7.0f ms  untracked %7.0f ms  ratio %.3f\n", p, tt, tu, tt/tu
      printf "%-5s install phase: tracked %5.0f ms  untracked %5.0f ms  ratio %.3f\n", p, it, iu, it/iu }'
  done
fi

if [[ $part == accuracy || $part == all ]]; then
  echo "== 2. manifest recall/precision against the overlay upper directory (upm vs porg)"
  "$UPM" sandbox --json -- "$UPM" init >"$work/base.json" 2>/dev/null
  echo '{"changes": []}' >"$work/empty.json"
  for recipe in recipes/*.toml; do
    pkg=$(basename "$recipe" .toml)
    # bench/install.sh accuracy PKG...: only those.
    if [[ $# -gt 1 ]] && [[ " ${*:2} " != *" $pkg "* ]]; then continue; fi
    d=$work/acc-$pkg
    "$UPM" sandbox --json --keep "$d" -- sh -c "$UPM init >/dev/null && \
      $UPM install $PWD/$recipe --sources-dir $SRC --set vars.prefix=/usr/local --no-check -j $JOBS >/dev/null && \
      $UPM --json files $pkg > /var/tmp/upm-files.json" >"$work/$pkg.upm.json" 2>"$work/$pkg.upm.err" \
      || { echo "$pkg: upm install failed: $(tail -3 "$work/$pkg.upm.err")"; continue; }
    u=$(python3 bench/accuracy.py "$work/base.json" "$work/$pkg.upm.json" "$d/upper/var/tmp/upm-files.json")
    rm -rf "$d"
    d=$work/porg-$pkg
    "$UPM" sandbox --json --keep "$d" -- sh "$PWD/bench/porg_build.sh" "$UPM" "$PWD/$recipe" "$SRC" "$JOBS" \
      >"$work/$pkg.porg.json" 2>"$work/$pkg.porg.err" || { echo "$pkg: porg build failed"; continue; }
    p=$(python3 bench/accuracy.py "$work/empty.json" "$work/$pkg.porg.json" "$d/upper/var/tmp/porg-files.txt" --porg)
    rm -rf "$d"
    printf '%-6s upm  %s\n%-6s porg %s\n' "$pkg" "$u" "$pkg" "$p"
  done
fi

if [[ $part == owner || $part == all ]]; then
  echo "== 3. owner lookups: 100,000 files in 500 packages, upm vs porg -q"
  R=$work/owner
  mkdir -p "$R/data" "$R/porg"
  names=$(seq -f f%g 1 200 | tr '\n' ' ')
  for i in $(seq 1 500); do
    porg -L "$R/porg" -lp "pkg$i" "mkdir -p $R/data/pkg$i && cd $R/data/pkg$i && touch $names" >/dev/null
  done
  cargo bench -q --bench owner_db -- "$R" | tee "$work/owner.json"
  hyperfine -N --warmup 5 --runs 200 --export-json "$work/hf.json" \
    "$UPM --root $R owner /data/pkg250/f100" \
    "porg -L $R/porg -q $R/data/pkg250/f100" >/dev/null
  python3 - "$work/hf.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
u, p = r[0]["median"] * 1000, r[1]["median"] * 1000
print(f"one path, whole command: upm owner {u:.2f} ms, porg -q {p:.2f} ms (median); porg/upm = {p/u:.1f}x")
PY
  paths=$(for i in $(seq 1 5 500); do echo -n "/data/pkg$i/f$((i % 200 + 1)) "; done)
  hostpaths=$(for p in $paths; do echo -n "$R$p "; done)
  hyperfine -N --warmup 3 --runs 50 --export-json "$work/hf100.json" \
    "$UPM --root $R owner $paths" "porg -L $R/porg -q $hostpaths" >/dev/null
  python3 - "$work/hf100.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
u, p = r[0]["median"] * 1000, r[1]["median"] * 1000
print(f"100 paths in one command: upm owner {u:.2f} ms, porg -q {p:.2f} ms (median); porg/upm = {p/u:.1f}x")
PY
fi
