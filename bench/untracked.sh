#!/bin/sh
# The untracked arm of bench/install.sh, run inside `upm sandbox`: the same package-user build
# upm does — package user, unpack as that user, the recipe's phases (its own prefix, /usr) as
# that user with upm's wrappers first in PATH, ldconfig as root afterwards if the install asked
# for it — by hand, with no trial, no watcher and no database.
#
# The baseline for files the install replaces: on this host (and over a temporary-tools copy)
# the install overwrites existing root-owned files (zlib.h, xz's programs and man pages...),
# which a package user cannot replace. The hand-made equivalent of upm's takeover is done here
# *off the clock*: every path in TAKE (the package's manifest from an earlier tracked run, plus
# the temporary tools' files) that exists is chowned to the package user, and every existing
# directory among them or their parents that the package user cannot write becomes an install
# directory (root:install 1775), as upm would make it. So the untracked install phase is the
# script alone plus ldconfig as root, with the takeover work for free: what it costs in upm is
# all on the tracked side.
#
# The whole-build clock runs from after `upm init` and reading the recipe (as in the tracked
# arm) to the end, minus the off-clock takeover above. Prints one TIMES line; on failure the
# end of the failing phase's log goes to stderr.
# usage: untracked.sh UPM RECIPE SOURCES_DIR JOBS TAKE [TEMP_TOOLS_DIR]
#   PORG=1 in the environment: the install phase runs under `porg -lp NAME` (porg's LD_PRELOAD
#   logger, its log in the package's home) — the porg arm of bench/shim.sh.
set -eu
upm=$1 recipe=$2 sources=$3 jobs=$4 take=$5 tt=${6:-}
if [ -n "$tt" ]; then
  tar -C "$tt" -cf - . | tar -C / -xf - --no-overwrite-dir
  (cd "$tt" && find . ! -type d) | sed 's|^\.||' | while IFS= read -r p; do chown -h root:root "$p"; done
fi
"$upm" init >/dev/null
work=$(mktemp -d)
chmod 755 "$work"
"$upm" --json recipe show "$recipe" | python3 -c "
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
shell=/bin/sh
[ -x /bin/bash ] && shell=/bin/bash
as_user() {
  env -i HOME="$home" USER="$name" LOGNAME="$name" SHELL=/bin/sh LC_ALL=POSIX MAKEFLAGS="-j$jobs" \
    PATH=/var/lib/upm/wrap:/usr/bin:/bin:/usr/sbin:/sbin:/usr/local/bin \
    UPM_WRAP_DIR=/var/lib/upm/wrap UPM_STEPS="$home/steps" \
    setpriv --reuid="$name" --regid="$name" --init-groups "$@"
}
# Sets $cpu to the CPU time (user + system, ms) of this shell's finished children so far: the
# whole build's CPU time, far less disturbed than wall time by others' load on a shared machine.
cpu_now() {
  times >/tmp/cpu.times
  cpu=$(awk 'NR==2 {split($1,a,"[ms]"); split($2,b,"[ms]"); printf "%d\n", (a[1]*60+a[2]+b[1]*60+b[2])*1000}' /tmp/cpu.times)
}
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
cpu_now
c0=$cpu
t0=$(date +%s%N)
"$upm" user add "$name" >/dev/null
# Off the clock: the hand-made takeover (see above).
cpu_now
cc=$cpu
tc=$(date +%s%N)
python3 - "$take" "$name" <<'PY'
import grp, os, pwd, sys
take, name = sys.argv[1], sys.argv[2]
u = pwd.getpwnam(name)
install = grp.getgrnam("install").gr_gid
def writable(st):
    if st.st_uid == u.pw_uid:
        return st.st_mode & 0o200
    return st.st_gid in (u.pw_gid, install) and st.st_mode & 0o020
dirs = set()
for line in open(take):
    p = line.rstrip("\n")
    if not p:
        continue
    dirs.add(os.path.dirname(p))
    if not os.path.lexists(p):
        continue
    if os.path.isdir(p) and not os.path.islink(p):
        dirs.add(p)
    else:
        os.lchown(p, u.pw_uid, u.pw_gid)
for d in sorted(dirs):
    if os.path.isdir(d) and not writable(os.stat(d)):
        os.chown(d, 0, install)
        os.chmod(d, 0o1775)
PY
tc=$(( $(date +%s%N) - tc ))
cpu_now
cc=$((cpu - cc))
cd "$home"
[ "${PORG:-}" = 1 ] && as_user mkdir -p porg
as_user mkdir -p build
cd build
as_user tar xf "$sources/$file"
cd "$(ls -d */ | head -1)"
for phase in prepare configure compile install; do
  [ -f "$work/$phase" ] || continue
  run="$shell -e $work/$phase"
  if [ "$phase" = install ]; then
    [ "${PORG:-}" = 1 ] && run="porg -L $home/porg -lp $name -- $run"
    ti=$(date +%s%N)
  fi
  # shellcheck disable=SC2086 # $run is words on purpose
  if ! as_user $run >"$home/$phase.log" 2>&1; then
    echo "untracked.sh: the $phase phase failed:" >&2
    tail -20 "$home/$phase.log" >&2
    exit 1
  fi
done
ts=$(ms "$ti")
if grep -q '^ldconfig' "$home/steps" 2>/dev/null; then ldconfig; fi
ti=$(ms "$ti")
t=$(( $(date +%s%N) - t0 - tc ))
cpu_now
c=$((cpu - c0 - cc))
echo "TIMES total_ms=$((t / 1000000)) cpu_ms=$c install_ms=$ti script_ms=$ts"
