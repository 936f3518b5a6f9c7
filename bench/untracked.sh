#!/bin/sh
# The untracked arm of bench/install.sh, run inside `upm sandbox`: the same package-user build
# upm does — package user, unpack as that user, the recipe's phases as that user with upm's
# wrappers first in PATH, ldconfig as root afterwards if the install asked for it — by hand,
# with no watcher and no database. The clock runs from after `upm init` and reading the recipe
# (as in the tracked arm) to the end. Prints the times.
# usage: untracked.sh UPM RECIPE SOURCES_DIR JOBS
set -eu
upm=$1 recipe=$2 sources=$3 jobs=$4
"$upm" init >/dev/null
work=$(mktemp -d)
chmod 755 "$work"
"$upm" --json recipe show "$recipe" --set vars.prefix=/usr/local | python3 -c "
import json, sys
d = json.load(sys.stdin)
w = sys.argv[1]
open(w + '/name', 'w').write(d['package']['name'])
open(w + '/file', 'w').write(d['source']['file'])
for phase in ('prepare', 'configure', 'compile', 'install'):
    script = d['phases'].get(phase)
    if script:
        open(w + '/' + phase, 'w').write(script)
" "$work"
name=$(cat "$work/name") file=$(cat "$work/file")
home=/usr/src/$name
as_user() {
  env -i HOME="$home" USER="$name" LOGNAME="$name" SHELL=/bin/sh LC_ALL=POSIX MAKEFLAGS="-j$jobs" \
    PATH=/var/lib/upm/wrap:/usr/bin:/bin:/usr/sbin:/sbin:/usr/local/bin \
    UPM_WRAP_DIR=/var/lib/upm/wrap UPM_STEPS="$home/steps" \
    setpriv --reuid="$name" --regid="$name" --init-groups "$@"
}
t0=$(date +%s%N)
"$upm" user add "$name" >/dev/null
cd "$home"
as_user mkdir -p build
cd build
as_user tar xf "$sources/$file"
cd "$(ls -d */ | head -1)"
for phase in prepare configure compile install; do
  [ -f "$work/$phase" ] || continue
  [ "$phase" = install ] && ti=$(date +%s%N)
  as_user sh -e "$work/$phase" >"$home/$phase.log" 2>&1
  [ "$phase" = install ] && ti=$(( $(date +%s%N) - ti ))
done
if grep -q '^ldconfig' "$home/steps" 2>/dev/null; then ldconfig; fi
t=$(( $(date +%s%N) - t0 ))
echo "TIMES total_ms=$((t / 1000000)) install_ms=$((ti / 1000000))"
