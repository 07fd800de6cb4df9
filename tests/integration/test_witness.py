#!/usr/bin/env python3
"""freshet-witness against a real cluster: 3 DCs x 2 replicas, plus a
canary (node 7) and a baseline (node 8, lag 3 s) in dc1, a real ZooKeeper,
two witnesses.

A two-tower model (tables users and items, dim 16) whose embeddings
predict the labels of a probe set; a trainer keeps publishing good updates
(small changes to user rows) all along.

1. No false alarm: for several evaluation rounds of good updates, neither
   witness files a rollback and the model state stays healthy.
2. Harm: a harmful update (large noise on every user row the probe uses)
   is published.  The witnesses mark the model corrupted and exactly one
   rollback to the baseline's cut is filed; every node applies it.  The
   time from the harmful publish to the directive (detection) and to every
   node rolled back is printed.
3. Afterwards every node's tables (store and backend) equal the reference:
   every update up to the baseline's cut T, none in (T, R], and the good
   updates published after the directive.  The state returns to healthy.
The last line is one JSON object with the times.
"""

import array
import json
import math
import os
import random
import signal
import subprocess
import sys
import threading
import time

import harness as h
import tablemodel
import zk as zkmod

fr_proto = h.fr_proto()
chk = h.Checks("test_witness", timeout=280)
WITNESS = os.path.join(h.BUILD, "witness", "freshet-witness")
DCS = ["dc1", "dc2", "dc3"]
DIM = 16
USERS = 2000
ITEMS = 500
MODEL = {"name": "ctr", "shards": 8, "priority": 1,
         "tables": ["users:%d:%d:f32" % (USERS, DIM),
                    "items:%d:%d:f32" % (ITEMS, DIM)]}
CHROOT = "/itest/witness"
LAG_MS = 3000
CANARY, BASE = 7, 8
PROBE_N = 2000

rnd = random.Random(7)
user_vec = [[rnd.gauss(0, 0.45) for _ in range(DIM)] for _ in range(USERS)]
item_vec = [[rnd.gauss(0, 0.45) for _ in range(DIM)] for _ in range(ITEMS)]


def f32(rows_vals):
    return array.array("f", [x for v in rows_vals for x in v]).tobytes()


class Trainer:
    """Publishes and records every acknowledged update per table."""

    def __init__(self, node):
        self.node = node
        self.models = {"users": tablemodel.TableModel(USERS, DIM),
                       "items": tablemodel.TableModel(ITEMS, DIM)}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.good = 0

    def publish(self, table, rows, vecs):
        vals = f32(vecs)
        with self.lock, fr_proto.Conn(self.node.addr) as conn:
            v, o = conn.publish("ctr", table, rows, vals, DIM)
            self.models[table].record(v, o, rows, vals)
        return v

    def good_loop(self):
        g = random.Random(11)
        while not self.stop.is_set():
            rows = sorted(g.sample(range(USERS), 100))
            vecs = [[x + g.gauss(0, 0.01) for x in user_vec[r]] for r in rows]
            self.publish("users", rows, vecs)
            self.good += 1
            time.sleep(0.3)


def state_of(zkc, cluster):
    p = "/freshet/%s/models/ctr/state" % cluster
    if not zkc.exists(p):
        return None
    return json.loads(zkc.get(p)[0].decode())


def sums(node):
    m = [x for x in node.status()["models"] if x["name"] == "ctr"][0]
    return ({t["name"]: (t["checksum"], t.get("backend_checksum"))
             for t in m["tables"]}, m["rollback_epoch"])


