#!/bin/sh
# The "temporary tools" copy of a package for bench/install.sh, run inside `upm sandbox`: the
# recipe's configure and compile phases as root, without upm (as LFS chapters 6-7 build them),
# then `make install` into STAGE (DESTDIR), from where each benchmark run puts it into its root
# as root:root before the clock starts.
# usage: temp_tools.sh UPM RECIPE SOURCES_DIR JOBS STAGE
set -eu
upm=$1 recipe=$2 sources=$3 jobs=$4 stage=$5
json=$("$upm" --json recipe show "$recipe")
field() { printf '%s' "$json" | python3 -c "import json,sys; d=json.load(sys.stdin); v=d$1; print(v if v is not None else '')"; }
export LC_ALL=POSIX MAKEFLAGS="-j$jobs"
mkdir -p /tmp/tt && cd /tmp/tt
tar xf "$sources/$(field "['source']['file']")"
cd "$(ls -d */ | head -1)"
for phase in prepare configure compile; do
  script=$(field "['phases'].get('$phase')")
  [ -n "$script" ] || continue
  sh -e -c "$script" >/tmp/tt/$phase.log 2>&1 || { tail -20 /tmp/tt/$phase.log >&2; exit 1; }
done
make install DESTDIR="$stage" >/tmp/tt/install.log 2>&1 || { tail -20 /tmp/tt/install.log >&2; exit 1; }
chown -R root:root "$stage"
