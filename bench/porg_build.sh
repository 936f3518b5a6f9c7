#!/bin/sh
# The porg arm of the accuracy benchmark, run inside `upm sandbox`: build a recipe the classic
# way (as root, no package user) and log its install phase with porg (LD_PRELOAD). Writes the
# files porg logged to /var/tmp/porg-files.txt.
# usage: porg_build.sh UPM RECIPE SOURCES_DIR JOBS
set -eu
upm=$1 recipe=$2 sources=$3 jobs=$4
json=$("$upm" --json recipe show "$recipe")
field() { printf '%s' "$json" | python3 -c "import json,sys; d=json.load(sys.stdin); v=d$1; print(v if v is not None else '')"; }
name=$(field "['package']['name']")
file=$(field "['source']['file']")
export LC_ALL=POSIX MAKEFLAGS="-j$jobs"
mkdir -p /usr/src/build && cd /usr/src/build
tar xf "$sources/$file"
cd "$(ls -d */ | head -1)"
for phase in prepare configure compile; do
  script=$(field "['phases'].get('$phase')")
  [ -n "$script" ] || continue
  sh -e -c "$script" >/usr/src/build/$phase.log 2>&1 || { tail -20 /usr/src/build/$phase.log >&2; exit 1; }
done
field "['phases']['install']" >/usr/src/build/install.sh
porg -lp "$name" "sh -e /usr/src/build/install.sh" >/usr/src/build/install.log 2>&1 \
  || { tail -20 /usr/src/build/install.log >&2; exit 1; }
porg -f "$name" -z | sed 's/^ *//' | grep '^/' > /var/tmp/porg-files.txt || true
