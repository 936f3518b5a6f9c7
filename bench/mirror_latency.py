#!/usr/bin/env python3
"""Close-to-copy latency of a mirror (bench/mirror.sh): write COUNT files into SRC at RATE per
second, each timed right after its close; watch DST with `inotifywait -m -r` and time each
file's arrival (a rename into place, or a close after writing); print p50/p99 in ms and how
many never arrived within the wait.

usage: mirror_latency.py SRC DST RATE COUNT WAIT_SECONDS
DST is where SRC's files appear in the mirror (the same relative paths)."""
import os, subprocess, sys, threading, time

src, dst, rate, count, wait = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
subdirs = [f"d{i}" for i in range(10)]
arrived = {}
w = subprocess.Popen(["inotifywait", "-m", "-r", "-q", "-e", "moved_to,close_write", "--format", "%w%f", dst],
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
# inotifywait -q still says nothing on stderr; give it its watches by waiting on a probe file.
probe = os.path.join(dst, ".probe")

def reader():
    for line in w.stdout:
        t = time.time_ns()
        p = line.rstrip("\n")
        rel = os.path.relpath(p, dst)
        arrived.setdefault(rel, t)

threading.Thread(target=reader, daemon=True).start()
deadline = time.time() + 10
while ".probe" not in arrived and time.time() < deadline:
    with open(probe, "w") as f:
        f.write("x")
    time.sleep(0.05)
os.unlink(probe)

closed = {}
start = time.time()
for i in range(count):
    rel = os.path.join(subdirs[i % len(subdirs)], f"f{i}")
    with open(os.path.join(src, rel), "w") as f:
        f.write("x" * 200)
    closed[rel] = time.time_ns()
    # Pace: file i is written at start + i/rate.
    ahead = start + (i + 1) / rate - time.time()
    if ahead > 0:
        time.sleep(ahead)
elapsed = time.time() - start
end = time.time() + wait
while time.time() < end and not all(r in arrived for r in closed):
    time.sleep(0.05)
w.terminate()
lat = sorted((arrived[r] - closed[r]) / 1e6 for r in closed if r in arrived)
missing = sum(1 for r in closed if r not in arrived)
def pct(p):
    return lat[min(len(lat) - 1, int(len(lat) * p))] if lat else float("nan")
print(f"rate={count / elapsed:.0f}/s p50_ms={pct(0.50):.1f} p99_ms={pct(0.99):.1f} max_ms={lat[-1] if lat else float('nan'):.1f} missing={missing}")
