#!/usr/bin/env python3
"""Manual rollback on 3 DCs x 3 nodes with a real ZooKeeper (docs/design.md §6):

1. good publishes, then harmful ones (noise over rows that held good
   values, and rows never written before), all converged;
2. one replica (dc3) is killed -9 before the rollback;
3. `freshet rollback --to T --wait` returns once every live node reports
   the new epoch; every live node's table (store and backend) is then
   byte-exact the reference model's table with (T, R] revoked;
4. node 8 has a one-KiB undo ring: its shards cannot be restored from the
   ring, so it zeroes the revoked rows, pulls the shards whole from peers
   that have rolled back, says so in its metrics, and ends byte-exact too;
   node 5 has undo off (its horizon is "none"): it reports its status all
   the same (or --wait would never return) and repairs the same way;
5. good updates published after the directive reach every node;
6. the killed replica comes back, applies the directive before it pulls
   anything, ends byte-exact, and re-infects nobody.
Times are printed; the last line is one JSON object.
"""

import json
import random
import re
import sys
import time

import harness as h
import tablemodel
import zk as zkmod

fr_proto = h.fr_proto()
chk = h.Checks("test_rollback", timeout=280)
DCS = ["dc1", "dc2", "dc3"]
PER_DC = 3
DIM = 16
ROWS = 20000
MODEL = {"name": "ctr", "shards": 8, "priority": 1,
         "tables": ["users:%d:%d:f32" % (ROWS, DIM)]}
CHROOT = "/itest/rollback"
SHORT_RING = 8          # node id with a 1 KiB undo ring per shard
NO_RING = 5             # node id with undo off: it still reports its status


def values(n, rnd, scale):
    import array
    return array.array("f", [rnd.uniform(-scale, scale)
                             for _ in range(n * DIM)]).tobytes()


def pub(model, node, rows, seed, scale=0.1):
    rnd = random.Random(seed)
    vals = values(len(rows), rnd, scale)
    with fr_proto.Conn(node.addr) as conn:
        version, origin = conn.publish("ctr", "users", rows, vals, DIM)
    model.record(version, origin, rows, vals)
    return version


def table_sums(node):
    """(checksum, backend checksum, epoch); None while the node has not
    learnt the model from ZooKeeper yet (a loaded machine can be slow)."""
    m = [x for x in node.status()["models"] if x["name"] == "ctr"]
    if not m:
        return None
    m = m[0]
    t = m["tables"][0]
    return t["checksum"], t.get("backend_checksum"), m["rollback_epoch"]


def wait_sums(nodes, want, epoch, timeout=30):
    end = time.time() + timeout
    last = None
    while time.time() < end:
        try:
            last = {n.id: table_sums(n) for n in nodes}
        except OSError:
            last = None
        if last and all(v == (want, want, epoch) for v in last.values()):
            return last
        time.sleep(0.05)
    for n in nodes:
        if last and last.get(n.id) != (want, want, epoch):
            sys.stderr.write("node %d: %s\n" % (n.id, {
                k[0] + str(sorted(k[1])): v for k, v in n.metrics().items()
                if "pull" in k[0] or "epoch" in k[0] or "rollback" in k[0]}))
    raise AssertionError("tables not at %s epoch %d after %d s: %r"
                         % (want, epoch, timeout, last))


