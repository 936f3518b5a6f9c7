#!/usr/bin/env python3
"""Manifest accuracy against the overlay ground truth (bench/install.sh, part 2).

usage: accuracy.py BASELINE_UPPER RUN_UPPER MANIFEST_FILE [--porg]

BASELINE_UPPER and RUN_UPPER are the upper directories of two kept sandboxes (`upm sandbox
--keep DIR`): one after the same preparation alone (`upm init` for upm, nothing for porg), one
after the preparation and the install. The ground truth is computed from them alone, with
`find`-like walks, independently of upm:
  - every non-directory entry present in the run's upper and not in the baseline's (a whiteout,
    a deletion, is not a file the install left);
  - plus every directory in the run's upper that did not exist on the host (the sandbox's lower
    layer) nor in the baseline's upper: the directories the install created;
  - minus bookkeeping: the build trees and package homes (/usr/src), upm's and porg's databases,
    /var/tmp (the benchmark's own outputs), the linker cache, accounts files and the info `dir`
    files that root steps maintain for every package.
MANIFEST_FILE is `upm --json files` output, or porg's file list (one path per line) with
--porg. Prints one JSON line: recall and precision over all paths (files, links and created
directories) and over non-directories alone, with a few misses and extras.
"""
import json
import os
import stat
import sys

BOOKKEEPING = ("/usr/src", "/var/lib/upm", "/var/lib/porg", "/var/tmp", "/var/cache/ldconfig")
# Accounts, and the system's shared indexes that root steps maintain for every package (the
# linker cache, the info `dir` files): no package's files, in either tool's list.
ACCOUNTS = {"/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow", "/etc/.pwd.lock",
            "/etc/passwd-", "/etc/group-", "/etc/shadow-", "/etc/gshadow-",
            "/etc/ld.so.cache", "/etc/ld.so.cache~", "/usr/share/info/dir",
            "/usr/local/share/info/dir"}


def keep(p):
    return p not in ACCOUNTS and not any(p == b or p.startswith(b + "/") for b in BOOKKEEPING)


def walk(upper):
    """Every entry of an upper directory, as root paths: {path: "dir" | "file" | "whiteout"}."""
    out = {}
    for top, dirs, files in os.walk(upper):
        rel = "/" + os.path.relpath(top, upper) if top != upper else ""
        for d in dirs:
            # os.walk lists a symbolic link to a directory among the directories.
            link = os.path.islink(os.path.join(top, d))
            out[f"{rel}/{d}"] = "file" if link else "dir"
        for f in files:
            st = os.lstat(os.path.join(top, f))
            white = stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
            out[f"{rel}/{f}"] = "whiteout" if white else "file"
    return out


def main():
    base_upper, run_upper, manifest_file = sys.argv[1:4]
    porg = "--porg" in sys.argv
    base, run = walk(base_upper), walk(run_upper)
    t_files = {p for p, k in run.items() if k == "file" and p not in base and keep(p)}
    t_dirs = {p for p, k in run.items()
              if k == "dir" and p not in base and not os.path.lexists(p) and keep(p)}
    t_all = t_files | t_dirs
    if porg:
        with open(manifest_file) as f:
            manifest = {line.strip() for line in f if line.strip() and keep(line.strip())}
        m_files = {p for p in manifest if run.get(p) != "dir"}
    else:
        with open(manifest_file) as f:
            files = json.load(f)
        manifest = {e["path"] for e in files if keep(e["path"])}
        m_files = {e["path"] for e in files if keep(e["path"]) and e["type"] != "dir"}

    def score(m, t):
        hit = len(m & t)
        return (hit / len(t) if t else 1.0, hit / len(m) if m else 1.0)

    r_all, p_all = score(manifest, t_all)
    r_files, p_files = score(m_files, t_files)
    print(json.dumps({
        "truth": len(t_all), "truth_files": len(t_files), "manifest": len(manifest),
        "recall": round(r_all, 4), "precision": round(p_all, 4),
        "recall_files": round(r_files, 4), "precision_files": round(p_files, 4),
        "missed": sorted(t_all - manifest)[:5], "extra": sorted(manifest - t_all)[:5],
    }))


if __name__ == "__main__":
    main()
