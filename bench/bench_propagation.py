#!/usr/bin/env python3
"""bench_propagation — how fast and at what cost one publish reaches every
replica of a DC, peer to peer, against a star baseline in the same run.

Real freshetd processes on loopback (tests/integration/harness.py starts
and removes them), one data centre, default 8 nodes, a 1M x 64 f32 table.
Every node starts from one snapshot of a fully written table (made first
by a single node), so the tables are resident and identical as a serving
replica's are; --no-prefill starts them empty instead.  A Python client
(fr_proto.py) publishes to node 1 K sparse updates (1 % of the rows each,
one PUBLISH per update, one every --interval-ms); a poller thread per
node, on its own connection, looks up one sentinel row per shard the
update touched until every sentinel carries the update's version.
Measured per mode:

- latency publish -> applied on every node (p50/p99 over the updates, and
  the mean per node);
- peer bytes per node (freshet_bytes_total in+out, clients excluded) and
  the publisher's out-bytes, over the publishing phase;
- then, on separate idle full-mesh clusters (--idle-written shards
  written once, then nothing), the control traffic per node with 100,000
  shards and with 16 (it should not depend on the shard count).

Modes: "gossip" is the normal static full mesh; "star" is the same nodes
and code with a star topology (every replica peers only with node 1, the
publisher, which peers with all), so every row leaves node 1 once per
replica.  The ratios gossip/star are the result; absolute numbers on a
shared 2-core machine are noise.  A readable table comes first; the last
line is one JSON object (as for the other benches).

With --dcs D > 1 it measures data centres instead (D x K nodes, every
link between dcs capped at --wan-mbit), side by side on the same updates:
"freshet" (ZooKeeper, the model in the registry, only leaders link dcs),
"star" (static peers, every replica pulls from the publisher's node, so
each remote replica's copy crosses the WAN) and "redis" (a redis-server in
dc1, the trainer XADDs each update, a consumer process per replica XREADs
it, those outside dc1 through one bench/wan_proxy.py per dc with the same
token bucket as the nodes').  Per mode: latency p50/p99 and WAN bytes over
the ideal (D-1)*U; then a priority run (two registry models, the WAN
saturated by the low-priority one): p99 of each and their ratio.

Not a correctness test (tests/integration/ is), though it does check that
each run ends converged and serves the published values.
"""

import argparse
import atexit
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
import benchutil as bu  # noqa: E402  (bench/, next to this file)
from benchutil import MODEL, SRC, TABLE, pct, random_f32  # noqa: E402

QUICK = {"rows": 65536, "dim": 16, "publishes": 6, "interval_ms": 200,
         "idle_shards": 10000, "idle_seconds": 2}
# --dcs > 1: a 100k x 64 f32 table; an update of 5 % of it is 5,000 rows,
# 1.38 MB on the wire (docs/wire.md §2: 8 + 8 + 4 + 256 bytes a row).
DC = {"rows": 100000, "frac": 0.05, "publishes": 16, "interval_ms": 1000,
      "poll_ms": 2.0}
DC_QUICK = {"publishes": 6, "interval_ms": 700, "prio_seconds": 6}


def parse_args():
    ap = argparse.ArgumentParser(
        prog="bench_propagation",
        description="publish -> applied-on-every-node latency, bytes per node "
                    "and idle control traffic: gossip mesh vs star, on loopback")
    bu.add_common_args(ap, "node/freshetd", rows=1048576, shards=64, poll_ms=1.0,
                       seed=20261125)
    bu.add_options(ap, [
        ("--nodes", 8, "nodes in the DC"),
        ("--frac", 0.01, "fraction of the rows in each update"),
        ("--publishes", 20, "updates published per mode"),
        ("--interval-ms", 2000, "time between update starts (%(default)s: on a 2-core "
                                "machine 8 nodes need about 1 s of CPU per 2.8 MB "
                                "update, so 500 ms measures queueing behind earlier "
                                "updates, not propagation)"),
        ("--idle-shards", 100000, "shards of the idle-traffic model (%(default)s); "
                                  "compared with 16"),
        ("--idle-seconds", 10.0, "idle measurement window"),
        ("--idle-written", 1000, "shards written once (one row each, spread evenly) "
                                 "before the idle window (%(default)s; 0: none). Not "
                                 "all 100,000: such a publish takes minutes to "
                                 "converge, see the report"),
    ])
    ap.add_argument("--modes", default="gossip,star",
                    help="comma-separated, of gossip and star (%(default)s)")
    ap.add_argument("--no-prefill", dest="prefill", action="store_false",
                    help="start from empty tables instead of a full one (every "
                         "update then also pays first-touch page faults on "
                         "fresh table pages: a warm-up cost, not propagation)")
    g = ap.add_argument_group(
        "several data centres (--dcs > 1)",
        "D x K nodes; freshet (ZooKeeper, leaders link dcs) vs star (every "
        "replica pulls from the publisher's node) vs a Redis Streams broker in "
        "dc1, every replica outside dc1 reading through a capped WAN proxy; "
        "then a priority run. Defaults there: --rows %d --frac %g --publishes %d "
        "--interval-ms %d --poll-ms %g (--quick: --publishes %d --interval-ms %d "
        "--prio-seconds %g)" % (DC["rows"], DC["frac"], DC["publishes"],
                                DC["interval_ms"], DC["poll_ms"], DC_QUICK["publishes"],
                                DC_QUICK["interval_ms"], DC_QUICK["prio_seconds"]))
    bu.add_options(g, [
        ("--dcs", 1, "data centres (%(default)s: the single-DC bench above)"),
        ("--nodes-per-dc", 3, "nodes per dc"),
        ("--wan-mbit", 100, "WAN budget, Mbit/s, per (node, remote dc) in the nodes "
                            "(gossip.wan_mbit) and per remote dc and direction in the "
                            "Redis proxies (%(default)s; 100 Mbit/s = 12.5 MB/s)"),
    ])
    g.add_argument("--dc-modes", default="freshet,star,redis",
                   help="comma-separated, of freshet, star and redis (%(default)s)")
    g.add_argument("--no-priority", dest="priority", action="store_false",
                   help="skip the two-model priority run")
    bu.add_options(g, [
        ("--prio-seconds", 20.0, "priority run: publishing time"),
        ("--prio-wan-mbit", 20, "priority run: gossip.wan_mbit (%(default)s; lower than "
                                "--wan-mbit so that a 2-core machine can offer more "
                                "than the WAN carries)"),
        ("--prio-load", 1.5, "priority run: low-priority bytes offered per second, as "
                             "a multiple of --prio-wan-mbit"),
        ("--prio-lo-rows", 1000, "priority run: rows per low-priority update"),
        ("--prio-hi-rows", 100, "priority run: rows per high-priority update"),
        ("--prio-hi-ms", 250, "priority run: time between high-priority updates"),
    ])
    g.add_argument("--redis-server", default="/usr/bin/redis-server",
                   help="redis-server binary (%(default)s)")
    ap.add_argument("--quick", action="store_true",
                    help="small sizes for a smoke run (under 30 s): --rows %d --dim "
                         "%d --publishes %d --interval-ms %d --idle-shards %d "
                         "--idle-seconds %d, unless given" % tuple(QUICK.values()))
    a = ap.parse_args()
    # Only what the command line left at its default.
    presets = [DC] + ([DC_QUICK] if a.quick else []) if a.dcs > 1 \
        else ([QUICK] if a.quick else [])
    bu.apply_presets(ap, a, presets)
    if a.dcs < 1 or a.nodes_per_dc < 1:
        ap.error("--dcs and --nodes-per-dc: expected at least 1")
    if a.dcs > 1:
        if a.dcs * a.nodes_per_dc > 64:
            ap.error("--dcs x --nodes-per-dc: at most 64 nodes on one machine")
        if a.wan_mbit < 1 or a.prio_wan_mbit < 1:
            ap.error("--wan-mbit, --prio-wan-mbit: expected at least 1")
        if a.prio_load <= 0 or a.prio_seconds <= 0 or a.prio_hi_ms < 1:
            ap.error("--prio-load, --prio-seconds, --prio-hi-ms: expected > 0")
        if not 1 <= a.prio_lo_rows <= a.rows or not 1 <= a.prio_hi_rows <= a.rows:
            ap.error("--prio-lo-rows, --prio-hi-rows: expected 1..--rows")
        a.dc_modes = [m for m in a.dc_modes.split(",") if m]
        for m in a.dc_modes:
            if m not in ("freshet", "star", "redis"):
                ap.error("--dc-modes: '%s' is not freshet, star or redis" % m)
    a.modes = [m for m in a.modes.split(",") if m]
    for m in a.modes:
        if m not in ("gossip", "star"):
            ap.error("--modes: '%s' is not gossip or star" % m)
    if a.nodes < 2:
        ap.error("--nodes: expected at least 2")
    if not 0 < a.frac <= 1:
        ap.error("--frac: expected 0 < F <= 1")
    if a.publishes < 1:
        ap.error("--publishes: expected at least 1")
    return a


