#!/usr/bin/env bash
# Install benchmarks (issues 3 and 7), all in overlay sandboxes over the real root (needs root):
#  1. overhead: whole build+install and the install phase, tracked (`upm install`,
#     bench/tracked.sh) vs untracked (the same package-user build by hand, bench/untracked.sh),
#     for zlib and xz with the recipes' own prefix /usr; the tracked install phase is upm's
#     `timings.install_ms` (trial, takeover, watcher set-up, the phase, event collection,
#     hashing, root steps, database), the untracked one the script plus ldconfig as root, with
#     the takeover done by hand off the clock (see untracked.sh). Two cases: over the host's
#     files, and over the package's own "temporary tools" copy (bench/temp_tools.sh: built as
#     root without upm, chowned to root, as LFS chapter 7 leaves them): the replacement's cost.
#  2. accuracy: manifest recall and precision with prefix /usr over the real root; the truth is
#     the sandbox's upper directory beyond a baseline's, walked by bench/accuracy.py (not upm's
#     summary); for upm and for porg (LD_PRELOAD logging, its own sandbox);
#  3. owner: lookup latency on a database of 100,000 files in 500 packages, `upm owner` vs
#     `porg -q` on the same files (porg logged them itself).
# A failing sandbox's error output is kept and its end printed.
# usage: bench/install.sh [overhead|accuracy [PKG...]|owner|all]
#   (RUNS=5 JOBS=2 PKGS="zlib xz" by default; PKGS is for overhead)
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

# Runs "$@" (a sandbox) with its stderr kept in $1.err; on failure prints why and stops.
# usage: sandboxed LOG CMD...
sandboxed() {
  local log=$1
  shift
  if ! "$@" 2>"$log.err"; then
    echo "failed: $*" >&2
    tail -20 "$log.err" >&2
    return 1
  fi
}

field() { sed -n "s/.*[ ]$1=\([0-9]*\).*/\1/p" "$2"; }

if [[ $part == overhead || $part == all ]]; then
  echo "== 1. tracked (upm install) vs untracked (the same package-user build by hand), prefix /usr"
  echo "   over the sandbox's real root, $RUNS runs per arm, -j$JOBS, alternating arms; medians"
  for pkg in ${PKGS:-zlib xz}; do
    recipe=$PWD/recipes/$pkg.toml
    # Off the clock: the package's "temporary tools" copy (built as root without upm, staged),
    # and one tracked run (also a warm-up) whose manifest tells the untracked arm which
    # existing paths to take over by hand.
    sandboxed "$work/$pkg.tt" "$UPM" sandbox --keep "$work/tt-$pkg" -- \
      sh "$PWD/bench/temp_tools.sh" "$UPM" "$recipe" "$SRC" "$JOBS" /var/tmp/tt-stage
    tt=$work/tt-$pkg/upper/var/tmp/tt-stage
    sandboxed "$work/$pkg.prep" "$UPM" sandbox -- sh -c \
      "sh $PWD/bench/tracked.sh $UPM $recipe $SRC $JOBS >&2 && $UPM --json files $pkg | sed 's/^/FILES /'" \
      | sed -n 's/^FILES //p' >"$work/$pkg.files.json"
    python3 -c 'import json,sys; [print(e["path"]) for e in json.load(open(sys.argv[1]))]' \
      "$work/$pkg.files.json" >"$work/$pkg.take"
    { cat "$work/$pkg.take"; (cd "$tt" && find . ! -type d | sed 's|^\.||'); } | sort -u >"$work/$pkg.take-tt"
    for case in plain replace; do
      : >"$work/$pkg.$case.untracked"
      : >"$work/$pkg.$case.tracked"
    done
    for i in $(seq "$RUNS"); do
      # The arms alternate (and swap order each run), so drift in the machine's speed hits both.
      arms="untracked tracked"
      ((i % 2)) || arms="tracked untracked"
      for case in plain replace; do
        for arm in $arms; do
          if [[ $case == plain ]]; then extra=(); take=$work/$pkg.take; else extra=("$tt"); take=$work/$pkg.take-tt; fi
          if [[ $arm == tracked ]]; then args=("$UPM" "$recipe" "$SRC" "$JOBS" "${extra[@]}")
          else args=("$UPM" "$recipe" "$SRC" "$JOBS" "$take" "${extra[@]}"); fi
          sandboxed "$work/$pkg.$case.$arm" "$UPM" sandbox -- sh "$PWD/bench/$arm.sh" "${args[@]}" \
            | sed -n '/^TIMES /p' >>"$work/$pkg.$case.$arm"
        done
      done
    done
    for case in plain replace; do
      T=$work/$pkg.$case.tracked U=$work/$pkg.$case.untracked
      if [[ $(wc -l <"$T") -ne $RUNS || $(wc -l <"$U") -ne $RUNS ]]; then
        echo "$pkg $case: some runs printed no times; see $work (kept)" >&2
        trap - EXIT
        exit 1
      fi
      echo "-- $pkg, $([[ $case == plain ]] && echo "over the host's files" || echo "replacing its own temporary-tools copy")"
      echo "   tracked runs:   $(tr '\n' ';' <"$T" | sed 's/TIMES //g')"
      echo "   untracked runs: $(tr '\n' ';' <"$U" | sed 's/TIMES //g')"
      tt_=$(field total_ms "$T" | median) tu=$(field total_ms "$U" | median)
      it=$(field install_ms "$T" | median) iu=$(field install_ms "$U" | median)
      mt=$(field total_ms "$T" | sort -n | head -1) mu=$(field total_ms "$U" | sort -n | head -1)
      mit=$(field install_ms "$T" | sort -n | head -1) miu=$(field install_ms "$U" | sort -n | head -1)
      ct=$(field cpu_ms "$T" | median) cu=$(field cpu_ms "$U" | median)
      tr_=$(field trial_ms "$T" | median) sc=$(field script_ms "$T" | median) lc=$(field ldconfig_ms "$T" | median)
      rest=$(paste <(field install_ms "$T") <(field trial_ms "$T") <(field script_ms "$T") <(field ldconfig_ms "$T") \
        | awk '{print $1 - $2 - $3 - $4}' | median)
      awk -v tt="$tt_" -v tu="$tu" -v it="$it" -v iu="$iu" -v mt="$mt" -v mu="$mu" -v mit="$mit" -v miu="$miu" \
        -v ct="$ct" -v cu="$cu" -v tr="$tr_" -v sc="$sc" -v lc="$lc" -v rest="$rest" 'BEGIN {
        printf "   whole build:   tracked %7.0f ms  untracked %7.0f ms  ratio %.3f   (fastest runs: %.0f / %.0f ms, %.3f)\n", tt, tu, tt/tu, mt, mu, mt/mu
        printf "   whole build, CPU time (user+sys of all processes): tracked %7.0f ms  untracked %7.0f ms  ratio %.3f\n", ct, cu, ct/cu
        printf "   install phase: tracked %7.0f ms  untracked %7.0f ms  ratio %.3f   (fastest runs: %.0f / %.0f ms, %.3f)\n", it, iu, it/iu, mit, miu, mit/miu
        printf "   tracked install phase (medians): trial %.0f ms, script %.0f ms, ldconfig %.0f ms, the rest %.0f ms\n", tr, sc, lc, rest }'
    done
  done
