#!/usr/bin/env python3
"""Roles, the baseline's lag buffer, and bad rollback input, on one dc of
four nodes with a real ZooKeeper.  Every node has a one-KiB undo ring per
shard, so old cuts are out of every ring's reach.

1. node 4 is the baseline (lag 2 s): it serves an update only once it is
   2 s old — before, lookups there return the old bytes and version; its
   cut in /status and in ZooKeeper trails the update; afterwards the bytes
   equal the other nodes'.
2. its 1 MiB buffer overflows under 3 MiB of updates within the lag: it
   says so (metrics, /status), and once the lag has passed it catches up
   from its store: backend == store, byte for byte.
3. a role override in ZooKeeper (`freshet role`) changes node 3's role,
   and clearing it gives the config's back.
4. bad directives — a znode that is not JSON, one with t >= r, a child that
   is not r_<seq> — change nothing (epoch 0, tables unchanged) and are
   logged with their path; a good directive filed after them is applied
   byte-exact.
5. `freshet rollback` refuses, naming the problem and filing nothing: a
   cut in the future, an unknown model, a cut older than every node's
   undo ring.
"""

import array
import json
import random
import time

import harness as h
import tablemodel
import zk as zkmod

fr_proto = h.fr_proto()
chk = h.Checks("test_rollback_faults", timeout=240)
DIM = 16
ROWS = 60000
MODEL = {"name": "ctr", "shards": 8, "priority": 1,
         "tables": ["users:%d:%d:f32" % (ROWS, DIM)]}
CHROOT = "/itest/rollback-faults"
LAG_MS = 2000
BASE = 4


def pub(model, node, rows, seed, scale=0.1):
    rnd = random.Random(seed)
    vals = array.array("f", [rnd.uniform(-scale, scale)
                             for _ in range(len(rows) * DIM)]).tobytes()
    with fr_proto.Conn(node.addr) as conn:
        for i in range(0, len(rows), 5000):
            part = rows[i:i + 5000]
            v, o = conn.publish("ctr", "users", part,
                                vals[i * DIM * 4:(i + len(part)) * DIM * 4],
                                DIM)
            model.record(v, o, part, vals[i * DIM * 4:(i + len(part)) * DIM * 4])
    return v


def lookup(node, rows):
    with fr_proto.Conn(node.addr) as conn:
        return conn.lookup("ctr", "users", rows)


def model_status(node):
    return [x for x in node.status()["models"] if x["name"] == "ctr"][0]


def sums(node):
    m = model_status(node)
    return m["tables"][0]["checksum"], m["tables"][0].get("backend_checksum")


