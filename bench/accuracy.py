#!/usr/bin/env python3
"""Manifest accuracy against the overlay ground truth (bench/install.sh, part 2).

usage: accuracy.py BASELINE.json RUN.json MANIFEST_FILE [--porg]

BASELINE.json and RUN.json are `upm sandbox --json` outputs (the changes of a root after
`upm init` alone, and after init + the install). The ground truth is what the install changed:
the run's changes minus the baseline's and minus bookkeeping (upm's or porg's database, the
build tree, package homes, accounts files, the linker cache, the benchmark's own outputs).
MANIFEST_FILE is `upm files --json` output, or porg's file list (one path per line) with
--porg. Prints one JSON line: recall and precision over all paths and over non-directories.
"""
import json
import sys

BOOKKEEPING = ("/usr/src", "/var/lib/upm", "/var/lib/porg", "/var/tmp", "/var/cache/ldconfig")
# Accounts, and the system's shared indexes that root steps maintain for every package (the
# linker cache, the info `dir` files): no package's files, in either tool's list.
ACCOUNTS = {"/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow", "/etc/.pwd.lock",
            "/etc/ld.so.cache", "/usr/share/info/dir", "/usr/local/share/info/dir"}


def changes(path):
    with open(path) as f:
        doc = json.load(f)
    return {c["path"]: (c["change"], c["type"]) for c in doc["changes"]}


def keep(p):
    return p not in ACCOUNTS and not any(p == b or p.startswith(b + "/") for b in BOOKKEEPING)


def main():
    base, run, manifest_file = sys.argv[1:4]
    porg = "--porg" in sys.argv
    before, after = changes(base), changes(run)
    truth = {p: t for p, t in after.items() if before.get(p) != t and keep(p)}
    if porg:
        with open(manifest_file) as f:
            manifest = {line.strip() for line in f if line.strip() and keep(line.strip())}
        kinds = {p: (after.get(p, ("", "file"))[1]) for p in manifest}
    else:
        with open(manifest_file) as f:
            files = json.load(f)
        manifest = {e["path"] for e in files if keep(e["path"])}
        kinds = {e["path"]: e["type"] for e in files}

    def score(m, t):
        hit = len(m & t)
        return (hit / len(t) if t else 1.0, hit / len(m) if m else 1.0)

    t_all = set(truth)
    t_files = {p for p, (_, k) in truth.items() if k != "dir"}
    m_files = {p for p in manifest if kinds.get(p) != "dir"}
    r_all, p_all = score(manifest, t_all)
    r_files, p_files = score(m_files, t_files)
    print(json.dumps({
        "truth": len(t_all), "manifest": len(manifest),
        "recall": round(r_all, 4), "precision": round(p_all, 4),
        "recall_files": round(r_files, 4), "precision_files": round(p_files, 4),
        "missed": sorted(t_all - manifest)[:5], "extra": sorted(manifest - t_all)[:5],
    }))


if __name__ == "__main__":
    main()