with zkmod.ZooKeeper() as zk, \
        h.Cluster(len(DCS) * PER_DC, models=[MODEL], name="rollback", zk=zk,
                  dcs=h.dc_names(len(DCS), PER_DC), registry=True,
                  chroot=CHROOT,
                  node_extra={SHORT_RING: {"store": {"undo_kb_per_shard": 1}},
                              NO_RING: {"store": {"undo_kb_per_shard": 0}}},
                  extra={"zookeeper": {"session_timeout_ms": 4000}}) as c:
    c.register_models()
    c.start()
    leaders = {dc: c.leader_of(dc) for dc in DCS}
    model = tablemodel.TableModel(ROWS, DIM)
    src = [n for n in c.nodes if n.dc == "dc1" and n is not leaders["dc1"]][0]

    # --- 1. good, then harmful --------------------------------------------
    pub(model, src, list(range(0, 3000)), 1)
    T = pub(model, src, list(range(0, 1000)), 2)
    good = model.checksum()
    wait_sums(c.nodes, good, 0)
    chk.ok(True, "good history converged on all 9 nodes (%s)" % good)
    pub(model, src, list(range(0, 1500)), 3, scale=50.0)
    pub(model, src, list(range(5000, 5500)), 4, scale=50.0)
    bad = model.checksum()
    wait_sums(c.nodes, bad, 0)
    chk.ok(bad != good, "harmful updates reached all 9 nodes")

    # --- 2. a replica goes down --------------------------------------------
    victim = [n for n in c.nodes if n.dc == "dc3" and n is not leaders["dc3"]
              and n.id != SHORT_RING][0]
    victim.kill9()
    live = [n for n in c.nodes if n is not victim]
    # Its member znode goes when its session expires: from then on `--wait`
    # counts only live nodes.
    from kazoo.client import KazooClient
    kz = KazooClient(hosts=zk.hosts + CHROOT)
    kz.start(timeout=15)
    path = "/freshet/%s/nodes/dc3/%d" % (c.cluster_name, victim.id)
    end = time.time() + 20
    while kz.exists(path) and time.time() < end:
        time.sleep(0.1)
    chk.ok(not kz.exists(path), "replica %d is down (its session expired)"
           % victim.id)
    kz.stop()
    kz.close()

    # --- 3. rollback --wait ------------------------------------------------
    t0 = time.time()
    p = h.cli("rollback", "--zk", c.zk_hosts, "--cluster", c.cluster_name,
              "--model", "ctr", "--to", T, "--reason", "it_rollback", "--yes",
              "--wait", "--wait-timeout", 30000, timeout=60)
    wall = time.time() - t0
    print(p.stdout.strip())
    m = re.search(r"applied epoch (\d+) in ([0-9.]+) s", p.stdout)
    chk.ok(m is not None, "rollback --wait reports the time every node took")
    epoch, took = int(m.group(1)), float(m.group(2))
    dirs = tablemodel.directives(zk.hosts, CHROOT, c.cluster_name, "ctr")
    chk.ok(dirs and dirs[-1][0] == epoch and dirs[-1][1] == T,
           "the directive in ZooKeeper is epoch %d with target %d" % (epoch, T))
    R = dirs[-1][2]
    revoked = [(T, R)]
    want = model.checksum(revoked)
    chk.ok(want == good, "the reference after the rollback is the good state")
    restored = {}
    for n in live:
        restored[n.id] = table_sums(n)
    exact = [i for i, v in restored.items() if v == (want, want, epoch)]
    # Nodes 8 and 5 repair by full transfer, which may still be on the wire
    # when --wait returns (the epoch is set when the shard is reset); all
    # the others restored from their rings before reporting the epoch.
    # --wait returning at all says node 5, whose undo horizon is "none",
    # published its status in its member znode.
    chk.ok(set(exact) >= {n.id for n in live
                          if n.id not in (SHORT_RING, NO_RING)},
           "every live node with an undo ring is byte-exact when --wait "
           "returns (store and backend): %s" % sorted(exact))
    wait_sums(live, want, epoch, timeout=30)
    t_repair = time.time() - t0
    chk.ok(True, "node %d (1 KiB undo ring) byte-exact after full transfer"
           % SHORT_RING)
    short = [n for n in c.nodes if n.id == SHORT_RING][0]
    full = short.metric_sum("freshet_rollback_full_transfer_shards_total",
                            model="ctr")
    zeroed = short.metric_sum("freshet_rollback_rows_total", model="ctr",
                              how="zeroed")
    chk.ok(full > 0 and zeroed > 0,
           "node %d says it repaired %d shard(s) by full transfer (%d rows "
           "zeroed first)" % (SHORT_RING, full, zeroed))
    chk.ok("full transfer" in short.log(),
           "node %d's log says it repairs by full transfer" % SHORT_RING)
    none = [n for n in c.nodes if n.id == NO_RING][0]
    chk.ok(none.metric_sum("freshet_rollback_full_transfer_shards_total",
                           model="ctr") > 0,
           "node %d (undo off) repaired by full transfer" % NO_RING)
    others = sum(n.metric_sum("freshet_rollback_full_transfer_shards_total",
                              model="ctr") for n in live
                 if n not in (short, none))
    chk.ok(others == 0, "nodes with a long enough ring needed no transfer")

    # --- 5. good updates after the directive -----------------------------
    after = pub(model, src, list(range(100, 1100)), 5)
    chk.ok(after > R, "a publish after the directive is stamped above R")
    want2 = model.checksum(revoked)
    wait_sums(live, want2, epoch)
    chk.ok(True, "good updates after the directive reached every live node")

    # --- 6. the killed replica returns -------------------------------------
    victim.start()
    victim.wait_ready()
    wait_sums(c.nodes, want2, epoch, timeout=40)
    chk.ok(True, "replica %d came back, applied epoch %d and is byte-exact"
           % (victim.id, epoch))
    log = victim.log()
    life2 = log[log.find("generation 2"):]
    i_rb = life2.find("rollback epoch %d" % epoch)
    i_up = life2.find("] net: peer ")
    chk.ok(i_rb >= 0 and (i_up < 0 or i_rb < i_up),
           "replica %d applied the directive before any peer link came up"
           % victim.id)
    time.sleep(1.0)
    wait_sums(c.nodes, want2, epoch, timeout=5)
    refused = sum(n.metric_sum("freshet_gossip_epoch_behind_total")
                  for n in live)
    chk.ok(True, "no node was re-infected (all byte-exact; %d digest "
           "entries of not-yet-rolled-back peers were ignored)" % refused)

    summary = {"test": "rollback", "nodes": len(c.nodes),
               "wait_reported_s": took, "cli_wall_s": round(wall, 3),
               "short_ring_repaired_s": round(t_repair, 3),
               "full_transfer_shards": full}
    print(json.dumps(summary))
chk.done()
