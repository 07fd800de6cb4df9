#!/usr/bin/env python3
"""bench_scrape — what one `/metrics` scrape of a node costs as its model's
shard count grows (16, 160, 1,600: 1x, 10x, 100x the default), against
`/healthz` on the same node in the same run.

Two real freshetd processes on loopback (tests/integration/harness.py),
one model of 16,000 x 16 f32 rows, a fifth of the rows written so every
shard holds some, both nodes converged; then `--reps` timed GETs of each
path.  The ratio metrics/healthz is the result: it stays flat while the
scrape does not grow with the shard count.  The last line is one JSON
object.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchutil  # noqa: E402


def timed(node, path, reps):
    node.http(path)
    t0 = time.perf_counter()
    for _ in range(reps):
        node.http(path)
    return (time.perf_counter() - t0) / reps * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", default="build",
                    help="build tree with node/freshetd and cli/freshet")
    ap.add_argument("--reps", type=int, default=30,
                    help="timed GETs per path and size (default 30)")
    ap.add_argument("--shards", default="16,160,1600",
                    help="comma-separated shard counts (default 16,160,1600)")
    a = ap.parse_args()
    h, _ = benchutil.load(a.build_dir)
    sizes = [int(s) for s in a.shards.split(",")]
    out = {}
    print("%8s %14s %14s %10s %8s" % ("shards", "/metrics ms", "/healthz ms",
                                       "bytes", "ratio"))
    for shards in sizes:
        model = {"name": "ctr", "shards": shards, "priority": 1,
                 "tables": ["users:16000:16:f32"]}
        with h.Cluster(2, models=[model], name="scrape%d" % shards) as c:
            c.start()
            node = c.nodes[0]
            h.publish(node, "ctr", "users",
                      [(r, [0.5] * 16) for r in range(0, 16000, 5)])
            c.wait_converged()
            m = timed(node, "/metrics", a.reps)
            z = timed(node, "/healthz", a.reps)
            size = len(node.http("/metrics"))
        out[shards] = {"metrics_ms": round(m, 3), "healthz_ms": round(z, 3),
                       "ratio": round(m / z, 2), "bytes": size}
        print("%8d %14.3f %14.3f %10d %8.2f" % (shards, m, z, size, m / z))
    first, last = out[sizes[0]], out[sizes[-1]]
    print(json.dumps({"bench": "scrape", "sizes": out,
                      "growth": round(last["ratio"] / first["ratio"], 2)}))


if __name__ == "__main__":
    main()
