#!/usr/bin/env python3
"""kill -9 a replica mid-stream and restart it: it catches up, pulling only
what it missed (bytes pulled << table size), and ends byte-identical."""

import threading
import time

import harness as h

chk = h.Checks("test_restart", timeout=240)
ROWS, DIM = 65536, 16                      # 4 MiB f32 table
MODEL = {"name": "big", "shards": 32, "priority": 1,
         "tables": ["emb:%d:%d:f32" % (ROWS, DIM)]}
TABLE_BYTES = ROWS * DIM * 4


ROW_WIRE = 8 + 8 + 4 + 4 + DIM * 4         # id, version, origin, significance, values
acked = []                                 # (monotonic time of ack, rows)


def stream(node, start, count):
    for i in range(count):
        rows = [((start + i) * 7 + k * 131) % ROWS for k in range(8)]
        h.publish(node, "big", "emb", [(r, [float(start + i)] * DIM) for r in rows])
        acked.append((time.monotonic(), len(rows)))


with h.Cluster(4, models=(MODEL,), name="restart") as c:
    c.start()
    src, victim = c.nodes[0], c.nodes[3]
    stream(src, 0, 200)                              # everyone has these
    c.wait_converged(timeout=60)
    chk.ok(True, "4 nodes converged on the first 200 publishes")

    # Kill -9 the victim in the middle of a stream of publishes.
    t = threading.Thread(target=stream, args=(src, 200, 300))
    t.start()
    time.sleep(1.0)
    victim.kill9()
    killed_at = time.monotonic()
    t.join()
    missed = sum(n for when, n in acked if when >= killed_at) * ROW_WIRE
    chk.ok(True, "victim killed with SIGKILL mid-stream")

    victim.start()
    victim.wait_ready()
    fp = c.wait_converged(timeout=60)
    chk.ok(True, "restarted victim caught up and is byte-identical: %r" % (fp,))

    # It replayed what it had from its WAL, so it pulls about what was
    # published while it was down (rows the stream rewrote coalesce, and
    # a few publishes just before the kill may not have reached it).
    pulled = victim.metric_sum("freshet_pull_bytes_total", direction="in")
    everything = len(acked) * 8 * ROW_WIRE
    chk.ok(0 < pulled <= 1.5 * missed + 16384 and pulled < TABLE_BYTES / 10,
           "victim pulled %d bytes after restart: what it missed was %d bytes, "
           "everything published %d, the table %d"
           % (pulled, missed, everything, TABLE_BYTES))
chk.done()
