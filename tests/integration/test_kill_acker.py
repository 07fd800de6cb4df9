#!/usr/bin/env python3
"""kill -9 the node that acknowledged a publish right after the ack: after
restart the update is there and reaches every node."""

import json

import harness as h

h.deadline(180)
chk = h.Checks("test_kill_acker")

with h.Cluster(3, name="acker", extra={"gossip": {"digest_interval_ms": 5000,
                                                   "full_interval_ms": 60000}}) as c:
    c.start()
    acker = c.nodes[0]
    # Slow gossip above makes it likely the row has not left the acker yet;
    # the test holds either way: what matters is that the acked row survives.
    vals = [0.25 * i for i in range(16)]
    version = h.publish(acker, "ctr", "users", [(77, vals)])
    acker.kill9()
    chk.ok(version > 0, "publish acknowledged with version %d, acker killed" % version)

    acker.start()
    acker.wait_ready()
    c.wait_converged(timeout=60)
    for n in c.nodes:
        p = h.cli("lookup", "--node", n.addr, "--model", "ctr", "--table", "users",
                  "--ids", "77", "--json")
        row = json.loads(p.stdout)["rows"][0]
        chk.ok(row["version"] == version and row["values"] == vals,
               "node %d holds row 77 at the acked version %d" % (n.id, version))
chk.done()
