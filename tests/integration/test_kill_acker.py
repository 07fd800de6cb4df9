#!/usr/bin/env python3
"""kill -9 the node that acknowledged a publish right after the ack: after
restart the update is there and reaches every node.

The acker runs alone while it publishes and dies, so the row cannot have
been copied to a peer first: after the restart it can only come from the
acker's own WAL, which is what this test is about."""

import json

import harness as h

chk = h.Checks("test_kill_acker", timeout=180)


def row77(node):
    p = h.cli("lookup", "--node", node.addr, "--model", "ctr", "--table", "users",
              "--ids", "77", "--json")
    return json.loads(p.stdout)["rows"][0]


with h.Cluster(3, name="acker") as c:
    acker, others = c.nodes[0], c.nodes[1:]
    acker.start()
    acker.wait_ready()
    vals = [0.25 * i for i in range(16)]
    version = h.publish(acker, "ctr", "users", [(77, vals)])
    acker.kill9()
    chk.ok(version > 0, "publish acknowledged with version %d, acker killed "
           "before any peer ran" % version)

    acker.start()
    acker.wait_ready()
    row = row77(acker)
    chk.ok(row["version"] == version and row["values"] == vals,
           "restarted acker holds row 77 at the acked version, from its WAL alone")

    for n in others:
        n.start()
    for n in others:
        n.wait_ready()
    c.wait_converged(timeout=60)
    for n in c.nodes:
        row = row77(n)
        chk.ok(row["version"] == version and row["values"] == vals,
               "node %d holds row 77 at the acked version %d" % (n.id, version))
chk.done()
