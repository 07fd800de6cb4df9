#!/usr/bin/env python3
"""`freshet model` and `freshet status` against a real ZooKeeper.

model: create -> list -> describe (text and --json equal what was created),
a second create is refused and changes nothing, an invalid spec writes
nothing, a malformed znode is reported by path while the good models are
still listed.

status: with no nodes, valid JSON and exit 0; a member whose admin port is
closed is shown down (exit 3); members whose admin endpoint is a small
fake /status server (this file's FakeNode: the JSON shape of
node/admin.c) let the freshness arithmetic be checked exactly: a healthy
cluster exits 0, a lagging node gives the DC's lag in ms and in shards,
equal vectors with different checksums are "diverged", a restarted node
is "stale", a DC without a leader is flagged; --watch redraws and exits 0
on SIGINT; ZooKeeper down exits 1.  Real nodes in status are tested with
the topology work (they need the node's ZooKeeper side).
"""

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time

from kazoo.client import KazooClient

import harness as h
from zk import ZooKeeper

chk = h.Checks("test_cli_zk", timeout=240)


def cli(*args, env=None, timeout=30):
    e = dict(os.environ)
    e.pop("FRESHET_ZK", None)
    if env:
        e.update(env)
    return subprocess.run([h.FRESHET] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=timeout,
                          env=e)


def ok(cond, what, p=None):
    """A check; the command's output is shown only when it fails."""
    chk.ok(cond, what if cond or p is None else what + ": " + out(p))


def out(p):
    return "exit %d\nstdout:\n%s\nstderr:\n%s" % (p.returncode, p.stdout,
                                                  p.stderr)


# ---------------------------------------------------------------- fake nodes

class FakeNode:
    """An HTTP server answering GET /status like freshetd's admin
    endpoint; .doc is the JSON object it serves (replace it at will)."""

    def __init__(self):
        me = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                me.requests.append(self.path)
                body = json.dumps(me.doc).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.doc = {}
        self.requests = []
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever,
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def hlc(ms, logical=0):
    return (ms << 16) | logical


def status_doc(node_id, dc, generation, models, leader=False, epoch=0):
    """models: [(name, shards, [(table, checksum)], max_version,
    {(t, s): [(origin, version)]})]"""
    ms = []
    for name, shards, tables, maxv, vv in models:
        ms.append({
            "name": name, "priority": 1, "shards": shards,
            "summary": "0" * 16, "max_version": maxv, "rollback_epoch": 0,
            "tables": [{"name": t, "rows": 64, "dim": 4, "dtype": "f32",
                        "checksum": c, "max_version": maxv}
                       for t, c in tables],
            "shard_vv": [{"table": t, "shard": s,
                          "vv": [{"origin": o, "version": v}
                                 for o, v in vv[(t, s)]]}
                         for (t, s) in sorted(vv)],
        })
    return {"node_id": node_id, "dc": dc, "cluster": "st",
            "generation": generation, "version": "0.1.0",
            "backend": "cpu", "uptime_s": 5, "listen": "127.0.0.1:1",
            "admin": "127.0.0.1:1", "stopping": False,
            "topology": {"dc": dc, "zk": "connected", "leader": leader,
                         "epoch": epoch},
            "models": ms, "peers": [], "wal": {}, "publish": {},
            "gossip": {}}


def member_json(node_id, dc, admin_port, generation):
    return json.dumps({"id": node_id, "dc": dc,
                       "addr": "127.0.0.1:%d" % (7000 + node_id),
                       "admin": "127.0.0.1:%d" % admin_port,
                       "roles": ["serving"],
                       "generation": generation}).encode()


def leader_json(node_id, dc, epoch, generation):
    return json.dumps({"id": node_id, "dc": dc,
                       "addr": "127.0.0.1:%d" % (7000 + node_id),
                       "epoch": epoch, "generation": generation}).encode()