class Update:
    """One published update: its rows, values, sentinels and timings."""

    def __init__(self, rows, values, shards, nnodes, model=MODEL, table=TABLE):
        self.rows = rows
        self.values = values
        self.model = model
        self.table = table
        first = {}
        for r in rows:
            first.setdefault(r % shards, r)
        self.sentinels = sorted(first.values())
        self.t_send = None
        self.t_ack = None
        self.version = None
        self.seen = [None] * nnodes   # per node: first time every sentinel had it


def make_updates(a, nnodes=None):
    rng = random.Random(a.seed)
    m = max(1, int(round(a.frac * a.rows)))
    ups = []
    for _ in range(a.publishes):
        rows = rng.sample(range(a.rows), m)
        ups.append(Update(rows, random_f32(rng, m * a.dim), a.shards, nnodes or a.nodes))
    return ups, m


class Pollers(bu.Pollers):
    """A thread per node, each with its own connection, looking up the
    sentinels of every update that node has not yet been seen to hold."""

    def __init__(self, fp, nodes, poll_s):
        self.updates = []
        self.rtt = [0.0] * len(nodes)
        super().__init__(fp, nodes, poll_s)

    def add(self, u):
        with self.lock:
            self.updates.append(u)

    def set_version(self, u, version):
        with self.lock:
            u.version = version

    def poll(self, i):
        conn = self.conns[i]
        # Until the ack names the version, every sentinel is asked and the
        # rising minimum of their versions is kept with its time (a
        # replica may have the update before the publisher's ack is
        # read); after it, only the sentinels still below the version.
        hist = {}   # id(update) -> [(t, min sentinel version)], rising
        left = {}   # id(update) -> sentinels not yet at the version
        while not self.stop:
            with self.lock:
                active = [(u, u.version) for u in self.updates if u.seen[i] is None]
            if not active:
                time.sleep(self.poll_s)
                continue
            want = {}   # (model, table) -> rows
            for u, v in active:
                want.setdefault((u.model, u.table), set()).update(
                    u.sentinels if v is None else left.get(id(u), u.sentinels))
            vmaps = {}
            t0 = time.monotonic()
            for (mod, tab), rows in want.items():
                rows = sorted(rows)
                vers, _, _ = conn.lookup(mod, tab, rows, want_values=False)
                vmaps[(mod, tab)] = dict(zip(rows, vers))
            t = time.monotonic()
            self.lookups[i] += 1
            self.rtt[i] += t - t0
            for u, v in active:
                vmap = vmaps[(u.model, u.table)]
                seen = None
                if v is None:
                    minv = min(vmap[r] for r in u.sentinels)
                    hl = hist.setdefault(id(u), [])
                    if not hl or minv > hl[-1][1]:
                        hl.append((t, minv))
                    continue
                if id(u) not in left:
                    # Versions only rise: the first poll that saw
                    # them all at >= v is when the node had it.
                    seen = next((tt for tt, mv in hist.pop(id(u), ()) if mv >= v), None)
                    left[id(u)] = u.sentinels
                if seen is None:
                    left[id(u)] = [r for r in left[id(u)] if vmap[r] < v]
                    if not left[id(u)]:
                        seen = t
                if seen is not None:
                    left.pop(id(u), None)
                    with self.lock:
                        u.seen[i] = seen
            time.sleep(self.poll_s)

    def wait_all(self, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.errors:
                return False
            with self.lock:
                if all(s is not None for u in self.updates for s in u.seen):
                    return True
            time.sleep(0.01)
        return False

    def check(self, what, ok, updates, timeout):
        """Raise unless wait_all(timeout), which returned ok, saw every
        update on every node."""
        if self.errors:
            raise RuntimeError("%s: %s" % (what, "; ".join(self.errors)))
        if not ok:
            missing = {n.id: sum(1 for u in updates if u.seen[i] is None)
                       for i, n in enumerate(self.nodes)}
            raise RuntimeError("%s: updates not applied everywhere after %d s "
                               "(updates missing per node: %r)" % (what, timeout, missing))


def publish_frames(pub, updates, dim):
    """The PUBLISH frames of updates on pub, built before the clock starts:
    only sending is timed."""
    return [pub.publish_frame(u.model, u.table, struct.pack("<%dQ" % len(u.rows), *u.rows),
                              u.values, dim) for u in updates]


def traffic(node):
    """Peer traffic counters of one node (client connections excluded)."""
    out = {"in": 0.0, "out": 0.0, "pull_in": 0.0, "pull_out": 0.0, "pull_in_from": {}}
    for (name, labels), v in node.metrics().items():
        d = dict(labels)
        if d.get("peer") in (None, "client"):
            continue
        if name == "freshet_bytes_total":
            out[d["direction"]] += v
        elif name == "freshet_pull_bytes_total":
            out["pull_" + d["direction"]] += v
            if d["direction"] == "in":
                out["pull_in_from"][int(d["peer"])] = v
    return out


def traffic_delta(a, b):
    d = {k: b[k] - a[k] for k in ("in", "out", "pull_in", "pull_out")}
    d["pull_in_from"] = {p: v - a["pull_in_from"].get(p, 0.0)
                         for p, v in b["pull_in_from"].items()}
    return d


def wait_links(c, peer_map, timeout=60):
    """Until every node reports every configured peer link up."""
    n = len(c.nodes)
    want = {node.id: (n - 1 if peer_map is None else len(peer_map.get(node.id, ())))
            for node in c.nodes}
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        up = {node.id: node.metric_sum("freshet_peer_up") for node in c.nodes}
        if all(up[k] >= want[k] for k in want):
            return
        time.sleep(0.05)
    raise RuntimeError("peer links not all up after %d s: %r (want %r)" % (timeout, up, want))


def fingerprints(c, timeout):
    """Each node's /status fingerprint (model summary and table checksums;
    computing them reads the whole table, hence the long timeout)."""
    fps = []
    for node in c.nodes:
        st = json.loads(node.http("/status", timeout=timeout))
        fps.append(tuple((m["name"], m["summary"],
                          tuple((t["name"], t["checksum"]) for t in m["tables"]))
                         for m in st["models"]))
    return fps


def star_peers(n):
    pm = {1: list(range(2, n + 1))}
    for i in range(2, n + 1):
        pm[i] = [1]
    return pm


def make_snapshot(h, fp, a, out_dir):
    """A snapshot of the model with every row written once, made by one
    node on its own (publish it all, SIGTERM: the node snapshots at a clean
    exit).  Every node of a measured cluster starts from a copy, so all
    start identical, converged, with their table pages resident, as a
    serving replica's are."""
    rng = random.Random(a.seed - 1)
    with h.Cluster(1, models=[bu.bench_model(a)], extra=bu.node_timers(a),
                   name="bench-fill") as c:
        c.start()
        chunk = max(1, (24 << 20) // (8 + 4 * a.dim))
        with fp.Conn(c.nodes[0].addr, timeout=300) as cn:
            for lo in range(0, a.rows, chunk):
                n = min(chunk, a.rows - lo)
                cn.publish(MODEL, TABLE, struct.pack("<%dQ" % n, *range(lo, lo + n)),
                           random_f32(rng, n * a.dim), a.dim)
        rc = c.nodes[0].stop(timeout=300)
        if rc != 0:
            raise RuntimeError("fill node exited %r; log:\n%s" % (rc, c.nodes[0].log()))
        snap = os.path.join(out_dir, MODEL + ".snap")
        shutil.move(os.path.join(c.nodes[0].data_dir, MODEL + ".snap"), snap)
    return snap


def seed_data_dirs(c, snap):
    for node in c.nodes:
        os.makedirs(node.data_dir, exist_ok=True)
        dst = os.path.join(node.data_dir, MODEL + ".snap")
        try:
            os.link(snap, dst)   # read only at start-up; never rewritten here
        except OSError:
            shutil.copyfile(snap, dst)


def timed_publish(fp, pub, pollers, updates, frames_, interval_s, t_start):
    """Send update k at t_start + k * interval_s (or at once when late),
    each on the publisher connection pub, waiting for its ack (a BUSY
    answer is retried after the node's hint); the pollers learn of each
    update before it is sent and of its version when it is acked."""
    for k, (u, frame_) in enumerate(zip(updates, frames_)):
        delay = t_start + k * interval_s - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        pollers.add(u)
        u.t_send = time.monotonic()
        version = bu.publish_retry(fp, pub, frame_)
        u.t_ack = time.monotonic()
        pollers.set_version(u, version)


def publish_and_wait(fp, pub, pollers, updates, frames_, interval_ms, timeout):
    """timed_publish the updates, one every interval_ms from 0.2 s on, then
    wait up to timeout s until every node holds them all (wait_all)."""
    timed_publish(fp, pub, pollers, updates, frames_, interval_ms / 1000.0,
                  time.monotonic() + 0.2)
    return pollers.wait_all(timeout)


def run_mode(h, fp, a, mode, updates, snap):
    peer_map = None if mode == "gossip" else star_peers(a.nodes)
    res = {"topology": "full mesh" if mode == "gossip" else "star on node 1"}
    with h.Cluster(a.nodes, models=[bu.bench_model(a)], extra=bu.node_timers(a),
                   name="bench-" + mode, peers=peer_map) as c:
        if snap:
            seed_data_dirs(c, snap)
        t0 = time.monotonic()
        c.start()
        wait_links(c, peer_map)
        res["startup_s"] = round(time.monotonic() - t0, 2)

        pub = fp.Conn(c.nodes[0].addr, timeout=120)
        frames_ = publish_frames(pub, updates, a.dim)
        reset(updates, a.nodes)
        before = [traffic(n) for n in c.nodes]
        pollers = Pollers(fp, c.nodes, a.poll_ms / 1000.0)
        try:
            ok = publish_and_wait(fp, pub, pollers, updates, frames_, a.interval_ms, 120)
        finally:
            pollers.close()
        pub.close()
        pollers.check(mode, ok, updates, 120)
        after = [traffic(n) for n in c.nodes]

        lat = [max(s - u.t_send for s in u.seen) * 1000 for u in updates]
        per_node = {c.nodes[i].id: round(sum(u.seen[i] - u.t_send for u in updates)
                                         * 1000 / len(updates), 2)
                    for i in range(a.nodes)}
        acks = [(u.t_ack - u.t_send) * 1000 for u in updates]
        deltas = [traffic_delta(b0, b1) for b0, b1 in zip(before, after)]
        tot = [d["in"] + d["out"] for d in deltas]
        imax = max(range(a.nodes), key=lambda i: tot[i])
        rep_pull_in = sum(d["pull_in"] for d in deltas[1:])
        from_pub = sum(d["pull_in_from"].get(1, 0.0) for d in deltas[1:])
        nlook = sum(pollers.lookups)
        res.update({
            "p50_ms": round(pct(lat, 50), 2),
            "p99_ms": round(pct(lat, 99), 2),
            "mean_ms": round(sum(lat) / len(lat), 2),
            "max_ms": round(max(lat), 2),
            # > 1 when updates queue behind earlier ones (offered load
            # above what the machine can apply).
            "trend_last_over_first_quarter": round(
                sum(lat[-max(1, len(lat) // 4):]) / max(1, len(lat) // 4) /
                (sum(lat[:max(1, len(lat) // 4)]) / max(1, len(lat) // 4)), 2),
            "ack_p50_ms": round(pct(acks, 50), 2),
            "per_node_mean_ms": per_node,
            "bytes_per_node_mean": round(sum(tot) / a.nodes),
            "bytes_max_node": round(tot[imax]),
            "max_node": c.nodes[imax].id,
            "publisher_out_bytes": round(deltas[0]["out"]),
            "publisher_pull_out_bytes": round(deltas[0]["pull_out"]),
            "replica_in_bytes_mean": round(sum(d["in"] for d in deltas[1:]) / (a.nodes - 1)),
            "replica_pull_in_from_publisher_share":
                round(from_pub / rep_pull_in, 3) if rep_pull_in else None,
            "poll_lookups": nlook,
            "poll_rtt_ms": round(sum(pollers.rtt) * 1000 / nlook, 3) if nlook else None,
        })

        # The run must end converged and serving what was published: the
        # rows of the last update are nobody's to overwrite.
        last = updates[-1]
        check = last.rows[:16]
        want = b"".join(last.values[last.rows.index(r) * 4 * a.dim:
                                    (last.rows.index(r) + 1) * 4 * a.dim] for r in check)
        for node in c.nodes:
            with fp.Conn(node.addr) as cn:
                _, _, got = cn.lookup(MODEL, TABLE, check)
            if got != want:
                raise RuntimeError("%s: node %d serves other values than published"
                                   % (mode, node.id))
        t0 = time.monotonic()
        fps = fingerprints(c, timeout=600)
        res["status_s"] = round(time.monotonic() - t0, 2)
        if not all(f == fps[0] for f in fps):
            raise RuntimeError("%s: nodes not converged: %r" % (mode, fps))
        res["converged"] = True
    return res


def run_idle(h, fp, a, shards):
    """Bytes/s per node on an idle full mesh, some of whose shards were
    written once before (a protocol that re-sent per-shard state of
    written shards would show it)."""
    model = {"name": "idle", "shards": shards, "priority": 1,
             "tables": ["idle:%d:4:f32" % shards]}
    with h.Cluster(a.nodes, models=[model], extra=bu.node_timers(a),
                   name="bench-idle%d" % shards) as c:
        c.start()
        wait_links(c, None)
        w = min(a.idle_written, shards)
        if w:
            with fp.Conn(c.nodes[0].addr, timeout=120) as cn:
                rng = random.Random(a.seed + shards)
                cn.publish("idle", "idle", [i * shards // w for i in range(w)],
                           random_f32(rng, w * 4), 4)
        c.wait_converged(timeout=120)
        time.sleep(1.0)  # let the last pull-done notifications settle
        b0 = [traffic(n) for n in c.nodes]
        t0 = time.monotonic()
        time.sleep(a.idle_seconds)
        b1 = [traffic(n) for n in c.nodes]
        dt = time.monotonic() - t0
        c.wait_converged(timeout=60)
        rates = [(d["in"] + d["out"]) / dt for d in (traffic_delta(x, y) for x, y in zip(b0, b1))]
    return {"bytes_per_s_mean": round(sum(rates) / len(rates), 1),
            "bytes_per_s_max": round(max(rates), 1), "written_shards": w}


# ===========================================================================
# Several data centres (--dcs > 1): freshet vs star vs a Redis Streams broker
# ===========================================================================

ROW_HDR = 8 + 8 + 4          # a row on the wire: id, version, origin (+ values)
STREAM = "emb"               # the Redis stream
_RHDR = struct.Struct("<qII")  # Redis entry: seq (-1: stop), rows, dim
_extra_cleanup = []          # callables: Redis, proxies, consumers, ZooKeeper


def _cleanup_extra():
    while _extra_cleanup:
        try:
            _extra_cleanup.pop()()
        except Exception:  # cleanup goes on whatever one step raised
            pass


def register_models(h, c):
    """The models in ZooKeeper: `freshet model create` when the CLI has
    it, else the znode written directly (the registry's JSON form)."""
    try:
        c.register_models()
        return "cli"
    except (AssertionError, OSError, subprocess.SubprocessError) as e:
        sys.stderr.write("bench_propagation: freshet model create failed (%s); "
                         "writing the znodes with kazoo\n" % str(e).strip()[:200])
    from kazoo.client import KazooClient
    zc = KazooClient(hosts=c.zk.hosts, timeout=10)
    zc.start(timeout=15)
    try:
        for m in c.models:
            tabs = []
            for t in m["tables"]:
                name, rows, dim, dtype = (t.split(":") + ["f32"])[:4]
                tabs.append({"name": name, "rows": int(rows), "dim": int(dim), "dtype": dtype})
            doc = {"name": m["name"], "priority": m["priority"], "shards": m["shards"],
                   "tables": tabs}
            zc.create("/freshet/%s/models/%s" % (c.cluster_name, m["name"]),
                      json.dumps(doc).encode(), makepath=True)
    finally:
        zc.stop()
        zc.close()
    return "kazoo"


def warm_up(fp, pub, pollers, model, table, dim, shards, nnodes, seed, timeout=90):
    """One small update (a row in every shard) published and waited for
    on every node: links, elections and registry are all in place before
    anything is timed."""
    rng = random.Random(seed)
    rows = list(range(shards))
    u = Update(rows, random_f32(rng, len(rows) * dim), shards, nnodes, model, table)
    timed_publish(fp, pub, pollers, [u],
                  [pub.publish_frame(model, table, rows, u.values, dim)], 0, time.monotonic())
    if not pollers.wait_all(timeout):
        raise RuntimeError("warm-up update of %s not applied everywhere after %d s%s"
                           % (model, timeout, ": " + "; ".join(pollers.errors)
                              if pollers.errors else ""))


def reset(updates, nnodes):
    for u in updates:
        u.t_send = u.t_ack = u.version = None
        u.seen = [None] * nnodes


def lat_stats(updates):
    lat = [max(s - u.t_send for s in u.seen) * 1000 for u in updates]
    return {"p50_ms": round(pct(lat, 50), 2), "p99_ms": round(pct(lat, 99), 2),
            "mean_ms": round(sum(lat) / len(lat), 2), "max_ms": round(max(lat), 2)}


def per_dc_mean(updates, dcs):
    """Mean over updates of publish -> applied on a node, over the nodes
    of each dc (dcs: the dc of each node, in poller order)."""
    return {dc: round(sum(u.seen[i] - u.t_send for u in updates for i in range(len(dcs))
                          if dcs[i] == dc) * 1000 / (len(updates) * dcs.count(dc)), 2)
            for dc in sorted(set(dcs))}


def run_dc_nodes(h, fp, a, mode, updates, zk):
    """freshet (ZooKeeper, registry, leaders link dcs) or star (static
    peers: every replica peers only with node 1, which peers with all)."""
    n = a.dcs * a.nodes_per_dc
    extra = bu.node_timers(a, a.wan_mbit)
    model = bu.bench_model(a)
    kw = {"zk": zk, "registry": True} if mode == "freshet" else {"peers": star_peers(n)}
    reset(updates, n)
    with h.Cluster(n, models=[model], extra=extra, name="bench-" + mode,
                   dcs=h.dc_names(a.dcs, a.nodes_per_dc), **kw) as c:
        res = {}
        if mode == "freshet":
            res["registered_with"] = register_models(h, c)
        t0 = time.monotonic()
        c.start()
        if mode == "freshet":
            leaders = {dc: c.leader_of(dc, timeout=60) for dc in sorted(set(c.dcs))}
            res["leaders"] = {dc: l.id for dc, l in leaders.items()}
            # The trainer knows no leader: it publishes to a replica of
            # dc1, whose rows then take one more hop inside dc1.
            pub_node = next((x for x in c.nodes if x.dc == "dc1"
                             and x is not leaders["dc1"]), leaders["dc1"])
            res["topology"] = "ZooKeeper: leaders link dcs, replicas pull in their dc"
        else:
            wait_links(c, star_peers(n))
            pub_node = c.nodes[0]
            res["topology"] = "star on node 1 (dc1): every replica pulls from it"
        bu.wait_serving(c, [MODEL])
        res["startup_s"] = round(time.monotonic() - t0, 2)
        res["publish_to"] = pub_node.id
        pub = fp.Conn(pub_node.addr, timeout=120)
        pollers = Pollers(fp, c.nodes, a.poll_ms / 1000.0)
        try:
            warm_up(fp, pub, pollers, MODEL, TABLE, a.dim, a.shards, n, a.seed + 7)
            frames_ = publish_frames(pub, updates, a.dim)
            time.sleep(0.5)   # the warm-up's last notifications settle
            w0 = c.wan_out()
            ok = publish_and_wait(fp, pub, pollers, updates, frames_, a.interval_ms, 180)
        finally:
            pollers.close()
            pub.close()
        pollers.check(mode, ok, updates, 180)
        time.sleep(0.5)   # the last exchanges counted on both sides
        res["wan_bytes"] = round(c.wan_out() - w0)
        res.update(lat_stats(updates))
        res["per_dc_mean_ms"] = per_dc_mean(updates, c.dcs)
        res["poll_rtt_ms"] = round(sum(pollers.rtt) * 1000 / max(1, sum(pollers.lookups)), 3)
        c.wait_converged(timeout=120)
        res["converged"] = True
    return res


# --- Redis Streams -----------------------------------------------------------

def _die_with_parent():
    """preexec_fn: the child gets SIGKILL when the bench dies (prctl
    PR_SET_PDEATHSIG), so no redis-server outlives a killed run."""
    import ctypes
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)
    except OSError:
        pass


def start_redis(h, binary, tmp):
    import redis
    port = h.free_ports(1)[0]
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", tmp, "--daemonize", "no",
         "--logfile", os.path.join(tmp, "redis.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        preexec_fn=_die_with_parent, start_new_session=True)

    def stop():
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    _extra_cleanup.append(stop)
    r = redis.Redis(host="127.0.0.1", port=port, socket_timeout=30)
    end = time.monotonic() + 20
    while True:
        if proc.poll() is not None:
            raise RuntimeError("redis-server exited with %d" % proc.returncode)
        try:
            r.ping()
            return proc, port, r
        except redis.exceptions.ConnectionError:
            if time.monotonic() > end:
                raise RuntimeError("redis-server not answering on port %d after 20 s" % port)
            time.sleep(0.05)


class WanProxy:
    """bench/wan_proxy.py in a process of its own: one remote dc's link."""

    def __init__(self, target_port, mbit):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(SRC, "bench", "wan_proxy.py"),
             "--target", "127.0.0.1:%d" % target_port, "--mbit", str(mbit)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            start_new_session=True)
        _extra_cleanup.append(self.close)
        line = self.proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "port":
            raise RuntimeError("wan_proxy.py did not start (said %r)" % line)
        self.port = int(line[1])

    def stats(self):
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()   # end of stdin: it exits
                self.proc.wait(5)
            except Exception:
                self.proc.kill()
                self.proc.wait()


def redis_consumer(idx, port, rows, dim, out):
    """One replica (a process of its own): XREAD BLOCK the stream from the
    start, decode every entry into its own copy of the table, and report
    (seq, time applied) for each; at the stop entry, the table's CRC."""
    import zlib
    import redis
    ppid = os.getppid()
    rb = 4 * dim
    table = bytearray(rows * rb)
    try:
        r = redis.Redis(host="127.0.0.1", port=port, socket_timeout=60)
        r.ping()
        out.send(("ready", idx))
        last = b"0-0"
        while True:
            resp = r.xread({STREAM: last}, block=500, count=4)
            if not resp:
                if os.getppid() != ppid:
                    return
                continue
            for eid, fields in resp[0][1]:
                last = eid
                p = fields[b"d"]
                seq, n, d = _RHDR.unpack_from(p, 0)
                if seq < 0:
                    out.send(("done", idx, zlib.crc32(table)))
                    return
                if d != dim or len(p) != _RHDR.size + n * (8 + rb):
                    raise ValueError("entry %d: %d rows of dim %d in %d bytes"
                                     % (seq, n, d, len(p)))
                mv = memoryview(p)
                ids = mv[_RHDR.size:_RHDR.size + 8 * n].cast("Q")
                vals = mv[_RHDR.size + 8 * n:]
                for i, row in enumerate(ids):
                    table[row * rb:(row + 1) * rb] = vals[i * rb:(i + 1) * rb]
                out.send(("seen", idx, seq, time.monotonic()))
    except Exception as e:  # reported by the parent
        out.send(("error", idx, repr(e)))


def run_dc_redis(h, a, updates, tmp):
    """A redis-server in dc1; the trainer XADDs one entry per update; a
    consumer process per replica XREADs it, those outside dc1 through
    their dc's capped proxy; latency = XADD -> last replica decoded it."""
    import multiprocessing
    import multiprocessing.connection as mpc
    import zlib
    n = a.dcs * a.nodes_per_dc
    dcs = h.dc_names(a.dcs, a.nodes_per_dc)
    reset(updates, n)
    res = {"topology": "redis-server in dc1; replicas XREAD BLOCK, remote dcs "
                       "through one %d Mbit/s proxy per dc" % a.wan_mbit}
    rdir = tempfile.mkdtemp(prefix="redis-", dir=tmp)
    proc, port, r = start_redis(h, a.redis_server, rdir)
    res["redis_version"] = r.info("server").get("redis_version")
    proxies = {dc: WanProxy(port, a.wan_mbit) for dc in sorted(set(dcs)) if dc != "dc1"}
    ctx = multiprocessing.get_context("fork")
    readers, procs = [], []
    for i in range(n):
        rd, wr = ctx.Pipe(duplex=False)
        p = ctx.Process(target=redis_consumer, daemon=True,
                        args=(i, port if dcs[i] == "dc1" else proxies[dcs[i]].port,
                              a.rows, a.dim, wr))
        p.start()
        wr.close()
        readers.append(rd)
        procs.append(p)

    def stop_consumers():
        for p in procs:
            if p.is_alive():
                p.kill()
            p.join(5)
    _extra_cleanup.append(stop_consumers)

    seen = {}      # seq -> [time per consumer]
    crcs = {}

    def drain(until, want=None):
        """Take consumer messages until time `until` or until want() holds."""
        while True:
            left = until - time.monotonic()
            if want is not None and want():
                return True
            if left <= 0:
                return False
            for rd in mpc.wait(readers, timeout=min(left, 0.05)):
                try:
                    msg = rd.recv()
                except EOFError:
                    readers.remove(rd)
                    continue
                if msg[0] == "seen":
                    seen.setdefault(msg[2], [None] * n)[msg[1]] = msg[3]
                elif msg[0] == "done":
                    crcs[msg[1]] = msg[2]
                elif msg[0] == "ready":
                    seen.setdefault("ready", [None] * n)[msg[1]] = 1
                else:
                    raise RuntimeError("redis consumer %d: %s" % (msg[1], msg[2]))

    def all_seen(seq):
        return lambda: seq in seen and all(x is not None for x in seen[seq])

    t0 = time.monotonic()
    if not drain(time.monotonic() + 30, all_seen("ready")):
        raise RuntimeError("redis consumers not connected after 30 s")
    payloads = [b"".join((_RHDR.pack(k + 1, len(u.rows), a.dim),
                          struct.pack("<%dQ" % len(u.rows), *u.rows), u.values))
                for k, u in enumerate(updates)]
    # Warm-up entry (seq 0): every consumer's path is open and decoding.
    wrows = list(range(a.shards))
    r.xadd(STREAM, {"d": b"".join((_RHDR.pack(0, len(wrows), a.dim),
                                   struct.pack("<%dQ" % len(wrows), *wrows),
                                   random_f32(random.Random(a.seed + 7), len(wrows) * a.dim)))})
    if not drain(time.monotonic() + 60, all_seen(0)):
        raise RuntimeError("redis warm-up entry not decoded by every consumer after 60 s")
    res["startup_s"] = round(time.monotonic() - t0, 2)
    time.sleep(0.3)
    b0 = {dc: p.stats() for dc, p in proxies.items()}
    t_start = time.monotonic() + 0.2
    for k, (u, pl) in enumerate(zip(updates, payloads)):
        drain(t_start + k * a.interval_ms / 1000.0)
        u.t_send = time.monotonic()
        r.xadd(STREAM, {"d": pl})
        u.t_ack = time.monotonic()
    if not drain(time.monotonic() + 180, lambda: all(all_seen(k + 1)() for k in range(len(updates)))):
        raise RuntimeError("redis: updates not decoded by every consumer after 180 s")
    time.sleep(0.3)
    b1 = {dc: p.stats() for dc, p in proxies.items()}
    for k, u in enumerate(updates):
        u.seen = seen[k + 1]
    res["wan_bytes"] = sum(b1[dc][w] - b0[dc][w] for dc in proxies for w in ("up", "down"))
    res.update(lat_stats(updates))
    res["per_dc_mean_ms"] = per_dc_mean(updates, dcs)
    res["xadd_ms_mean"] = round(sum(u.t_ack - u.t_send for u in updates) * 1000 / len(updates), 2)
    res["stream_entry_bytes"] = len(payloads[0])
    # Stop entry; every replica must hold exactly what the trainer sent.
    r.xadd(STREAM, {"d": _RHDR.pack(-1, 0, a.dim)})
    if not drain(time.monotonic() + 60, lambda: len(crcs) == n):
        raise RuntimeError("redis consumers did not finish (%d of %d)" % (len(crcs), n))
    want = bytearray(a.rows * 4 * a.dim)
    rb = 4 * a.dim
    warm_vals = random_f32(random.Random(a.seed + 7), len(wrows) * a.dim)
    for i, row in enumerate(wrows):
        want[row * rb:(row + 1) * rb] = warm_vals[i * rb:(i + 1) * rb]
    for u in updates:
        for i, row in enumerate(u.rows):
            want[row * rb:(row + 1) * rb] = u.values[i * rb:(i + 1) * rb]
    if set(crcs.values()) != {zlib.crc32(want)}:
        raise RuntimeError("redis consumers hold other tables than published: %r" % crcs)
    res["converged"] = True
    stop_consumers()
    for p in proxies.values():
        p.close()
    r.close()
    proc.kill()
    proc.wait()
    return res


# --- priority: two models, WAN saturated ------------------------------------

PULL_COUNTERS = ("freshet_pulls_total", "freshet_pull_retries_total",
                 "freshet_pulls_failed_total")


def run_priority(h, fp, a, zk):
    """Models hi (priority 100) and lo (priority 1) in the registry; lo
    offered at --prio-load x --prio-wan-mbit (more than the WAN carries),
    hi a small update every --prio-hi-ms; latency of each to every node."""
    n = a.dcs * a.nodes_per_dc
    shards = 16
    hi = {"name": "hi", "shards": shards, "priority": 100,
          "tables": ["hi:%d:%d:f32" % (a.rows, a.dim)]}
    lo = {"name": "lo", "shards": shards, "priority": 1,
          "tables": ["lo:%d:%d:f32" % (a.rows, a.dim)]}
    extra = bu.node_timers(a, a.prio_wan_mbit)
    row_wire = ROW_HDR + 4 * a.dim
    rate = a.prio_load * a.prio_wan_mbit * 125000.0       # offered lo bytes/s
    lo_int = a.prio_lo_rows * row_wire / rate
    n_lo = max(2, int(a.prio_seconds / lo_int))
    n_hi = max(2, int(a.prio_seconds * 1000 / a.prio_hi_ms))
    rng = random.Random(a.seed + 99)

    def mk(model, k, m):
        return [Update(rng.sample(range(a.rows), m), random_f32(rng, m * a.dim),
                       shards, n, model, model) for _ in range(k)]
    los, his = mk("lo", n_lo, a.prio_lo_rows), mk("hi", n_hi, a.prio_hi_rows)
    res = {"wan_mbit": a.prio_wan_mbit, "offered_lo_mbit": round(rate * 8 / 1e6, 1),
           "lo_rows": a.prio_lo_rows, "hi_rows": a.prio_hi_rows,
           "hi_interval_ms": a.prio_hi_ms, "seconds": a.prio_seconds,
           "lo_updates": n_lo, "hi_updates": n_hi}
    with h.Cluster(n, models=[hi, lo], extra=extra, name="bench-prio",
                   dcs=h.dc_names(a.dcs, a.nodes_per_dc), zk=zk, registry=True) as c:
        register_models(h, c)
        c.start()
        leaders = {dc: c.leader_of(dc, timeout=60) for dc in sorted(set(c.dcs))}
        pub_node = next((x for x in c.nodes if x.dc == "dc1" and x is not leaders["dc1"]),
                        leaders["dc1"])
        bu.wait_serving(c, ["hi", "lo"])
        pubs = [fp.Conn(pub_node.addr, timeout=300) for _ in range(2)]
        pollers = Pollers(fp, c.nodes, a.poll_ms / 1000.0)
        errors = []
        try:
            for m_ in ("hi", "lo"):
                warm_up(fp, pubs[0], pollers, m_, m_, a.dim, shards, n, a.seed + 8)
            frames_ = [publish_frames(p, us, a.dim) for p, us in zip(pubs, (los, his))]
            time.sleep(0.5)
            e0, w0 = c.wan_out("dc1"), c.wan_out()
            r0 = {k: sum(x.metric_sum(k) for x in c.nodes) for k in PULL_COUNTERS}
            t_start = time.monotonic() + 0.2

            def stream(k):
                try:
                    timed_publish(fp, pubs[k], pollers, (los, his)[k], frames_[k],
                                  (lo_int, a.prio_hi_ms / 1000.0)[k], t_start)
                except Exception as e:  # reported below
                    errors.append(repr(e))
            ts = [threading.Thread(target=stream, args=(k,)) for k in (0, 1)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            t_pub = time.monotonic() - t_start
            e1, w1 = c.wan_out("dc1"), c.wan_out()
            ok = pollers.wait_all(max(120, 6 * a.prio_seconds)) if not errors else False
            time.sleep(0.5)
            w2 = c.wan_out()
            r1 = {k: sum(x.metric_sum(k) for x in c.nodes) for k in PULL_COUNTERS}
        finally:
            pollers.close()
            for p in pubs:
                p.close()
        if errors or pollers.errors:
            raise RuntimeError("priority run: %s" % "; ".join(errors + pollers.errors))
        if not ok:
            raise RuntimeError("priority run: updates not applied everywhere in time")
        res["publish_s"] = round(t_pub, 2)
        res["achieved_lo_mbit"] = round(n_lo * a.prio_lo_rows * row_wire * 8 / t_pub / 1e6, 1)
        res["dc1_egress_mbit"] = round((e1 - e0) * 8 / t_pub / 1e6, 1)
        res["wan_mbit_all_dcs"] = round((w1 - w0) * 8 / t_pub / 1e6, 1)
        res["wan_over_ideal"] = round(
            (w2 - w0) / ((a.dcs - 1) * row_wire * (n_lo * a.prio_lo_rows
                                                   + n_hi * a.prio_hi_rows)), 3)
        res.update({k.replace("freshet_", ""): round(r1[k] - r0[k]) for k in PULL_COUNTERS})
        res["hi"], res["lo"] = lat_stats(his), lat_stats(los)
        res["leaders"] = {dc: x.id for dc, x in leaders.items()}
        res["publish_to"] = pub_node.id
        for key, us in (("hi", his), ("lo", los)):
            res[key]["per_dc_mean_ms"] = per_dc_mean(us, c.dcs)
            res[key]["per_node_mean_ms"] = {
                c.nodes[i].id: round(sum(u.seen[i] - u.t_send for u in us) * 1000 / len(us), 1)
                for i in range(n)}
        for key, us in (("hi", his), ("lo", los)):
            # Does the wait grow with the backlog?
            q = len(us) // 4 or 1
            res[key]["first_quarter_mean_ms"] = round(
                sum(max(s - u.t_send for s in u.seen) for u in us[:q]) * 1000 / q, 1)
            res[key]["last_quarter_mean_ms"] = round(
                sum(max(s - u.t_send for s in u.seen) for u in us[-q:]) * 1000 / q, 1)
        c.wait_converged(timeout=180)
        res["converged"] = True
    res["p99_hi_over_lo"] = round(res["hi"]["p99_ms"] / res["lo"]["p99_ms"], 3)
    res["p50_hi_over_lo"] = round(res["hi"]["p50_ms"] / res["lo"]["p50_ms"], 3)
    return res


def main_dcs(a, h, fp):
    import zk as zkmod
    if "redis" in a.dc_modes and not os.access(a.redis_server, os.X_OK):
        sys.stderr.write("bench_propagation: --redis-server %s: not an executable "
                         "(Debian package redis-server)\n" % a.redis_server)
        return 1
    n = a.dcs * a.nodes_per_dc
    updates, m = make_updates(a, n)
    row_wire = ROW_HDR + 4 * a.dim
    u_bytes = m * row_wire                      # one update on the wire
    U = u_bytes * len(updates)                  # all of them
    ideal = (a.dcs - 1) * U
    bps = a.wan_mbit * 125000.0
    print("bench_propagation: %d dcs x %d nodes on loopback, WAN %d Mbit/s (%.2f MB/s) per "
          "remote dc; table %d x %d f32 in %d shards; %d updates of %d rows (%.2f MB on the "
          "wire) every %d ms into dc1; ideal WAN bytes (D-1)U = %.1f MB"
          % (a.dcs, a.nodes_per_dc, a.wan_mbit, bps / 1e6, a.rows, a.dim, a.shards,
             a.publishes, m, u_bytes / 1e6, a.interval_ms, ideal / 1e6), flush=True)
    print("  WAN floor per update at %.1f MB/s: freshet U/B = %.0f ms (one copy per remote "
          "dc), star and redis K*U/B = %.0f ms (a copy per remote replica); the buckets "
          "hold 0.2 s of budget (%.1f MB), so an update smaller than that passes a rested "
          "link at once" % (bps / 1e6, u_bytes / bps * 1000,
                            a.nodes_per_dc * u_bytes / bps * 1000, 0.2 * bps / 1e6), flush=True)
    res = {}
    t_all = time.monotonic()
    tmp = h.tmpdir("freshet-bench-dc-")
    _extra_cleanup.append(lambda: shutil.rmtree(tmp, ignore_errors=True))
    zk = None
    try:
        if "freshet" in a.dc_modes or a.priority:
            zk = zkmod.ZooKeeper(dir=tmp)
            _extra_cleanup.append(zk.close)
            zk.start()
        for mode in a.dc_modes:
            t0 = time.monotonic()
            if mode == "redis":
                res[mode] = run_dc_redis(h, a, updates, tmp)
            else:
                res[mode] = run_dc_nodes(h, fp, a, mode, updates, zk)
            res[mode]["wan_over_ideal"] = round(res[mode]["wan_bytes"] / ideal, 3)
            print("  %s done in %.1f s" % (mode, time.monotonic() - t0), flush=True)
        if a.priority:
            t0 = time.monotonic()
            res["priority"] = run_priority(h, fp, a, zk)
            print("  priority run done in %.1f s" % (time.monotonic() - t0), flush=True)
    finally:
        _cleanup_extra()

    print()
    print("%-8s %9s %9s %9s %9s %10s %10s" % ("mode", "p50 ms", "p99 ms", "mean ms",
                                             "max ms", "WAN MB", "WAN/ideal"))
    for mode in a.dc_modes:
        r = res[mode]
        print("%-8s %9.1f %9.1f %9.1f %9.1f %10.2f %10.3f"
              % (mode, r["p50_ms"], r["p99_ms"], r["mean_ms"], r["max_ms"],
                 r["wan_bytes"] / 1e6, r["wan_over_ideal"]))
    for mode in a.dc_modes:
        print("%s mean ms per dc: %s" % (mode, "  ".join(
            "%s %.1f" % kv for kv in res[mode]["per_dc_mean_ms"].items())))
    ratios = {}
    for other in ("star", "redis"):
        if "freshet" in res and other in res:
            f, o = res["freshet"], res[other]
            for k, key in (("p50", "p50_ms"), ("p99", "p99_ms"), ("wan_bytes", "wan_bytes")):
                ratios["%s_freshet_over_%s" % (k, other)] = round(f[key] / o[key], 3) \
                    if o[key] else None
            print("ratios freshet/%s: p50 %.2f, p99 %.2f, WAN bytes %.3f"
                  % (other, ratios["p50_freshet_over_%s" % other],
                     ratios["p99_freshet_over_%s" % other],
                     ratios["wan_bytes_freshet_over_%s" % other]))
    if a.priority:
        p = res["priority"]
        print("priority run (%d Mbit/s WAN, lo offered %.1f Mbit/s, achieved %.1f; dc1 sent "
              "%.1f Mbit/s to other dcs; %.0f s): hi (prio 100, %d rows every %d ms) p50 %.1f "
              "p99 %.1f ms; lo (prio 1, %d rows) p50 %.1f p99 %.1f ms; mean of the first and last quarter of "
              "the updates: hi %.0f -> %.0f ms, lo %.0f -> %.0f ms; p99 hi/lo %.3f"
              % (p["wan_mbit"], p["offered_lo_mbit"], p["achieved_lo_mbit"],
                 p["dc1_egress_mbit"], p["publish_s"], p["hi_rows"], p["hi_interval_ms"],
                 p["hi"]["p50_ms"], p["hi"]["p99_ms"], p["lo_rows"], p["lo"]["p50_ms"],
                 p["lo"]["p99_ms"], p["hi"]["first_quarter_mean_ms"],
                 p["hi"]["last_quarter_mean_ms"], p["lo"]["first_quarter_mean_ms"],
                 p["lo"]["last_quarter_mean_ms"], p["p99_hi_over_lo"]))
    print("note: freshet and star latencies are polled (up to %.1f ms pause + one LOOKUP "
          "round trip, ~%s ms); Redis consumers are pushed to (XREAD BLOCK) and time "
          "their own decode. Redis entries carry id + values only (%d B a row against "
          "the nodes' %d), so redis WAN/ideal reads a little low. Total %.0f s."
          % (a.poll_ms, "/".join("%.2f" % res[m_]["poll_rtt_ms"] for m_ in a.dc_modes
                                 if "poll_rtt_ms" in res[m_]) or "-",
             8 + 4 * a.dim, row_wire, time.monotonic() - t_all))
    out = {"bench": "propagation", "dcs": a.dcs, "nodes_per_dc": a.nodes_per_dc,
           "wan_mbit": a.wan_mbit, "rows": a.rows, "dim": a.dim, "frac": a.frac,
           "rows_per_update": m, "update_wire_bytes": u_bytes, "publishes": a.publishes,
           "interval_ms": a.interval_ms, "shards": a.shards, "poll_ms": a.poll_ms,
           "ideal_wan_bytes": ideal, "quick": a.quick}
    for mode in a.dc_modes:
        out[mode] = res[mode]
    out["ratios"] = ratios
    if a.priority:
        out["priority"] = res["priority"]
    print(json.dumps(out, separators=(",", ":")))
    return 0


def main():
    a = parse_args()
    h, fp = bu.load(a.build_dir)

    if not os.access(h.FRESHETD, os.X_OK):
        sys.stderr.write("bench_propagation: %s not built\n" % h.FRESHETD)
        return 1
    if a.dcs > 1:
        # Redis, the proxies, the consumers and ZooKeeper go too, on a
        # deadline, a SIGTERM or an error.
        atexit.register(_cleanup_extra)
        bu.deadline(h, "bench_propagation", 240 if a.quick else 1800, _cleanup_extra)
        return main_dcs(a, h, fp)
    h.deadline(150 if a.quick else 1800)
    t_all = time.monotonic()
    updates, m = make_updates(a)
    upd_bytes = m * (8 + 4 * a.dim)
    print("bench_propagation: %d nodes on loopback, table %d x %d f32 in %d shards; "
          "%d publishes to node 1 of %d rows (%.2f MB) every %d ms; digest %d ms; "
          "tables start %s"
          % (a.nodes, a.rows, a.dim, a.shards, a.publishes, m, upd_bytes / 1e6,
             a.interval_ms, a.digest_ms,
             "full (from one snapshot)" if a.prefill else "empty"), flush=True)

    res = {}
    tmp = h.tmpdir("freshet-bench-snap-")
    try:
        snap = None
        if a.prefill:
            t0 = time.monotonic()
            snap = make_snapshot(h, fp, a, tmp)
            print("  full-table snapshot made in %.1f s (%.0f MB)"
                  % (time.monotonic() - t0, os.path.getsize(snap) / 1e6), flush=True)
        for mode in a.modes:
            res[mode] = run_mode(h, fp, a, mode, updates, snap)
            print("  %s done (start-up %.1f s, final /status %.1f s)"
                  % (mode, res[mode]["startup_s"], res[mode]["status_s"]), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    idle = {}
    for s in (a.idle_shards, 16):
        idle[s] = run_idle(h, fp, a, s)
        print("  idle %d shards done" % s, flush=True)

    mb = 1e6
    print()
    print("%-7s %8s %8s %8s %8s %6s %9s %13s %10s %11s %10s %8s"
          % ("mode", "p50 ms", "p99 ms", "mean ms", "ack ms", "trend", "MB/node",
             "max node MB", "pub out MB", "pub pull MB", "repl in MB", "from pub"))
    for mode in a.modes:
        r = res[mode]
        share = r["replica_pull_in_from_publisher_share"]
        print("%-7s %8.1f %8.1f %8.1f %8.1f %6.2f %9.1f %8.1f (n%d) %10.1f %11.1f %10.1f %8s"
              % (mode, r["p50_ms"], r["p99_ms"], r["mean_ms"], r["ack_p50_ms"],
                 r["trend_last_over_first_quarter"],
                 r["bytes_per_node_mean"] / mb, r["bytes_max_node"] / mb, r["max_node"],
                 r["publisher_out_bytes"] / mb, r["publisher_pull_out_bytes"] / mb,
                 r["replica_in_bytes_mean"] / mb,
                 "-" if share is None else "%.0f%%" % (share * 100)))
    for mode in a.modes:
        print("%s per-node mean ms: %s" % (mode, "  ".join(
            "n%s %.1f" % (k, v) for k, v in res[mode]["per_node_mean_ms"].items())))
    ratios = {}
    if "gossip" in res and "star" in res:
        g, s = res["gossip"], res["star"]

        def ratio(k):
            return round(g[k] / s[k], 3) if s[k] else None
        ratios = {"p50_gossip_over_star": ratio("p50_ms"),
                  "p99_gossip_over_star": ratio("p99_ms"),
                  "publisher_out_bytes_gossip_over_star": ratio("publisher_out_bytes"),
                  "bytes_per_node_gossip_over_star": ratio("bytes_per_node_mean"),
                  "max_node_bytes_gossip_over_star": ratio("bytes_max_node")}
        print("ratios gossip/star: p50 %.2f, p99 %.2f, publisher out-bytes %.2f, "
              "bytes/node %.2f, busiest node %.2f"
              % tuple(ratios[k] for k in ("p50_gossip_over_star", "p99_gossip_over_star",
                                          "publisher_out_bytes_gossip_over_star",
                                          "bytes_per_node_gossip_over_star",
                                          "max_node_bytes_gossip_over_star")))
    ia, ib = idle[a.idle_shards]["bytes_per_s_mean"], idle[16]["bytes_per_s_mean"]
    print("idle control traffic per node (full mesh, %d peers, %.0f s): %d shards "
          "(%d written) %.0f B/s, 16 shards (%d written) %.0f B/s, ratio %.2f"
          % (a.nodes - 1, a.idle_seconds, a.idle_shards,
             idle[a.idle_shards]["written_shards"], ia, idle[16]["written_shards"], ib,
             ia / ib if ib else 0))
    polls = [res[m_]["poll_rtt_ms"] for m_ in a.modes]
    print("note: latency = max over nodes of (first poll that saw every sentinel at the "
          "update's version - send time); polling adds up to one pause (%.1f ms) plus "
          "one LOOKUP round trip (mean %s ms) to each figure. 'trend': mean latency of the "
          "last quarter of the updates over the first (> 1: updates queue up). 'from "
          "pub': share of the replicas' pulled bytes that came from node 1. Total %.0f s."
          % (a.poll_ms, "/".join("%.2f" % p for p in polls), time.monotonic() - t_all))

    out = {"bench": "propagation", "nodes": a.nodes, "rows": a.rows, "dim": a.dim,
           "frac": a.frac, "rows_per_update": m, "update_bytes": upd_bytes,
           "publishes": a.publishes, "interval_ms": a.interval_ms, "shards": a.shards,
           "digest_interval_ms": a.digest_ms, "poll_ms": a.poll_ms,
           "prefilled": a.prefill, "quick": a.quick}
    for mode in a.modes:
        out[mode] = res[mode]
    out["ratios"] = ratios
    out["idle"] = {"seconds": a.idle_seconds,
                   "written_shards": [idle[a.idle_shards]["written_shards"],
                                      idle[16]["written_shards"]],
                   "shards_%d_bytes_per_s" % a.idle_shards: ia,
                   "shards_16_bytes_per_s": ib,
                   "ratio": round(ia / ib, 3) if ib else None}
    print(json.dumps(out, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
