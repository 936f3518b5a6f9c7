#!/usr/bin/env bash
# Tracking benchmarks of issue 9 (the LD_PRELOAD shim), all in overlay sandboxes over the real
# root (needs root):
#  1. overhead: the install phase of zlib and xz (recipes' own prefix /usr), four arms side by
#     side, alternating, RUNS runs each:
#       untracked  the same package-user build by hand (bench/untracked.sh), no tracking at all;
#       porg       the same, its install phase under `porg -lp` (porg's LD_PRELOAD logger);
#       inotify    `upm install` with the shim off (UPM_SHIM=0): the watcher alone;
#       shim       `upm install` as shipped: shim + watcher.
#     "script" is the install phase's script alone (for upm: the real run as upm's log times it,
#     watcher running, shim loaded), the figure the 5% goal is about; upm's whole install stage
#     (`timings.install_ms`: trial, takeover, watcher set-up, script, hashing, root steps,
#     database) is printed beside it.
#  2. accuracy: for every recipe in recipes/ (the packages of ../shared/sources), manifest
#     recall and precision against the overlay's ground truth (bench/accuracy.py) for the shim
#     alone, the watcher alone and both (one upm install; `upm info --tracking` says which
#     signal saw each path: "alone" is the manifest's paths that signal saw), and for porg
#     (bench/porg_build.sh, its own sandbox).
# usage: bench/shim.sh [overhead|accuracy [PKG...]|all]   (RUNS=5 JOBS=2 PKGS="zlib xz")
set -euo pipefail
cd "$(dirname "$0")/.."
part=${1:-all}
RUNS=${RUNS:-5}
JOBS=${JOBS:-2}
command -v porg >/dev/null || { apt-get update -qq && apt-get install -y -qq porg >/dev/null; }
cargo build --release -q
UPM=$PWD/target/release/upm
SRC=$(realpath ../shared/sources)
work=$(mktemp -d /var/tmp/upm-bench-XXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
field() { sed -n "s/.*[ ]$1=\([0-9]*\).*/\1/p" "$2"; }

# Runs "$@" (a sandbox) with its stderr kept in $1.err; on failure prints why and stops.
sandboxed() {
  local log=$1
  shift
  if ! "$@" 2>"$log.err"; then
    echo "failed: $*" >&2
    tail -20 "$log.err" >&2
    return 1
  fi
}

if [[ $part == overhead || $part == all ]]; then
  echo "== 1. install phase: untracked, porg -l, inotify only, shim + inotify (prefix /usr, over the"
  echo "   sandbox's real root, $RUNS runs per arm, -j$JOBS, alternating arms; medians)"
  for pkg in ${PKGS:-zlib xz}; do
    recipe=$PWD/recipes/$pkg.toml
    # Off the clock: one tracked run (also a warm-up) whose manifest tells the untracked arms
    # which existing paths to take over by hand (see bench/untracked.sh).
    sandboxed "$work/$pkg.prep" "$UPM" sandbox -- sh -c \
      "sh $PWD/bench/tracked.sh $UPM $recipe $SRC $JOBS >&2 && $UPM --json files $pkg | sed 's/^/FILES /'" \
      | sed -n 's/^FILES //p' >"$work/$pkg.files.json"
    python3 -c 'import json,sys; [print(e["path"]) for e in json.load(open(sys.argv[1]))]' \
      "$work/$pkg.files.json" >"$work/$pkg.take"
    arms=(untracked porg inotify shim)
    for arm in "${arms[@]}"; do : >"$work/$pkg.$arm"; done
    for i in $(seq "$RUNS"); do
      # Rotate the order each run, so drift in the machine's speed hits every arm alike.
      for k in 0 1 2 3; do
        arm=${arms[$(((i + k) % 4))]}
        case $arm in
          untracked) cmd=(env PORG=0 sh "$PWD/bench/untracked.sh" "$UPM" "$recipe" "$SRC" "$JOBS" "$work/$pkg.take") ;;
          porg) cmd=(env PORG=1 sh "$PWD/bench/untracked.sh" "$UPM" "$recipe" "$SRC" "$JOBS" "$work/$pkg.take") ;;
          inotify) cmd=(env UPM_SHIM=0 sh "$PWD/bench/tracked.sh" "$UPM" "$recipe" "$SRC" "$JOBS") ;;
          shim) cmd=(env UPM_SHIM=1 sh "$PWD/bench/tracked.sh" "$UPM" "$recipe" "$SRC" "$JOBS") ;;
        esac
        sandboxed "$work/$pkg.$arm.run" "$UPM" sandbox -- "${cmd[@]}" \
          | sed -n '/^TIMES /p' >>"$work/$pkg.$arm"
      done
    done
    for arm in "${arms[@]}"; do
      if [[ $(wc -l <"$work/$pkg.$arm") -ne $RUNS ]]; then
        echo "$pkg $arm: some runs printed no times; see $work (kept)" >&2
        trap - EXIT
        exit 1
      fi
    done
    base=$(field script_ms "$work/$pkg.untracked" | median)
    echo "-- $pkg"
    for arm in "${arms[@]}"; do
      s=$(field script_ms "$work/$pkg.$arm" | median)
      f=$(field script_ms "$work/$pkg.$arm" | sort -n | head -1)
      st=$(field install_ms "$work/$pkg.$arm" | median)
      awk -v a="$arm" -v s="$s" -v f="$f" -v b="$base" -v st="$st" 'BEGIN {
        printf "   %-9s script %6.0f ms  ratio to untracked %.3f  (fastest %6.0f ms)   whole install stage %6.0f ms\n", a, s, s/b, f, st }'
    done
    echo "   runs: $(for arm in "${arms[@]}"; do echo -n "$arm=$(field script_ms "$work/$pkg.$arm" | tr '\n' ',') "; done)"
  done