def status_json(zk, cluster):
    p = cli("status", "--zk", zk.hosts, "--cluster", cluster, "--json",
            "--node-timeout", 2000)
    try:
        doc = json.loads(p.stdout)
    except ValueError:
        raise AssertionError("status --json is not JSON", p)
    return p, doc


def problems(doc, kind):
    return [p for p in doc["problems"] if p["kind"] == kind]


def dc_of(doc_model, dc):
    return [d for d in doc_model["dcs"] if d["dc"] == dc][0]


# ---------------------------------------------------------------- model

def test_model(zk, kz):
    root = "/freshet/freshet/models"

    p = cli("model", "create", "--zk", zk.hosts, "--name", "ctr",
            "--table", "users:1000:16", "--table", "items:500:8:f16",
            "--shards", 8, "--priority", 10)
    ok(p.returncode == 0 and
           p.stdout.strip() == "created model ctr (8 shards, 2 tables)",
           "model create prints what it created", p)
    data, _ = kz.get(root + "/ctr")
    znode = json.loads(data)
    ok(znode == {"name": "ctr", "priority": 10, "shards": 8,
                     "tables": [{"name": "users", "rows": 1000, "dim": 16,
                                 "dtype": "f32"},
                                {"name": "items", "rows": 500, "dim": 8,
                                 "dtype": "f16"}]},
           "the znode holds the definition: %r" % znode)

    # FRESHET_ZK stands in for --zk; --priority defaults to 0.
    p = cli("model", "create", "--name", "small", "--table", "t:1:1",
            "--shards", 1, env={"FRESHET_ZK": zk.hosts})
    ok(p.returncode == 0 and "created model small (1 shard, 1 table)"
           in p.stdout, "FRESHET_ZK is the default for --zk", p)

    p = cli("model", "list", "--zk", zk.hosts)
    lines = p.stdout.splitlines()
    ctr = [l for l in lines if l.split()[:1] == ["ctr"]]
    ok(p.returncode == 0 and len(ctr) == 1 and
           ctr[0].split() == ["ctr", "10", "8", "users:1000:16:f32",
                              "items:500:8:f16"] and
           any(l.split()[:4] == ["small", "0", "1", "t:1:1:f32"]
               for l in lines),
           "model list: one line per model with priority, shards, tables", p)

    p = cli("model", "list", "--zk", zk.hosts, "--json")
    doc = json.loads(p.stdout)
    byname = {m["name"]: m for m in doc["models"]}
    ok(p.returncode == 0 and sorted(byname) == ["ctr", "small"] and
           doc["malformed"] == [] and
           byname["ctr"]["priority"] == 10 and byname["ctr"]["shards"] == 8 and
           [(t["name"], t["rows"], t["dim"], t["dtype"], t["bytes"])
            for t in byname["ctr"]["tables"]] ==
           [("users", 1000, 16, "f32", 64000), ("items", 500, 8, "f16", 8000)],
           "model list --json equals what was created", p)

    p = cli("model", "describe", "ctr", "--zk", zk.hosts, "--json")
    d = json.loads(p.stdout)
    ok(p.returncode == 0 and d == byname["ctr"] and d["bytes"] == 72000,
           "model describe --json equals the listing", p)
    p = cli("model", "describe", "--zk", zk.hosts, "ctr")
    rows = {l.split()[0]: l.split() for l in p.stdout.splitlines() if l.strip()}
    ok(p.returncode == 0 and rows["model"] == ["model", "ctr"] and
           rows["priority"] == ["priority", "10"] and
           rows["shards"] == ["shards", "8"] and
           rows["users"] == ["users", "1000", "16", "f32", "64000"] and
           rows["items"] == ["items", "500", "8", "f16", "8000"] and
           rows["total"][1] == "72000",
           "model describe prints each table's rows, dim, dtype, bytes", p)

    # Definitions are immutable: a second create fails and changes nothing.
    p = cli("model", "create", "--zk", zk.hosts, "--name", "ctr",
            "--table", "users:9:9", "--shards", 2)
    ok(p.returncode == 1 and "model ctr already exists" in p.stderr and
           "immutable" in p.stderr, "a second create is refused", p)
    ok(json.loads(kz.get(root + "/ctr")[0]) == znode,
           "the refused create left the znode as it was")

    # Bad input: exit 2, the message names the problem, nothing written.
    bad = [
        (["--table", "u:10:4:f64"], "f64"),
        (["--table", "u:10:0"], "DIM"),
        (["--table", "u:10"], "missing DIM"),
        (["--table", "u:0:4"], "ROWS"),
        (["--table", "u:10:4", "--table", "u:5:5"], "twice"),
        (["--table", "bad name:10:4"], "NAME"),
        (["--table", "u:10:4", "--shards", "0"], "--shards"),
        (["--table", "u:10:4", "--shards", "2000000"], "--shards"),
    ]
    for extra, word in bad:
        args = ["model", "create", "--zk", zk.hosts, "--name", "nope"]
        if "--shards" not in extra:
            extra = extra + ["--shards", "4"]
        p = cli(*(args + extra))
        ok(p.returncode == 2 and word in p.stderr and
               kz.exists(root + "/nope") is None,
               "bad spec %s: exit 2 naming '%s', nothing written (%s)"
               % (" ".join(extra), word, p.stderr.splitlines()[:1]))
    p = cli("model", "create", "--zk", zk.hosts, "--name", "a/b",
            "--table", "t:1:1", "--shards", 1)
    ok(p.returncode == 2 and "--name" in p.stderr,
           "a model name with '/' is refused before ZooKeeper", p)

    # Clusters are separate registries.
    p = cli("model", "create", "--zk", zk.hosts, "--cluster", "other",
            "--name", "elsewhere", "--table", "t:1:1", "--shards", 1)
    ok(p.returncode == 0 and
           kz.exists("/freshet/other/models/elsewhere") is not None,
           "--cluster other writes under /freshet/other", p)
    p = cli("model", "list", "--zk", zk.hosts, "--json")
    ok("elsewhere" not in p.stdout, "the default cluster does not see it")

    # A malformed znode: the good models are still listed, the bad one is
    # reported by path (warning on stderr, "!" line, exit 3).
    kz.create(root + "/broken", b'{"name":"broken","shards":')
    p = cli("model", "list", "--zk", zk.hosts)
    ok(p.returncode == 3 and
           any(l.split()[:1] == ["ctr"] for l in p.stdout.splitlines()) and
           any(l.startswith("! broken") for l in p.stdout.splitlines()) and
           root + "/broken" in p.stderr and "warning" in p.stderr,
           "model list with a malformed znode: lists the rest, warns with "
           "the path, exits 3", p)
    p = cli("model", "list", "--zk", zk.hosts, "--json")
    doc = json.loads(p.stdout)
    ok(p.returncode == 3 and
           sorted(m["name"] for m in doc["models"]) == ["ctr", "small"] and
           [b["name"] for b in doc["malformed"]] == ["broken"] and
           root + "/broken" in doc["malformed"][0]["error"],
           "model list --json puts it under malformed", p)
    p = cli("model", "describe", "broken", "--zk", zk.hosts)
    ok(p.returncode == 1 and root + "/broken" in p.stderr and
           p.stdout == "", "describe of the malformed one exits 1 naming "
           "the path", p)
    p = cli("model", "describe", "ghost", "--zk", zk.hosts)
    ok(p.returncode == 1 and "not found" in p.stderr,
           "describe of a missing model exits 1", p)


