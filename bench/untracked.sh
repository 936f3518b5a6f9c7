#!/bin/sh
# The untracked arm of bench/install.sh, run inside `upm sandbox`: the same package-user build
# upm does — package user, unpack as that user, the recipe's phases as that user with upm's
# wrappers first in PATH — by hand, with no watcher and no database. Prints the times.
# usage: untracked.sh UPM RECIPE SOURCES_DIR JOBS
set -eu
upm=$1 recipe=$2 sources=$3 jobs=$4
t0=$(date +%s%N)
"$upm" init >/dev/null
json=$("$upm" --json recipe show "$recipe" --set vars.prefix=/usr/local)
field() { printf '%s' "$json" | python3 -c "import json,sys; d=json.load(sys.stdin); v=d$1; print(v if v is not None else '')"; }
name=$(field "['package']['name']")
file=$(field "['source']['file']")
"$upm" user add "$name" >/dev/null
home=/usr/src/$name
as_user() {
  env -i HOME="$home" USER="$name" LOGNAME="$name" SHELL=/bin/sh LC_ALL=POSIX MAKEFLAGS="-j$jobs" \
    PATH=/var/lib/upm/wrap:/usr/bin:/bin:/usr/sbin:/sbin:/usr/local/bin \
    UPM_WRAP_DIR=/var/lib/upm/wrap UPM_STEPS="$home/steps" \
    setpriv --reuid="$name" --regid="$name" --init-groups "$@"
}
cd "$home"
as_user mkdir -p build
cd build
as_user tar xf "$sources/$file"
cd "$(ls -d */ | head -1)"
for phase in prepare configure compile install; do
  script=$(field "['phases'].get('$phase')")
  [ -n "$script" ] || continue
  [ "$phase" = install ] && ti=$(date +%s%N)
  as_user sh -e -c "$script" >"$home/$phase.log" 2>&1
  [ "$phase" = install ] && ti=$(( $(date +%s%N) - ti ))
done
t=$(( $(date +%s%N) - t0 ))
echo "TIMES total_ms=$((t / 1000000)) install_ms=$((ti / 1000000))"