fi

if [[ $part == accuracy || $part == all ]]; then
  echo "== 2. manifest recall/precision against the overlay's ground truth (run minus baseline upper"
  echo "   directory, bench/accuracy.py): shim alone, inotify alone, both (upm), and porg"
  sandboxed "$work/base" "$UPM" sandbox --keep "$work/base-upm" -- "$UPM" init >/dev/null
  sandboxed "$work/base" "$UPM" sandbox --keep "$work/base-porg" -- true >/dev/null
  for recipe in recipes/*.toml; do
    pkg=$(basename "$recipe" .toml)
    if [[ $# -gt 1 ]] && [[ " ${*:2} " != *" $pkg "* ]]; then continue; fi
    d=$work/acc-$pkg
    if ! "$UPM" sandbox --keep "$d" -- sh -c "$UPM init >/dev/null && \
      $UPM install $PWD/$recipe --sources-dir $SRC --no-check -j $JOBS >/dev/null && \
      $UPM --json files $pkg > /var/tmp/upm-files.json && \
      $UPM --json info $pkg --tracking > /var/tmp/upm-tracking.json" >/dev/null 2>"$work/$pkg.upm.err"; then
      echo "$pkg: upm install failed:"
      tail -20 "$work/$pkg.upm.err"
      rm -rf "$d"
      continue
    fi
    # The manifest as each signal alone would have given it: its paths that signal saw.
    python3 - "$d/upper/var/tmp" <<'PY'
import json, sys
d = sys.argv[1]
files = json.load(open(f"{d}/upm-files.json"))
rows = {r["path"]: r for r in json.load(open(f"{d}/upm-tracking.json"))["tracking"]}
for sig in ("shim", "inotify"):
    json.dump([e for e in files if rows.get(e["path"], {}).get(sig)], open(f"{d}/upm-{sig}.json", "w"))
PY
    for sig in shim inotify files; do
      r=$(python3 bench/accuracy.py "$work/base-upm/upper" "$d/upper" "$d/upper/var/tmp/upm-$sig.json")
      printf '%-6s %-7s %s\n' "$pkg" "${sig/files/both}" "$r"
    done
    rm -rf "$d"
    d=$work/porg-$pkg
    if ! "$UPM" sandbox --keep "$d" -- sh "$PWD/bench/porg_build.sh" "$UPM" "$PWD/$recipe" "$SRC" "$JOBS" \
      >/dev/null 2>"$work/$pkg.porg.err"; then
      echo "$pkg: porg build failed:"
      tail -20 "$work/$pkg.porg.err"
      rm -rf "$d"
      continue
    fi
    r=$(python3 bench/accuracy.py "$work/base-porg/upper" "$d/upper" "$d/upper/var/tmp/porg-files.txt" --porg)
    printf '%-6s %-7s %s\n' "$pkg" porg "$r"
    rm -rf "$d"
  done
fi
