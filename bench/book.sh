#!/usr/bin/env bash
# Issue 10 benchmark: `upm book import` of all of LFS and all of BLFS (../shared/lfs-book),
# release build, each timed over ROUNDS runs (median wall time), with the counts of pages
# imported (recipes written), reported (not packages, with the reason) and failed (could not
# be read), as the import's own summary line gives them.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
BOOKS=${UPM_SHARED:-../shared}/lfs-book
cargo build -q --release -p upm
work=$(mktemp -d /var/tmp/upm-book-bench-XXXX)
trap 'rm -rf "$work"' EXIT
for book in lfs blfs; do
  times=()
  for _ in $(seq "$ROUNDS"); do
    rm -rf "$work/$book"
    start=$(date +%s.%N)
    summary=$(./target/release/upm book import "$BOOKS/$book" -o "$work/$book" 2>/dev/null || true)
    end=$(date +%s.%N)
    times+=("$(echo "$end - $start" | bc)")
  done
  median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (ROUNDS + 1) / 2 ))p")
  imported=$(echo "$summary" | sed -n 's/^imported \([0-9]*\) .*/\1/p')
  reported=$(echo "$summary" | sed -n 's/.*; \([0-9]*\) page(s) reported.*/\1/p')
  failed=$(echo "$summary" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
  printf '%-5s median %.2f s over %d runs: %s imported, %s reported, %s failed\n' \
    "$book" "$median" "$ROUNDS" "$imported" "$reported" "$failed"
done