fi

if [[ $part == accuracy || $part == all ]]; then
  echo "== 2. manifest recall/precision, prefix /usr over the real root; truth from the sandboxes'"
  echo "   upper directories (run minus baseline), not from upm (upm vs porg)"
  # The baselines: the same preparation alone, each in a kept sandbox.
  sandboxed "$work/base" "$UPM" sandbox --keep "$work/base-upm" -- "$UPM" init >/dev/null
  sandboxed "$work/base" "$UPM" sandbox --keep "$work/base-porg" -- true >/dev/null
  for recipe in recipes/*.toml; do
    pkg=$(basename "$recipe" .toml)
    # bench/install.sh accuracy PKG...: only those.
    if [[ $# -gt 1 ]] && [[ " ${*:2} " != *" $pkg "* ]]; then continue; fi
    d=$work/acc-$pkg
    if ! "$UPM" sandbox --keep "$d" -- sh -c "$UPM init >/dev/null && \
      $UPM install $PWD/$recipe --sources-dir $SRC --no-check -j $JOBS >/dev/null && \
      $UPM --json files $pkg > /var/tmp/upm-files.json" >/dev/null 2>"$work/$pkg.upm.err"; then
      echo "$pkg: upm install failed:"
      tail -20 "$work/$pkg.upm.err"
      rm -rf "$d"
      continue
    fi
    u=$(python3 bench/accuracy.py "$work/base-upm/upper" "$d/upper" "$d/upper/var/tmp/upm-files.json")
    rm -rf "$d"
    d=$work/porg-$pkg
    if ! "$UPM" sandbox --keep "$d" -- sh "$PWD/bench/porg_build.sh" "$UPM" "$PWD/$recipe" "$SRC" "$JOBS" \
      >/dev/null 2>"$work/$pkg.porg.err"; then
      echo "$pkg: porg build failed:"
      tail -20 "$work/$pkg.porg.err"
      rm -rf "$d"
      continue
    fi
    p=$(python3 bench/accuracy.py "$work/base-porg/upper" "$d/upper" "$d/upper/var/tmp/porg-files.txt" --porg)
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
