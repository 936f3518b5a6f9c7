#!/bin/sh
# The whole idea of upm in one run. Run it inside the overlay sandbox, so this system is not
# touched:   sudo target/release/upm sandbox -- sh "$PWD/demo/run.sh"
set -e
here=$(cd "$(dirname "$0")" && pwd)
upm=${UPM:-$here/../target/release/upm}
[ -x "$upm" ] || upm=$here/../target/debug/upm

echo "== upm init: the install group and the install directories (root:install 1775)"
"$upm" init
echo
echo "== upm install: build the demo as its own package user, watching what it installs"
"$upm" install "$here/demo.toml"
echo
echo "== upm files upm-demo -l: the manifest"
"$upm" files upm-demo -l
echo
echo "== upm owner: who installed what"
"$upm" owner /usr/local/bin/upm-demo /usr/local/lib/libgreet.so.1 /usr/local/include/greet.h || true
echo
echo "== the program runs"
/usr/local/bin/upm-demo
