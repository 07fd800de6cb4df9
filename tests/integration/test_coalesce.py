#!/usr/bin/env python3
"""Coalescing: 100 publishes to the same 1,000 rows between two pulls ->
the bytes a replica pulls are <= 1.1 x one publish's rows (log-less: it gets
each row's current value once, not 100 updates)."""

import signal
import time

import harness as h

chk = h.Checks("test_coalesce", timeout=180)
DIM = 16
ROWS = list(range(0, 4000, 4))[:1000]
# What one publish's rows weigh on the wire: id + version + origin +
# significance + values.
ONE_PUBLISH = len(ROWS) * (8 + 8 + 4 + 4 + DIM * 4)

with h.Cluster(3, name="coalesce") as c:
    c.start()
    src, _, replica = c.nodes
    h.publish(src, "ctr", "users", [(r, [0.0] * DIM) for r in ROWS])
    c.wait_converged(timeout=30)
    before = replica.metric_sum("freshet_pull_bytes_total", direction="in")

    replica.proc.send_signal(signal.SIGSTOP)      # no pulls while we publish
    try:
        for k in range(100):
            h.publish(src, "ctr", "users", [(r, [float(k + 1)] * DIM) for r in ROWS])
    finally:
        replica.proc.send_signal(signal.SIGCONT)
    c.wait_converged(timeout=60)
    pulled = replica.metric_sum("freshet_pull_bytes_total", direction="in") - before
    chk.ok(0 < pulled <= 1.1 * ONE_PUBLISH,
           "replica pulled %d bytes for 100 publishes of the same 1,000 rows "
           "(one publish's rows = %d bytes, ratio %.3f)"
           % (pulled, ONE_PUBLISH, pulled / ONE_PUBLISH))
chk.done()
