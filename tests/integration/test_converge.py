#!/usr/bin/env python3
"""6 nodes, one DC, static peers: 1,000 publishes spread over 3 of the nodes
-> every node ends with byte-identical tables and equal shard versions, and
the values are the ones published (last writer wins on the shared rows)."""

import random
import threading

import harness as h

chk = h.Checks("test_converge", timeout=240)
rng = random.Random(20261125)
DIM = 16
PUBLISHES = 1000
publishers = 3

with h.Cluster(6, name="converge") as c:
    c.start()
    pubs = c.nodes[:publishers]
    # Each publisher owns a row range (values checked exactly) and all of
    # them also write a small shared hot set (last writer wins).
    plans = {p.id: [] for p in pubs}
    expected = {}
    for i in range(PUBLISHES):
        p = pubs[i % publishers]
        base = 1000 * (p.id - 1)
        rows = rng.sample(range(base, base + 1000), 4) + [4000 + rng.randrange(16)]
        batch = [(r, [round(rng.uniform(-1, 1), 3) for _ in range(DIM)]) for r in rows]
        plans[p.id].append(batch)
        for r, v in batch[:-1]:
            expected[r] = v

    versions = {}
    errors = []

    def run(p):
        try:
            vs = []
            for batch in plans[p.id]:
                vs.append(h.publish(p, "ctr", "users", batch))
            versions[p.id] = vs
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(p,)) for p in pubs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    chk.ok(not errors, "all %d publishes acknowledged (%s)" % (PUBLISHES, errors[:1]))
    for p in pubs:
        vs = versions[p.id]
        chk.ok(all(a < b for a, b in zip(vs, vs[1:])),
               "node %d assigned strictly rising versions" % p.id)

    fp = c.wait_converged(timeout=60)
    chk.ok(True, "all 6 nodes byte-identical: %r" % (fp,))

    vvs = []
    for n in c.nodes:
        st = n.status(shards=True)
        m = [m for m in st["models"] if m["name"] == "ctr"][0]
        vvs.append(m["shard_vv"])
    chk.ok(all(v == vvs[0] for v in vvs), "all 6 nodes have equal shard version vectors")

    # Values: every node returns exactly what was published for owned rows.
    sample = rng.sample(sorted(expected), 40)
    for n in c.nodes:
        p = h.cli("lookup", "--node", n.addr, "--model", "ctr", "--table", "users",
                  "--ids", ",".join(map(str, sample)), "--json")
        got = {row["id"]: row["values"] for row in __import__("json").loads(p.stdout)["rows"]}
        bad = [r for r in sample if [round(x, 3) for x in got[r]] != expected[r]]
        chk.ok(not bad, "node %d serves the published values (%d rows checked)" % (n.id, len(sample)))
chk.done()
