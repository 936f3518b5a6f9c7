#!/usr/bin/env bash
# Replay overhead (issue 11): `upm replay` of five small packages (zlib, bzip2, tree, hello,
# less: a dependency chain, under /usr/local, checks off) in a fresh overlay sandbox per round;
# the overhead is the replay's wall time minus the sum of the phase times upm recorded for the
# packages (prepare/configure/compile/check/install as the package user): planning, recipe
# hashes, unpacking, the install phase's trial run, takeover, the watcher, hashing the
# manifests, the database, measuring and removing build trees. Needs root.
# usage: bench/replay.sh   (RUNS=3 JOBS=2; UPM=path/to/upm to skip the release build)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
JOBS=${JOBS:-2}
if [[ -z ${UPM:-} ]]; then
  cargo build --release -q
  UPM=$PWD/target/release/upm
fi
SRC=$(realpath "${UPM_SHARED:-../shared}/sources")
work=$(mktemp -d /var/tmp/upm-bench-replay-XXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT

mkdir "$work/set"
prev=
for pkg in zlib bzip2 tree hello less; do
  {
    echo "inherit = [\"$PWD/recipes/$pkg.toml\"]"
    echo
    echo "[package]"
    [[ -n $prev ]] && echo "depends = [\"$prev\"]"
    echo
    echo "[vars]"
    echo "prefix = \"/usr/local\""
  } >"$work/set/$pkg.toml"
  prev=$pkg
done
chmod -R a+rX "$work"

echo "== replay of zlib, bzip2, tree, hello, less: $RUNS rounds, -j$JOBS, each in a fresh sandbox"
for i in $(seq "$RUNS"); do
  if ! "$UPM" sandbox --keep "$work/sb$i" -- sh -c \
    "$UPM init >/dev/null && $UPM --json replay $work/set --sources-dir $SRC --no-check -j $JOBS >/var/tmp/replay.json" \
    >/dev/null 2>"$work/sb$i.err"; then
    echo "round $i failed:" >&2
    tail -20 "$work/sb$i.err" >&2
    exit 1
  fi
  cp "$work/sb$i/upper/var/tmp/replay.json" "$work/r$i.json"
  rm -rf "$work/sb$i"
done
python3 - "$work"/r*.json <<'PY'
import json, statistics, sys
runs = [json.load(open(f)) for f in sys.argv[1:]]
print(f"{'round':<6} {'wall s':>8} {'phases s':>9} {'overhead s':>11} {'overhead %':>11}")
for i, r in enumerate(runs, 1):
    w, ph = r["wall_seconds"], r["phase_seconds"]
    print(f"{i:<6} {w:>8.1f} {ph:>9.1f} {w - ph:>11.1f} {100 * (w - ph) / w:>10.1f}%")
print("per package (median over rounds): install time, phase time, overhead")
for n, s in enumerate(runs[0]["steps"]):
    t = statistics.median(r["steps"][n]["seconds"] for r in runs)
    p = statistics.median(r["steps"][n]["phase_ms"] / 1000 for r in runs)
    print(f"  {s['name']:<8} {t:>7.1f}s {p:>7.1f}s {t - p:>6.1f}s")
over = statistics.median(r["wall_seconds"] - r["phase_seconds"] for r in runs)
print(f"median overhead: {over:.1f}s for {len(runs[0]['steps'])} packages")
PY