# ---------------------------------------------------------------- status

def test_status(zk, kz):
    cl = "st"
    base = "/freshet/" + cl

    p, doc = status_json(zk, cl)
    ok(p.returncode == 0 and doc["dcs"] == [] and doc["models"] == [] and
           doc["problems"] == [] and doc["healthy"] is True and
           doc["cluster"] == cl and doc["zookeeper"] == zk.hosts,
           "status --json with nothing registered: zero nodes, healthy", p)
    p = cli("status", "--zk", zk.hosts, "--cluster", cl)
    ok(p.returncode == 0 and "0 nodes" in p.stdout and
           "healthy" in p.stdout, "status text, nothing registered", p)

    # A member whose admin port is closed: down, exit 3.
    closed = h.free_ports(1)[0]
    kz.create(base + "/nodes/dc9/9", member_json(9, "dc9", closed, 1),
              ephemeral=True, makepath=True)
    kz.create(base + "/leaders/dc9", leader_json(9, "dc9", 4, 1),
              ephemeral=True, makepath=True)
    p, doc = status_json(zk, cl)
    nodes = [n for d in doc["dcs"] for n in d["nodes"]]
    ok(p.returncode == 3 and len(nodes) == 1 and nodes[0]["id"] == 9 and
           nodes[0]["up"] is False and nodes[0]["state"] == "down" and
           [x["node"] for x in problems(doc, "down")] == [9] and
           doc["healthy"] is False,
           "a member with a closed admin port is down, exit 3", p)
    p = cli("status", "--zk", zk.hosts, "--cluster", cl)
    ok(p.returncode == 3 and
           any(l.startswith("!") and "down" in l and " 9" in l
               for l in p.stdout.splitlines()),
           "the text screen flags it with '!'", p)
    kz.delete(base + "/nodes/dc9/9")
    kz.delete(base + "/leaders/dc9")

    # Fake nodes: dc1 = {1 (leader), 2}, dc2 = {3 (leader)}; model m has
    # 8 shards and two tables; origins 1 and 3 wrote everything at V.
    fakes = {i: FakeNode() for i in (1, 2, 3)}
    try:
        now = int(time.time() * 1000)
        V = hlc(now, 5)
        tables = [("a", "00000000000000aa"), ("b", "00000000000000bb")]

        def full_vv(v=V):
            return {(t, s): [(1 if t == 0 else 3, v)]
                    for t in range(2) for s in range(8)}

        def model(vv, maxv=V, tabs=tables):
            return [("m", 8, tabs, maxv, vv)]

        fakes[1].doc = status_doc(1, "dc1", 4, model(full_vv()), True, 12)
        fakes[2].doc = status_doc(2, "dc1", 4, model(full_vv()))
        fakes[3].doc = status_doc(3, "dc2", 4, model(full_vv()), True, 30)
        for i, dc in ((1, "dc1"), (2, "dc1"), (3, "dc2")):
            kz.create("%s/nodes/%s/%d" % (base, dc, i),
                      member_json(i, dc, fakes[i].port, 4),
                      ephemeral=True, makepath=True)
        kz.create(base + "/leaders/dc1", leader_json(1, "dc1", 12, 4),
                  ephemeral=True, makepath=True)
        kz.create(base + "/leaders/dc2", leader_json(3, "dc2", 30, 4),
                  ephemeral=True, makepath=True)

        p, doc = status_json(zk, cl)
        dcs = {d["dc"]: d for d in doc["dcs"]}
        m = [x for x in doc["models"] if x["name"] == "m"]
        ok(p.returncode == 0 and doc["healthy"] and
               sorted(dcs) == ["dc1", "dc2"] and
               dcs["dc1"]["leader"]["id"] == 1 and
               dcs["dc1"]["leader"]["epoch"] == 12 and
               dcs["dc2"]["leader"]["id"] == 3 and
               [n["id"] for n in dcs["dc1"]["nodes"]] == [1, 2] and
               all(n["up"] and n["status"]["backend"] == "cpu" and
                   n["status"]["generation"] == 4
                   for d in dcs.values() for n in d["nodes"]) and
               len(m) == 1 and m[0]["freshest_version"] == V and
               m[0]["freshest_ms"] == now and
               all(d["lag_ms"] == 0 and d["shards_behind"] == 0
                   for d in m[0]["dcs"]),
               "three healthy fake nodes: exit 0, leaders, no lag", p)
        ok(all("/status?shards=1" in f.requests[-1]
                   for f in fakes.values()),
               "status asks each node for /status?shards=1")
        p = cli("status", "--zk", zk.hosts, "--cluster", cl)
        ok(p.returncode == 0 and "leader 1 (epoch 12)" in p.stdout and
               "healthy" in p.stdout and
               not any(l.startswith("!") for l in p.stdout.splitlines()),
               "healthy text screen has no '!' line", p)

        # Node 2 is 7000 ms behind on shards 0 and 5 (table a) and has no
        # entry at all for table b shard 7: 3 shards behind.
        old = hlc(now - 7000)
        vv2 = full_vv()
        vv2[(0, 0)] = [(1, old)]
        vv2[(0, 5)] = [(1, old)]
        del vv2[(1, 7)]
        fakes[2].doc = status_doc(2, "dc1", 4, model(
            vv2, old, [("a", "0000000000000001"), ("b", "00000000000000bb")]))
        p, doc = status_json(zk, cl)
        m = [x for x in doc["models"] if x["name"] == "m"][0]
        d1, d2 = dc_of(m, "dc1"), dc_of(m, "dc2")
        lag = problems(doc, "lagging")
        n2 = [n for d in doc["dcs"] for n in d["nodes"] if n["id"] == 2][0]
        ok(p.returncode == 3 and d1["lag_ms"] == 7000 and
               d1["shards_behind"] == 3 and d1["slowest_node"] == 2 and
               d1["flagged"] and d2["lag_ms"] == 0 and
               d2["shards_behind"] == 0 and not d2["flagged"] and
               n2["models"][0]["lag_ms"] == 7000 and
               n2["models"][0]["shards_behind"] == 3 and
               len(lag) == 1 and lag[0]["dc"] == "dc1" and
               lag[0]["node"] == 2 and problems(doc, "diverged") == [],
               "a node 7000 ms and 3 shards behind: its DC lags, exit 3", p)
        p = cli("status", "--zk", zk.hosts, "--cluster", cl)
        ok(p.returncode == 3 and
               any(l.startswith("!") and l.split()[1:5] ==
                   ["dc1", "2/2", "7000", "3"]
                   for l in p.stdout.splitlines()),
               "the text screen shows dc1's lag and shards behind", p)

        # 4000 ms behind is within the 5000 ms bound: shown, not flagged.
        vv2 = full_vv()
        vv2[(1, 2)] = [(3, hlc(now - 4000))]
        fakes[2].doc = status_doc(2, "dc1", 4, model(vv2))
        fakes[2].doc["models"][0]["max_version"] = hlc(now - 4000)
        p, doc = status_json(zk, cl)
        d1 = dc_of([x for x in doc["models"] if x["name"] == "m"][0], "dc1")
        ok(p.returncode == 0 and d1["lag_ms"] == 4000 and
               d1["shards_behind"] == 1 and not d1["flagged"],
               "4000 ms behind: reported, not flagged", p)

        # Equal vectors, different checksums: diverged.  And a node whose
        # generation differs from its znode's: stale.
        fakes[2].doc = status_doc(2, "dc1", 5, model(full_vv()))
        fakes[3].doc = status_doc(3, "dc2", 4, model(
            full_vv(), V, [("a", "00000000000000aa"), ("b", "0000000000000bad")]),
            True, 30)
        p, doc = status_json(zk, cl)
        dv = problems(doc, "diverged")
        st = problems(doc, "stale")
        ok(p.returncode == 3 and len(dv) == 1 and dv[0]["node"] == 3 and
               "table b" in dv[0]["message"] and
               "0000000000000bad" in dv[0]["message"] and
               len(st) == 1 and st[0]["node"] == 2,
               "diverged checksums and a stale generation are flagged", p)

        # A DC without a leader; a node that is not up to the model at all.
        fakes[2].doc = status_doc(2, "dc1", 4, model(full_vv()))
        fakes[3].doc = status_doc(3, "dc2", 4, model(full_vv()), True, 30)
        kz.delete(base + "/leaders/dc2")
        p, doc = status_json(zk, cl)
        nl = problems(doc, "no-leader")
        ld = problems(doc, "leader")
        ok(p.returncode == 3 and [x["dc"] for x in nl] == ["dc2"] and
               [d["leader"] for d in doc["dcs"] if d["dc"] == "dc2"] == [None]
               and [x["node"] for x in ld] == [3],
               "no leader in dc2 (and node 3 still says it leads)", p)

        # A malformed member znode is skipped, counted and flagged.
        kz.create(base + "/leaders/dc2", leader_json(3, "dc2", 31, 4),
                  ephemeral=True)
        kz.create(base + "/nodes/dc2/44", b"not json", ephemeral=True)
        p, doc = status_json(zk, cl)
        ok(p.returncode == 3 and doc["bad_znodes"] == 1 and
               len(problems(doc, "malformed")) == 1 and
               base + "/nodes/dc2/44" in p.stderr and
               sorted(n["id"] for d in doc["dcs"] for n in d["nodes"]) ==
               [1, 2, 3], "a malformed member is skipped and flagged, its "
               "path on stderr", p)
        kz.delete(base + "/nodes/dc2/44")
        p, doc = status_json(zk, cl)
        ok(p.returncode == 0, "healthy again", p)

        # --watch redraws every second and exits 0 on SIGINT.
        w = subprocess.Popen([h.FRESHET, "status", "--zk", zk.hosts,
                              "--cluster", cl, "--watch"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        time.sleep(2.6)
        w.send_signal(signal.SIGINT)
        so, se = w.communicate(timeout=10)
        ok(w.returncode == 0 and so.count("\033[H\033[2J") >= 2 and
               so.count("freshet status") >= 2,
               "--watch redrew %d times and exited %d on SIGINT: %s"
               % (so.count("\033[H\033[2J"), w.returncode, se))
    finally:
        for f in fakes.values():
            f.close()



def test_zk_down(zk):
    # --watch --json lives through ZooKeeper going away and coming back:
    # rounds without it carry zookeeper_error, later ones are whole again.
    w = subprocess.Popen([h.FRESHET, "status", "--zk", zk.hosts,
                          "--cluster", "st", "--watch", "--json",
                          "--timeout", "2000"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    time.sleep(1.5)
    zk.stop()
    time.sleep(3)
    zk.start()
    time.sleep(4)
    w.send_signal(signal.SIGINT)
    so, se = w.communicate(timeout=20)
    docs = [json.loads(l) for l in so.splitlines()]
    down = [i for i, d in enumerate(docs) if "zookeeper_error" in d]
    ok(w.returncode == 0 and down and docs[0]["healthy"] and
       "zookeeper_error" not in docs[-1] and docs[-1]["healthy"] and
       down[-1] < len(docs) - 1 and
       all(d["healthy"] is False for i, d in enumerate(docs) if i in down),
       "--watch --json across a ZooKeeper restart: %d rounds, %d without "
       "ZooKeeper, the last whole again, exit %d (%s)"
       % (len(docs), len(down), w.returncode, se.strip()[-300:]))

    zk.stop()
    p = cli("status", "--zk", zk.hosts, "--cluster", "st", "--timeout", 1500)
    ok(p.returncode == 1 and zk.hosts in p.stderr,
           "status with ZooKeeper down exits 1 naming it", p)
    p = cli("model", "list", "--zk", zk.hosts, "--timeout", 1500)
    ok(p.returncode == 1 and zk.hosts in p.stderr,
           "model list with ZooKeeper down exits 1", p)


with ZooKeeper() as zk:
    kz = KazooClient(hosts=zk.hosts, timeout=10)
    kz.start(timeout=20)
    try:
        test_model(zk, kz)
        test_status(zk, kz)
    finally:
        kz.stop()
        kz.close()
    test_zk_down(zk)
chk.done()
