#!/bin/sh
# The tracked arm of bench/install.sh, run inside `upm sandbox`: `upm install` after `upm init`
# (the clock runs from after init to the end). Prints the times (the install phase's own time
# as upm recorded it).
# usage: tracked.sh UPM RECIPE SOURCES_DIR JOBS
set -eu
upm=$1 recipe=$2 sources=$3 jobs=$4
"$upm" init >/dev/null
t0=$(date +%s%N)
"$upm" install "$recipe" --sources-dir "$sources" --set vars.prefix=/usr/local --no-check -j "$jobs" >/dev/null 2>&1
t=$(( $(date +%s%N) - t0 ))
name=$("$upm" --json list | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['name'])")
ti=$("$upm" --json log "$name" | python3 -c "import json,sys; print([p['duration_ms'] for p in json.load(sys.stdin) if p['phase']=='install'][0])")
echo "TIMES total_ms=$((t / 1000000)) install_ms=$ti"