def wait_for(cond, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        try:
            if cond():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError("timed out: " + what)


with zkmod.ZooKeeper() as zk, \
        h.Cluster(4, models=[MODEL], name="rollback_faults", zk=zk,
                  registry=True, chroot=CHROOT,
                  extra={"store": {"undo_kb_per_shard": 1}},
                  node_extra={BASE: {"node": {"baseline": "ctr"},
                                     "baseline": {"lag_ms": LAG_MS,
                                                  "buffer_mb": 1}}}) as c:
    c.register_models()
    c.start()
    wait_for(lambda: all(any(m["name"] == "ctr" for m in n.status()["models"])
                         for n in c.nodes), 20, "model served everywhere")
    base = c.nodes[BASE - 1]
    src = c.nodes[0]
    model = tablemodel.TableModel(ROWS, DIM)
    chk.ok(model_status(base)["role"] == "baseline"
           and model_status(src)["role"] == "serving",
           "node %d serves ctr as baseline, node 1 as serving" % BASE)

    # --- 1. the lag ------------------------------------------------------
    v1 = pub(model, src, list(range(0, 100)), 1)
    t_pub = time.time()
    wait_for(lambda: sums(base)[0] == model.checksum(), 5,
             "baseline's store has the update")
    vers, _, vals = lookup(base, [0, 50, 99])
    young = time.time() - t_pub
    chk.ok(young < LAG_MS / 1000.0 and all(v == 0 for v in vers)
           and vals == bytes(len(vals)),
           "%.2f s after the publish the baseline still serves the old "
           "rows (versions %r)" % (young, vers))
    cut = model_status(base)["cut"]
    chk.ok(cut < v1, "its cut %d is below the update's version %d" % (cut, v1))
    wait_for(lambda: lookup(base, [0])[0][0] == v1, LAG_MS / 1000.0 + 3,
             "baseline serves the update after the lag")
    served = time.time() - t_pub
    vers, _, vals = lookup(base, list(range(100)))
    _, _, vals1 = lookup(src, list(range(100)))
    chk.ok(served >= LAG_MS / 1000.0 - 0.05 and vals == vals1
           and all(v == v1 for v in vers),
           "after %.2f s (lag %.1f s) the baseline serves it, bytes equal "
           "node 1's" % (served, LAG_MS / 1000.0))
    chk.ok(model_status(base)["cut"] >= v1, "its cut passed the update")

    # --- 2. overflow and catch-up ------------------------------------------
    pub(model, src, list(range(1000, 1000 + 40000)), 2)
    wait_for(lambda: sums(base)[0] == model.checksum(), 20,
             "baseline's store has the burst")
    st = model_status(base)["baseline"]
    over = base.metric_sum("freshet_baseline_overflow_rows_total", model="ctr")
    chk.ok(st["overflowed"] and over > 0,
           "a 1 MiB buffer under 2.5 MiB of rows: overflowed, %d rows left "
           "out (said in /status and metrics)" % over)
    wait_for(lambda: sums(base)[1] == model.checksum(), LAG_MS / 1000.0 + 10,
             "baseline caught up from its store")
    st = model_status(base)["baseline"]
    chk.ok(not st["overflowed"] and sums(base) == (model.checksum(),) * 2,
           "after the lag it caught up from its store: backend == store")
    chk.ok("caught up from the store" in base.log(),
           "the catch-up is logged")

    # --- 3. role override in ZooKeeper ------------------------------------
    h.cli("role", "--zk", c.zk_hosts, "--cluster", c.cluster_name,
          "--model", "ctr", "--node", 3, "--set", "canary")
    wait_for(lambda: model_status(c.nodes[2])["role"] == "canary", 10,
             "node 3 becomes canary")
    chk.ok(model_status(c.nodes[2])["role_from"] == "zookeeper",
           "node 3 took role canary from ZooKeeper")
    h.cli("role", "--zk", c.zk_hosts, "--cluster", c.cluster_name,
          "--model", "ctr", "--node", 3, "--clear")
    wait_for(lambda: model_status(c.nodes[2])["role"] == "serving", 10,
             "node 3 back to serving")
    chk.ok(True, "clearing the override gives node 3 its configured role")
    # The baseline turned serving serves its store at once, held-back
    # rows included; turned back, it lags again.
    pub(model, src, list(range(200, 300)), 9)
    wait_for(lambda: sums(base)[0] == model.checksum(), 5,
             "baseline's store has the fresh rows")
    chk.ok(sums(base)[1] != model.checksum(),
           "the baseline holds the fresh rows back")
    h.cli("role", "--zk", c.zk_hosts, "--cluster", c.cluster_name,
          "--model", "ctr", "--node", BASE, "--set", "serving")
    wait_for(lambda: model_status(base)["role"] == "serving", 10,
             "node %d becomes serving" % BASE)
    chk.ok(sums(base) == (model.checksum(),) * 2 and
           base.metric_sum("freshet_backend_rebuilds_total") == 0,
           "turned serving, node %d serves its whole store at once "
           "(refilled, not counted as a backend rebuild)" % BASE)
    h.cli("role", "--zk", c.zk_hosts, "--cluster", c.cluster_name,
          "--model", "ctr", "--node", BASE, "--clear")
    wait_for(lambda: model_status(base)["role"] == "baseline", 10,
             "node %d back to baseline" % BASE)
    chk.ok("baseline" in model_status(base),
           "clearing the override makes node %d the baseline again" % BASE)

    # --- 4. bad directives -------------------------------------------------
    before = {n.id: sums(n) for n in c.nodes}
    from kazoo.client import KazooClient
    kz = KazooClient(hosts=zk.hosts + CHROOT)
    kz.start(timeout=15)
    base_path = "/freshet/%s/models/ctr/rollbacks" % c.cluster_name
    kz.ensure_path(base_path)
    bad1 = kz.create(base_path + "/r_", b"this is not json", sequence=True)
    bad2 = kz.create(base_path + "/r_", b'{"t":20,"r":10,"at":1,"reason":"x",'
                     b'"who":"y"}', sequence=True)
    kz.create(base_path + "/bogus", b"{}")
    time.sleep(1.5)
    chk.ok(all(model_status(n)["rollback_epoch"] == 0 for n in c.nodes),
           "malformed directives change no node's epoch")
    chk.ok({n.id: sums(n) for n in c.nodes} == before,
           "malformed directives change no table")
    logs = "".join(n.log() for n in c.nodes)
    chk.ok(bad1.split("/")[-1] in logs and bad2.split("/")[-1] in logs,
           "both malformed directives are logged by path")
    # A good directive after them still works: undo the last small publish
    # (one row per shard, so every ring still holds it).
    T = max(v for ws in model.writes.values() for v, _, _ in ws)
    pub(model, src, list(range(50000, 50008)), 3, scale=9.0)
    wait_for(lambda: all(sums(n)[0] == model.checksum() for n in c.nodes),
             10, "last publish everywhere")
    p = h.cli("rollback", "--zk", c.zk_hosts, "--cluster", c.cluster_name,
              "--model", "ctr", "--to", T, "--wait", "--yes", timeout=60)
    dirs = tablemodel.directives(zk.hosts, CHROOT, c.cluster_name, "ctr")
    epoch, t, r = dirs[-1]
    want = model.checksum([(t, r)])
    wait_for(lambda: all(model_status(n)["rollback_epoch"] == epoch
                         for n in c.nodes), 10, "epoch everywhere")
    # The baseline serves the restored rows at once only where it served
    # revoked ones; its store is exact.
    wait_for(lambda: all(sums(n)[0] == want for n in c.nodes)
             and all(sums(n) == (want, want) for n in c.nodes[:3]),
             10, "restored everywhere")
    # ZooKeeper numbers every child of rollbacks/ (the bogus one too).
    bad_epoch = int(bad2.split("_")[-1]) + 1
    chk.ok(epoch > bad_epoch, "a good directive after the malformed ones is "
           "applied as epoch %d, byte-exact on every node" % epoch)

    p = h.cli("history", "--zk", c.zk_hosts, "--cluster", c.cluster_name,
              "--model", "ctr", "--json", check=False)
    events = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
    rbs = [e for e in events if e["event"] == "rollback"]
    chk.ok(p.returncode == 3 and [e["epoch"] for e in rbs] == [epoch]
           and rbs[0]["t"] == t and rbs[0]["r"] == r
           and bad1.split("/")[-1] in p.stderr,
           "freshet history lists the one good directive (epoch %d, t, r) "
           "and names the malformed ones (exit 3)" % epoch)

    # --- 5. the CLI refuses ------------------------------------------------
    n_before = len(kz.get_children(base_path))
    future = int(time.time() * 1000) + 3600 * 1000
    p = h.cli("rollback", "--zk", c.zk_hosts, "--cluster", c.cluster_name,
              "--model", "ctr", "--to", "@%d" % future, "--yes",
              check=False)
    chk.ok(p.returncode == 2 and "future" in p.stderr,
           "a cut in the future is refused: %s" % p.stderr.strip())
    p = h.cli("rollback", "--zk", c.zk_hosts, "--cluster", c.cluster_name,
              "--model", "nosuch", "--to", T, "--yes", check=False)
    chk.ok(p.returncode == 1 and "nosuch" in p.stderr,
           "an unknown model is refused: %s" % p.stderr.strip())
    horizons = [model_status(n)["undo_horizon"] for n in c.nodes]
    p = h.cli("rollback", "--zk", c.zk_hosts, "--cluster", c.cluster_name,
              "--model", "ctr", "--to", v1, "--yes", check=False)
    chk.ok(min(horizons) > v1 and p.returncode != 0
           and "undo ring" in p.stderr,
           "a cut older than every node's undo ring is refused: %s"
           % p.stderr.strip())
    chk.ok(len(kz.get_children(base_path)) == n_before,
           "nothing was filed by the refused commands")
    kz.stop()
    kz.close()
chk.done()
