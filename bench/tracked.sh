#!/bin/sh
# The tracked arm of bench/install.sh, run inside `upm sandbox`: `upm install` of a recipe with
# its own prefix (/usr) over the sandbox's root, after `upm init`. The whole-build clock runs
# from after init to the end of `upm install`; the install-phase figure is upm's own
# `timings.install_ms` from `upm --json install`: from the trial run's start to the last
# database write (trial, takeover, watcher set-up, install phase, event collection, hashing,
# root steps with ldconfig, recording). Prints one TIMES line; on failure the end of upm's
# error output goes to stderr.
# usage: tracked.sh UPM RECIPE SOURCES_DIR JOBS [TEMP_TOOLS_DIR]
#   TEMP_TOOLS_DIR: a staged `make install` of the same package (see install.sh), put into the
#   root as root:root before init, as LFS chapter 7 leaves the temporary tools.
set -eu
upm=$1 recipe=$2 sources=$3 jobs=$4 tt=${5:-}
if [ -n "$tt" ]; then
  tar -C "$tt" -cf - . | tar -C / -xf - --no-overwrite-dir
  (cd "$tt" && find . ! -type d) | sed 's|^\.||' | while IFS= read -r p; do chown -h root:root "$p"; done
fi
"$upm" init >/dev/null
# Sets $cpu to the CPU time (user + system, ms) of this shell's finished children so far: the
# whole build's CPU time, far less disturbed than wall time by others' load on a shared machine.
cpu_now() {
  times >/tmp/cpu.times
  cpu=$(awk 'NR==2 {split($1,a,"[ms]"); split($2,b,"[ms]"); printf "%d\n", (a[1]*60+a[2]+b[1]*60+b[2])*1000}' /tmp/cpu.times)
}
cpu_now
c0=$cpu
t0=$(date +%s%N)
if ! "$upm" --json install "$recipe" --sources-dir "$sources" --no-check -j "$jobs" >/tmp/install.json 2>/tmp/install.err; then
  echo "tracked.sh: upm install failed:" >&2
  tail -20 /tmp/install.err >&2
  exit 1
fi
t=$(( $(date +%s%N) - t0 ))
cpu_now
c=$((cpu - c0))
name=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['name'])" /tmp/install.json)
"$upm" --json log "$name" >/tmp/log.json
# script_ms and ldconfig_ms: the install phase's script and ldconfig as upm's log timed them
# (parts of install_ms, as are trial_ms and the rest: takeover, watcher, hashing, database).
python3 - "$((t / 1000000))" /tmp/install.json /tmp/log.json "$c" <<'PY'
import json, sys
t = json.load(open(sys.argv[2]))["timings"]
log = {p["phase"]: p["duration_ms"] for p in json.load(open(sys.argv[3]))}
print(f"TIMES total_ms={sys.argv[1]} cpu_ms={sys.argv[4]} install_ms={t['install_ms']} trial_ms={t['trial_ms']} "
      f"script_ms={log.get('install', 0)} ldconfig_ms={log.get('ldconfig', 0)} build_ms={t['build_ms']}")
PY
