#!/usr/bin/env bash
# Library-dependency benchmarks (issue 14):
#  1. rdepends: a database of 500 packages (110,500 files, 10,500 ELF files; every program
#     needs the base library, libc and three earlier packages' libraries), filled by
#     upm/benches/libs_db.rs, which times the query in process; then the `upm rdepends`
#     command on that root, for the most needed library and a typical one (hyperfine).
#  2. the ELF scan's share of an install: zlib and xz installed in an overlay sandbox;
#     upm's `timings.elf_scan_us` (reading every manifest file's dynamic section) against
#     `timings.install_ms` (the install stage) and the whole install (`seconds`).
# usage: bench/libs.sh [rdepends|scan|all]   (RUNS=3 by default for the scan)
set -euo pipefail
cd "$(dirname "$0")/.."
part=${1:-all}
RUNS=${RUNS:-3}
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null; }
cargo build --release -q
UPM=$PWD/target/release/upm
SRC=$(realpath ../shared/sources)
work=$(mktemp -d /var/tmp/upm-libs-XXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT

if [[ $part == rdepends || $part == all ]]; then
  echo "== 1. rdepends on a database of 500 packages"
  mkdir -p "$work/db"
  cargo bench -q --bench libs_db -- "$work/db"
  for pkg in p0000 p0250; do
    echo "   upm rdepends $pkg: $("$UPM" --root "$work/db" rdepends "$pkg" | wc -l) files"
  done
  hyperfine -N --warmup 3 --style basic \
    "$UPM --root $work/db rdepends p0000" "$UPM --root $work/db rdepends p0250" 2>&1 |
    grep -E "Benchmark|Time"
fi

if [[ $part == scan || $part == all ]]; then
  echo "== 2. ELF scan as a share of the install (prefix /usr, $RUNS runs each)"
  for pkg in zlib xz; do
    for i in $(seq "$RUNS"); do
      "$UPM" sandbox -- sh -c "$UPM init >/dev/null && $UPM --json install $PWD/recipes/$pkg.toml \
        --sources-dir $SRC --no-check" 2>/dev/null |
        python3 -c '
import json, sys
text = sys.stdin.read()
d = json.loads(text[text.index("{"):text.rindex("}") + 1])
t = d["timings"]
scan_ms = t["elf_scan_us"] / 1000
print("   %s: %d files, ELF scan %.2f ms = %.2f%% of the install stage (%d ms), %.3f%% of the whole install (%.1f s)"
      % (d["name"], d["files"], scan_ms, 100 * scan_ms / t["install_ms"], t["install_ms"],
         100 * scan_ms / 1000 / d["seconds"], d["seconds"]))'
    done
  done
fi
