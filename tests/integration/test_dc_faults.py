#!/usr/bin/env python3
"""3 DCs x 2 nodes on a real ZooKeeper, every node-to-node link through a
DC-aware proxy (dcproxy.py), under faults:

1. bad data in ZooKeeper (a malformed model, a leader znode with garbage,
   a member znode with garbage, a model whose JSON names another model):
   each is logged with its path and ignored; every node keeps running and
   keeps converging;
2. ZooKeeper stopped for 10 s and restarted: nodes keep serving lookups
   and publishes and keep gossiping inside their dc; leaders cut off from
   ZooKeeper demote themselves; afterwards each dc has exactly one leader,
   which is the node leaders/<dc> names (no split brain), and everything
   converges;
3. dc3 cut off from the other dcs, then healed: dc1 and dc2 converge
   without it, and after the heal all six converge with no manual step.
"""

import json
import time

from kazoo.client import KazooClient

import dcproxy
import harness as h
import zk as zkmod

chk = h.Checks("test_dc_faults", timeout=280)
DCS = ["dc1", "dc2", "dc3"]
PER_DC = 2
MODEL = {"name": "ctr", "shards": 8, "priority": 1,
         "tables": ["users:20000:16:f32"]}


def rows(first, n, val):
    return [(r, [val + r % 7] * 16) for r in range(first, first + n)]


def alive_all(c):
    for n in c.nodes:
        if not n.alive():
            raise AssertionError("node %d died; log:\n%s" % (n.id, n.log()))
        if n.http("/healthz", timeout=2).strip() != "ok":
            raise AssertionError("node %d unhealthy" % n.id)
    return True


cuts = dcproxy.Cuts()
proxies = []


def advertise(node):
    p = dcproxy.DcProxy(cuts, node.dc, node.port)
    proxies.append(p)
    return p.port


with zkmod.ZooKeeper() as zk, \
        h.Cluster(len(DCS) * PER_DC, models=[MODEL], name="dc_faults", zk=zk,
                  dcs=h.dc_names(len(DCS), PER_DC), registry=True,
                  advertise=advertise,
                  extra={"zookeeper": {"session_timeout_ms": 4000}}) as c:
    c.register_models()
    c.start()
    for dc in DCS:
        c.leader_of(dc)
    h.publish(c.nodes[0], "ctr", "users", rows(0, 200, 1.0))
    c.wait_converged(timeout=30)
    chk.ok(True, "6 nodes in 3 dcs converged through the proxies")

    # --- 1. bad data in ZooKeeper ---------------------------------------
    root = "/freshet/%s" % c.cluster_name
    kz = KazooClient(hosts=zk.hosts)
    kz.start(timeout=15)
    kz.create(root + "/models/broken", b"{garbage", makepath=True)
    kz.create(root + "/models/alias", json.dumps(
        {"name": "other", "priority": 1, "shards": 2,
         "tables": [{"name": "t", "rows": 10, "dim": 2, "dtype": "f32"}]}).encode())
    kz.create(root + "/leaders/dc9", b"\x00\xffnot json", makepath=True)
    kz.create(root + "/nodes/dc1/77", b"[1,2,3]", ephemeral=True, makepath=True)
    # Garbage over a live leader's own znode: ignored by readers, and the
    # leader writes its record back.
    kz.set(root + "/leaders/dc3", b'{"id":"x"}')
    time.sleep(2.0)
    chk.ok(alive_all(c), "every node runs after bad znodes were written")
    bad = [n.metric_sum("freshet_zk_bad_znodes_total") for n in c.nodes]
    chk.ok(all(b >= 3 for b in bad), "every node counted the bad znodes (%s)" % bad)
    log = c.nodes[0].log()
    chk.ok(root + "/models/broken" in log, "the log names %s/models/broken" % root)
    chk.ok(not any(m["name"] in ("broken", "alias", "other")
                   for n in c.nodes for m in n.status()["models"]),
           "no node serves a model from a bad znode")
    h.publish(c.nodes[1], "ctr", "users", rows(1000, 200, 2.0))
    c.wait_converged(timeout=30)
    chk.ok(True, "still converging after the bad znodes")
    kz.delete(root + "/models/broken")
    kz.delete(root + "/models/alias")
    kz.delete(root + "/leaders/dc9")
    kz.stop()
    kz.close()

    # --- 2. ZooKeeper down for 10 s --------------------------------------
    zk.stop()
    t0 = time.time()
    time.sleep(4.0)     # past 2/3 of the session timeout
    demoted = [n.id for n in c.nodes if not n.status()["topology"]["leader"]]
    chk.ok(len(demoted) == len(c.nodes),
           "with ZooKeeper gone every leader demoted itself (%d of %d not leading)"
           % (len(demoted), len(c.nodes)))
    dc1 = [n for n in c.nodes if n.dc == "dc1"]
    v = h.publish(dc1[0], "ctr", "users", rows(2000, 200, 3.0))
    chk.ok(v > 0, "a publish is acknowledged while ZooKeeper is down")
    c.wait_converged(nodes=dc1, timeout=20)
    chk.ok(True, "dc1 converged inside the dc while ZooKeeper is down")
    for n in c.nodes:
        st = n.status()
        chk.ok(st["topology"]["zk"] == "disconnected",
               "node %d serves /status and says ZooKeeper is disconnected" % n.id)
    time.sleep(max(0.0, 10.0 - (time.time() - t0)))
    zk.start()
    leaders = {dc: c.leader_of(dc, timeout=40) for dc in DCS}
    chk.ok(alive_all(c), "no node crashed across the ZooKeeper outage")
    kz = KazooClient(hosts=zk.hosts)
    kz.start(timeout=15)
    for dc, l in leaders.items():
        data, _ = kz.get(root + "/leaders/" + dc)
        named = json.loads(data)["id"]
        chk.ok(named == l.id, "dc %s: leaders/%s names node %d, the only node "
               "that says it leads" % (dc, dc, named))
    kz.stop()
    kz.close()
    c.wait_converged(timeout=60)
    chk.ok(True, "all 6 converged after ZooKeeper came back")

    # --- 3. dc3 cut off, then healed ------------------------------------
    cuts.cut("dc3")
    h.publish(c.nodes[0], "ctr", "users", rows(3000, 300, 4.0))
    rest = [n for n in c.nodes if n.dc != "dc3"]
    c.wait_converged(nodes=rest, timeout=30)
    fp_rest = c.fingerprint(rest[0])
    dc3 = [n for n in c.nodes if n.dc == "dc3"]
    chk.ok(all(c.fingerprint(n) != fp_rest for n in dc3),
           "dc3, cut off, did not get the update")
    # The links were cut; the leaders redial with back-off, so the first
    # refusal can come after the rest has already converged.
    end = time.time() + 5
    while sum(p.refused for p in proxies) == 0 and time.time() < end:
        time.sleep(0.05)
    chk.ok(sum(p.refused for p in proxies) > 0, "the proxies refused links across the cut")
    time.sleep(2.0)
    t_heal = time.time()
    cuts.heal("dc3")
    c.wait_converged(timeout=60)
    print("healed dc3 converged in %.2f s" % (time.time() - t_heal))
    chk.ok(True, "after the heal all 6 converged with no manual step")
    for p in proxies:
        p.close()
chk.done()