with zkmod.ZooKeeper() as zk, \
        h.Cluster(8, models=[MODEL], name="witness", zk=zk,
                  dcs=["dc1", "dc1", "dc2", "dc2", "dc3", "dc3", "dc1", "dc1"],
                  registry=True, chroot=CHROOT,
                  node_extra={CANARY: {"node": {"canary": "ctr"}},
                              BASE: {"node": {"baseline": "ctr"},
                                     "baseline": {"lag_ms": LAG_MS}}},
                  extra={"zookeeper": {"session_timeout_ms": 4000}}) as c:
    c.register_models()
    c.start()
    for dc in DCS:
        c.leader_of(dc)
    src = c.nodes[1]
    tr = Trainer(src)
    for lo in range(0, USERS, 1000):
        tr.publish("users", list(range(lo, lo + 1000)), user_vec[lo:lo + 1000])
    tr.publish("items", list(range(ITEMS)), item_vec)
    # The probe: labels drawn from the model itself, so it predicts them.
    probe = os.path.join(c.dir, "probe.tsv")
    prb = random.Random(3)
    probe_users = set()
    with open(probe, "w") as f:
        f.write("# label user_table user_row item_table item_row\n")
        for _ in range(PROBE_N):
            u, i = prb.randrange(USERS), prb.randrange(ITEMS)
            z = sum(a * b for a, b in zip(user_vec[u], item_vec[i]))
            y = 1 if prb.random() < 1 / (1 + math.exp(-z)) else 0
            probe_users.add(u)
            f.write("%d\tusers\t%d\titems\t%d\n" % (y, u, i))
    time.sleep(LAG_MS / 1000.0 + 0.5)   # the baseline serves the start
    threading.Thread(target=tr.good_loop, daemon=True).start()

    from kazoo.client import KazooClient
    kz = KazooClient(hosts=zk.hosts + CHROOT)
    kz.start(timeout=15)
    wits = []
    for k in range(2):
        log = open(os.path.join(c.dir, "witness%d.log" % k), "w")
        wits.append((subprocess.Popen(
            [WITNESS, "--zk", c.zk_hosts, "--cluster", c.cluster_name,
             "--model", "ctr", "--probe", probe, "--interval", "1",
             "--seed", str(k + 1)],
            stdout=log, stderr=subprocess.STDOUT), log))
    try:
        # --- 1. no false alarm -------------------------------------------
        time.sleep(9)
        rounds = sum(open(w[1].name).read().count("decision=") for w in wits)
        dirs = tablemodel.directives(zk.hosts, CHROOT, c.cluster_name, "ctr")
        st = state_of(kz, c.cluster_name)
        chk.ok(rounds >= 10, "two witnesses evaluated %d rounds of good "
               "updates (%d published)" % (rounds, tr.good))
        chk.ok(not dirs, "no rollback filed on good updates")
        chk.ok(st is None or st["state"] == "healthy",
               "state stays healthy (%s)" % (st and st["state"]))
        corrupted = sum(open(w[1].name).read().count("decision=corrupted")
                        for w in wits)
        chk.ok(corrupted == 0, "no round decided corrupted")

        # --- 2. harm --------------------------------------------------------
        bad = random.Random(5)
        hurt = sorted(probe_users)
        t_harm = time.time()
        v_harm = tr.publish("users", hurt,
                            [[bad.gauss(0, 3.0) for _ in range(DIM)]
                             for _ in hurt])
        end = time.time() + 30
        while time.time() < end:
            dirs = tablemodel.directives(zk.hosts, CHROOT, c.cluster_name,
                                         "ctr")
            if dirs:
                break
            time.sleep(0.05)
        t_detect = time.time() - t_harm
        chk.ok(len(dirs) == 1, "a rollback was filed %.2f s after the "
               "harmful publish" % t_detect)
        epoch, T, R = dirs[0]
        chk.ok(T < v_harm < R, "it revokes the harmful update: (%d, %d] "
               "holds %d" % (T, R, v_harm))
        end = time.time() + 30
        while time.time() < end:
            try:
                if all(sums(n)[1] == epoch for n in c.nodes):
                    break
            except OSError:
                pass
            time.sleep(0.05)
        t_rolled = time.time() - t_harm
        chk.ok(all(sums(n)[1] == epoch for n in c.nodes),
               "every node applied epoch %d %.2f s after the harmful publish"
               % (epoch, t_rolled))
        st = state_of(kz, c.cluster_name)
        chk.ok(st and (st["state"] == "corrupted" or any(
            x["state"] == "corrupted" for x in st.get("history", []))),
            "the state was marked corrupted")
        time.sleep(3)
        dirs = tablemodel.directives(zk.hosts, CHROOT, c.cluster_name, "ctr")
        chk.ok(len(dirs) == 1, "two witnesses filed exactly one rollback")

        # --- 3. the reference ----------------------------------------------
        time.sleep(1)
        tr.stop.set()
        time.sleep(0.5)
        with tr.lock:
            want = {t: m.checksum([(T, R)]) for t, m in tr.models.items()}
            after = sum(1 for ws in tr.models["users"].writes.values()
                        for v, _, _ in ws if v > R)
        end = time.time() + LAG_MS / 1000.0 + 15
        last = None
        while time.time() < end:
            try:
                last = {n.id: sums(n)[0] for n in c.nodes}
            except OSError:
                last = None
            if last and all(v[t] == (want[t], want[t])
                            for v in last.values() for t in want):
                break
            time.sleep(0.1)
        chk.ok(last and all(v[t] == (want[t], want[t])
                            for v in last.values() for t in want),
               "every node (store and backend) equals the baseline's cut "
               "plus the %d good row updates after the directive" % after)
        end = time.time() + 15
        while time.time() < end:
            st = state_of(kz, c.cluster_name)
            if st and st["state"] == "healthy":
                break
            time.sleep(0.2)
        chk.ok(st and st["state"] == "healthy",
               "the witnesses mark the model healthy again after the "
               "rollback")
        p = h.cli("history", "--zk", c.zk_hosts, "--cluster", c.cluster_name,
                  "--model", "ctr", "--json")
        ev = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
        seq = [e["event"] == "rollback" and "rollback" or e["state"]
               for e in ev]
        chk.ok("corrupted" in seq and "rollback" in seq and
               seq[-1] == "healthy" and
               seq.index("corrupted") < seq.index("healthy", seq.index("corrupted")),
               "freshet history shows corrupted + the rollback, then "
               "healthy: %s" % seq)
    finally:
        tr.stop.set()
        for p, log in wits:
            p.send_signal(signal.SIGTERM)
        for p, log in wits:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
            log.close()
            sys.stderr.write(open(log.name).read()[-3000:])
        kz.stop()
        kz.close()
    summary = {"test": "witness", "nodes": len(c.nodes),
               "detect_s": round(t_detect, 3),
               "rolled_back_everywhere_s": round(t_rolled, 3)}
    print(json.dumps(summary))
chk.done()
