#!/usr/bin/env bash
# Issue 2 benchmark: `upm tree get` on a 10,000-key file (.ct and .toml), and the overlay
# sandbox's set-up + tear-down time (`upm sandbox -- true`) against the same overlay made by
# hand with util-linux `unshare` + `mount` (the floor: what the kernel work costs).
# Needs root for the sandbox part. Prints medians from hyperfine.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null; }
cargo build --release -q
UPM=$PWD/target/release/upm
work=$(mktemp -d /var/tmp/upm-bench-XXXX)
trap 'rm -rf "$work"' EXIT

python3 - "$work" <<'PY'
import sys, random
d = sys.argv[1]
random.seed(1)
with open(f"{d}/big.ct", "w") as f:
    for i in range(10000):
        g = i // 100
        if i % 100 == 0:
            f.write(f'group{g}.base = "/srv/group{g}";  # referenced by its siblings\n')
        elif i % 7 == 0:
            f.write(f'group{g}.key{i} = "${{base}}/{i}:${{group0.base}}";\n')
        else:
            f.write(f'group{g}.key{i} = "value {i} {random.random()}";\n')
PY
"$UPM" tree convert "$work/big.ct" --to toml -o "$work/big.toml"
echo "keys: $("$UPM" tree list "$work/big.ct" | wc -l)"

hyperfine -N -w 3 -r 30 --export-json "$work/tree.json" \
  "$UPM tree get $work/big.ct group50.key5012" \
  "$UPM tree get $work/big.toml group50.key5012" \
  "$UPM tree get $work/big.ct group50.*" \
  "$UPM tree get --raw $work/big.ct group50.key5012"

if [ "$(id -u)" = 0 ]; then
  cat > "$work/by-hand.sh" <<'SH'
#!/bin/sh
set -e
d=$(mktemp -d /var/tmp/upm-bench-hand-XXXX)
mkdir "$d/u" "$d/w" "$d/m"
unshare -m sh -c "mount --make-rprivate / && mount -t overlay overlay -o lowerdir=/,upperdir=$d/u,workdir=$d/w $d/m && mount -t proc proc $d/m/proc && mount --rbind /dev $d/m/dev && mount -t tmpfs tmpfs $d/m/tmp && chroot $d/m true"
rm -rf "$d"
SH
  chmod +x "$work/by-hand.sh"
  hyperfine -N -w 3 -r 30 --export-json "$work/sandbox.json" \
    "$UPM sandbox -- true" \
    "$work/by-hand.sh"
  python3 - "$work/sandbox.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
a, b = r[0]["median"], r[1]["median"]
print(f"sandbox set-up+tear-down median: upm {a*1000:.2f} ms, unshare+mount by hand {b*1000:.2f} ms, ratio {a/b:.2f}")
PY
else
  echo "sandbox part skipped: needs root"
fi
python3 - "$work/tree.json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(f"{r['command'].split('/')[-1] if False else r['command']}: median {r['median']*1000:.2f} ms")
PY
