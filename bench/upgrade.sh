#!/usr/bin/env bash
# Upgrade benchmark (issue 14), in overlay sandboxes over the real root (needs root): what an
# upgrade costs beyond a fresh install of the same package — keeping the old files aside by
# hard link, the journal, configuration files, stale-file removal and the swap of the records.
#  - zlib: `upm upgrade` from 1.2.13 (recipes/zlib.toml, ../shared/sources) to 1.3.1 (Debian
#    trixie's orig tarball, fetched once with `apt-get source --download-only` through a
#    private apt configuration, or ZLIB_NEW=FILE) against a fresh `upm install` of 1.3.1;
#  - xz: `upm install --reinstall` of 5.4.1 over itself against a fresh install;
#  - many: a package of $MANY small files (no build) — `--reinstall` against a fresh install,
#    where the keep-aside and the stale check are the largest share.
# Both arms build from source (-j$JOBS, --no-check, prefix /usr/local); the old version is
# installed off the clock. Arms alternate, RUNS each; per arm the median of the whole command's wall time and of
# upm's own `timings.install_ms` (trial to last database write: for an upgrade this includes
# the keep-aside and everything after the install phase).
# usage: bench/upgrade.sh   (RUNS=3 JOBS=2 PKGS="zlib xz many" MANY=2000 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
JOBS=${JOBS:-2}
PKGS=${PKGS:-zlib xz many}
MANY=${MANY:-2000}
cargo build --release -q
UPM=$PWD/target/release/upm
REPO=$PWD
SRC=$(realpath ../shared/sources)
work=$(mktemp -d /var/tmp/upm-bench-upgrade-XXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# zlib 1.3.1's orig tarball, and a recipe for it inheriting the repository's zlib recipe.
new_src=$work/src
mkdir -p "$new_src"
if [[ -n ${ZLIB_NEW:-} ]]; then
  cp "$ZLIB_NEW" "$new_src/"
else
  apt=$work/apt
  mkdir -p "$apt/lists/partial"
  echo "deb-src http://deb.debian.org/debian trixie main" >"$apt/sources.list"
  O=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null -o "Dir::State::Lists=$apt/lists")
  apt-get "${O[@]}" update -qq >/dev/null
  (cd "$new_src" && apt-get "${O[@]}" source --download-only -qq zlib >/dev/null 2>&1 || true)
  rm -f "$new_src"/*.dsc "$new_src"/*.debian.tar.*
fi
tarball=$(ls "$new_src"/zlib_*.orig.tar.*)
chmod -R a+rX "$work"
cat >"$work/zlib-new.toml" <<EOF
inherit = ["$REPO/recipes/zlib.toml"]

[package]
version = "1.3.1"

[source]
file = "$(basename "$tarball")"
sha256 = "$(sha256sum "$tarball" | cut -d' ' -f1)"
EOF

cat >"$work/many.toml" <<EOF
[package]
name = "many"
version = "1"

[phases]
install = """
d=/usr/local/share/many
i=0
while [ \$i -lt $MANY ]; do
  mkdir -p \$d/\$((i / 100))
  echo "file \$i" > \$d/\$((i / 100))/f\$i
  i=\$((i + 1))
done
"""
EOF

# Run a script in a fresh sandbox; it prints `T ARM WALL_MS INSTALL_MS` lines.
in_sandbox() {
  if ! "$UPM" sandbox -- sh -ec "$1" 2>"$work/last.err"; then
    echo "failed:" >&2
    tail -20 "$work/last.err" >&2
    return 1
  fi
}
# `clock ARM upm ...` runs upm with --json, printing `T ARM WALL_MS INSTALL_MS`.
CLOCK='clock() { n=$1; shift; t0=$(date +%s%N); "$@" --json >/tmp/out.json 2>/tmp/clock.err || { cat /tmp/clock.err >&2; exit 1; }; w=$(( ($(date +%s%N) - t0) / 1000000 )); i=$(python3 -c "import json; print(json.load(open(\"/tmp/out.json\"))[\"timings\"][\"install_ms\"])"); echo "T $n $w $i"; }'
# Under /usr/local: no file of the host's to take over, in either arm.
OPTS="--no-check -j $JOBS --set vars.prefix=/usr/local"

: >"$work/times"
for i in $(seq "$RUNS"); do
  for pkg in $PKGS; do
    case $pkg in
      zlib)
        in_sandbox "$CLOCK; $UPM init >/dev/null
          $UPM install $REPO/recipes/zlib.toml --sources-dir $SRC $OPTS >/dev/null 2>&1
          clock zlib-upgrade $UPM upgrade zlib $work/zlib-new.toml --sources-dir $new_src $OPTS" >>"$work/times"
        in_sandbox "$CLOCK; $UPM init >/dev/null
          clock zlib-fresh $UPM install $work/zlib-new.toml --sources-dir $new_src $OPTS" >>"$work/times"
        ;;
      xz)
        in_sandbox "$CLOCK; $UPM init >/dev/null
          $UPM install $REPO/recipes/xz.toml --sources-dir $SRC $OPTS >/dev/null 2>&1
          clock xz-reinstall $UPM install $REPO/recipes/xz.toml --reinstall --sources-dir $SRC $OPTS" >>"$work/times"
        in_sandbox "$CLOCK; $UPM init >/dev/null
          clock xz-fresh $UPM install $REPO/recipes/xz.toml --sources-dir $SRC $OPTS" >>"$work/times"
        ;;
      many)
        in_sandbox "$CLOCK; $UPM init >/dev/null
          $UPM install $work/many.toml >/dev/null 2>&1
          clock many-reinstall $UPM install $work/many.toml --reinstall" >>"$work/times"
        in_sandbox "$CLOCK; $UPM init >/dev/null
          clock many-fresh $UPM install $work/many.toml" >>"$work/times"
        ;;
    esac
  done
done

echo "load: $(uptime)"
printf '%-16s %12s %18s\n' "" "wall ms" "install_ms (upm)"
for arm in zlib-fresh zlib-upgrade xz-fresh xz-reinstall many-fresh many-reinstall; do
  grep -q " $arm " "$work/times" || continue
  printf '%-16s %12s %18s\n' "$arm" \
    "$(awk -v a="$arm" '$2==a{print $3}' "$work/times" | median)" \
    "$(awk -v a="$arm" '$2==a{print $4}' "$work/times" | median)"
done
echo "(RUNS=$RUNS, medians; raw: T ARM WALL INSTALL)"
cat "$work/times"
