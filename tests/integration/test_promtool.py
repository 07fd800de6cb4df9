#!/usr/bin/env python3
"""A live node's /metrics passes `promtool check metrics` (Debian's
prometheus package), carries the charset in its Content-Type, and says
what happened: a publish, lookups (with their latency histogram), the
process start time."""

import os
import shutil
import subprocess
import sys
import time
import urllib.request

import harness as h
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "bench"))
import fr_proto  # noqa: E402

h.deadline(120)
chk = h.Checks("test_promtool")

PROMTOOL = shutil.which("promtool")
if not PROMTOOL:
    raise SystemExit("promtool not found: scripts/install-deps installs "
                     "Debian's prometheus package")

with h.Cluster(2, name="promtool") as c:
    t0 = time.time()
    c.start()
    node = c.nodes[0]
    version = h.publish(node, "ctr", "users", [(1, [0.5] * 16), (2, [1.0] * 16)])
    before = node.metrics()
    with fr_proto.Conn(node.addr) as conn:
        for _ in range(3):
            conn.lookup("ctr", "users", [1, 2])

    url = "http://127.0.0.1:%d/metrics" % node.admin_port
    with urllib.request.urlopen(url, timeout=5) as r:
        ctype = r.headers.get("Content-Type")
        body = r.read()
    chk.ok(ctype == "text/plain; version=0.0.4; charset=utf-8",
           "Content-Type is %r" % ctype)
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=body,
                       capture_output=True, timeout=30)
    out = (p.stdout + p.stderr).decode(errors="replace").strip()
    chk.ok(p.returncode == 0 and not out,
           "promtool check metrics: exit %d, %s" % (p.returncode,
                                                    out or "no findings"))

    m = node.metrics()
    start = m[("process_start_time_seconds", frozenset())]
    chk.ok(t0 - 5 <= start <= time.time(),
           "process_start_time_seconds %.3f is when the node started" % start)
    def grew(name):
        key = (name, frozenset())
        return m[key] - before.get(key, 0)

    chk.ok(grew("freshet_lookups_total") == 3, "three lookups counted")
    chk.ok(grew("freshet_lookup_latency_seconds_count") == 3,
           "three lookups in the latency histogram")
    chk.ok(m[("freshet_connections_accepted_total", frozenset())] >= 2,
           "accepted connections exported (publish and lookup clients)")
    lag = m[("freshet_freshness_lag_seconds",
             frozenset({("model", "ctr")}))]
    chk.ok(0 <= lag < 60, "freshness lag in seconds: %.3f" % lag)
    ts = [v for (n, lab), v in m.items()
          if n == "freshet_shard_version_max_timestamp_seconds"]
    chk.ok(ts and abs(max(ts) - (version >> 16) / 1e3) < 0.002,
           "the newest version is exported as its physical part in "
           "seconds (%s), not as a raw HLC (%d)" % (ts, version))
    # The other node learnt the rows by gossip: its applied counter says so.
    c.wait_converged()
    m2 = c.nodes[1].metrics()
    chk.ok(m2[("freshet_rows_applied_total",
               frozenset({("source", "peer")}))] >= 2,
           "node 2 applied the rows from its peer")
chk.done()
