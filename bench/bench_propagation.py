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

Not a correctness test (tests/integration/ is), though it does check that
each run ends converged and serves the published values.
"""

import argparse
import json
import os
import random
import shutil
import struct
import sys
import tempfile
import threading
import time

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = "emb"
TABLE = "emb"
QUICK = {"rows": 65536, "dim": 16, "publishes": 6, "interval_ms": 200,
         "idle_shards": 10000, "idle_seconds": 2}


def parse_args():
    ap = argparse.ArgumentParser(
        prog="bench_propagation",
        description="publish -> applied-on-every-node latency, bytes per node "
                    "and idle control traffic: gossip mesh vs star, on loopback")
    ap.add_argument("--build-dir", default=os.path.join(SRC, "build"),
                    help="build tree holding node/freshetd (default: %(default)s)")
    ap.add_argument("--nodes", type=int, default=8, help="nodes in the DC (%(default)s)")
    ap.add_argument("--rows", type=int, default=1048576, help="table rows (%(default)s)")
    ap.add_argument("--dim", type=int, default=64, help="f32 per row (%(default)s)")
    ap.add_argument("--frac", type=float, default=0.01,
                    help="fraction of the rows in each update (%(default)s)")
    ap.add_argument("--publishes", type=int, default=20,
                    help="updates published per mode (%(default)s)")
    ap.add_argument("--interval-ms", type=int, default=2000,
                    help="time between update starts (%(default)s: on a 2-core "
                         "machine 8 nodes need about 1 s of CPU per 2.8 MB "
                         "update, so 500 ms measures queueing behind earlier "
                         "updates, not propagation)")
    ap.add_argument("--shards", type=int, default=64, help="shards of the table (%(default)s)")
    ap.add_argument("--idle-shards", type=int, default=100000,
                    help="shards of the idle-traffic model (%(default)s); "
                         "compared with 16")
    ap.add_argument("--idle-seconds", type=float, default=10,
                    help="idle measurement window (%(default)s)")
    ap.add_argument("--idle-written", type=int, default=1000,
                    help="shards written once (one row each, spread evenly) "
                         "before the idle window (%(default)s; 0: none). Not all "
                         "100,000: such a publish takes minutes to converge, "
                         "see the report")
    ap.add_argument("--poll-ms", type=float, default=1.0,
                    help="pause between a poller's lookups (%(default)s)")
    ap.add_argument("--digest-ms", type=int, default=200,
                    help="gossip.digest_interval_ms of every node (%(default)s, "
                         "the node's default)")
    ap.add_argument("--modes", default="gossip,star",
                    help="comma-separated, of gossip and star (%(default)s)")
    ap.add_argument("--no-prefill", dest="prefill", action="store_false",
                    help="start from empty tables instead of a full one (every "
                         "update then also pays first-touch page faults on "
                         "fresh table pages: a warm-up cost, not propagation)")
    ap.add_argument("--seed", type=int, default=20261125)
    ap.add_argument("--quick", action="store_true",
                    help="small sizes for a smoke run (under 30 s): --rows %d --dim "
                         "%d --publishes %d --interval-ms %d --idle-shards %d "
                         "--idle-seconds %d, unless given" % tuple(QUICK.values()))
    a = ap.parse_args()
    if a.quick:
        # Only what the command line left at its default.
        for k, v in QUICK.items():
            if getattr(a, k) == ap.get_default(k):
                setattr(a, k, v)
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


def pct(xs, q):
    """Percentile q (0..100) with linear interpolation between ranks."""
    s = sorted(xs)
    if len(s) == 1:
        return s[0]
    k = (len(s) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


# Byte 3 of a little-endian f32 holds the sign and the top 7 exponent bits:
# mapping it into 0x3c..0x3f (with the sign kept) makes every random word a
# finite value of magnitude 2^-7..2^1 — random f32 without a per-value loop.
_F32_TOP = bytes((x & 0x80) | 0x3c | (x & 0x03) for x in range(256))


def random_f32(rng, n):
    b = bytearray(rng.randbytes(4 * n))
    b[3::4] = bytes(b[3::4]).translate(_F32_TOP)
    return bytes(b)


class Update:
    """One published update: its rows, values, sentinels and timings."""

    def __init__(self, rows, values, shards, nnodes):
        self.rows = rows
        self.values = values
        first = {}
        for r in rows:
            first.setdefault(r % shards, r)
        self.sentinels = sorted(first.values())
        self.t_send = None
        self.t_ack = None
        self.version = None
        self.seen = [None] * nnodes   # per node: first time every sentinel had it


def make_updates(a):
    rng = random.Random(a.seed)
    m = max(1, int(round(a.frac * a.rows)))
    ups = []
    for _ in range(a.publishes):
        rows = rng.sample(range(a.rows), m)
        ups.append(Update(rows, random_f32(rng, m * a.dim), a.shards, a.nodes))
    return ups, m


class Pollers:
    """A thread per node, each with its own connection, looking up the
    sentinels of every update that node has not yet been seen to hold."""

    def __init__(self, fp, nodes, poll_s):
        self.fp = fp
        self.nodes = nodes
        self.poll_s = poll_s
        self.lock = threading.Lock()
        self.updates = []
        self.stop = False
        self.errors = []
        self.lookups = [0] * len(nodes)
        self.rtt = [0.0] * len(nodes)
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(len(nodes))]
        self.conns = [fp.Conn(n.addr) for n in nodes]
        for t in self.threads:
            t.start()

    def add(self, u):
        with self.lock:
            self.updates.append(u)

    def set_version(self, u, version):
        with self.lock:
            u.version = version

    def _run(self, i):
        conn = self.conns[i]
        # Until the ack names the version, every sentinel is asked and the
        # rising minimum of their versions is kept with its time (a
        # replica may have the update before the publisher's ack is
        # read); after it, only the sentinels still below the version.
        hist = {}   # id(update) -> [(t, min sentinel version)], rising
        left = {}   # id(update) -> sentinels not yet at the version
        try:
            while not self.stop:
                with self.lock:
                    active = [(u, u.version) for u in self.updates if u.seen[i] is None]
                if not active:
                    time.sleep(self.poll_s)
                    continue
                rows = set()
                for u, v in active:
                    rows.update(u.sentinels if v is None else left.get(id(u), u.sentinels))
                rows = sorted(rows)
                t0 = time.monotonic()
                vers, _, _ = conn.lookup(MODEL, TABLE, rows, want_values=False)
                t = time.monotonic()
                self.lookups[i] += 1
                self.rtt[i] += t - t0
                vmap = dict(zip(rows, vers))
                for u, v in active:
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
        except Exception as e:  # reported by the caller
            self.errors.append("poller of node %d: %r" % (self.nodes[i].id, e))

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

    def close(self):
        self.stop = True
        for t in self.threads:
            t.join(10)
        for c in self.conns:
            c.close()


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


def gossip_extra(a):
    # The node's documented defaults rather than the integration tests'
    # faster timers; no periodic snapshot (it would fork and write 256 MB
    # per node in the middle of a measurement).
    return {"gossip": {"digest_interval_ms": a.digest_ms,
                       "full_interval_ms": max(5000, a.digest_ms),
                       "pull_timeout_ms": 2000},
            "store": {"snapshot_interval_s": 0}}


def bench_model(a):
    return {"name": MODEL, "shards": a.shards, "priority": 1,
            "tables": ["%s:%d:%d:f32" % (TABLE, a.rows, a.dim)]}


def make_snapshot(h, fp, a, out_dir):
    """A snapshot of the model with every row written once, made by one
    node on its own (publish it all, SIGTERM: the node snapshots at a clean
    exit).  Every node of a measured cluster starts from a copy, so all
    start identical, converged, with their table pages resident, as a
    serving replica's are."""
    rng = random.Random(a.seed - 1)
    with h.Cluster(1, models=[bench_model(a)], extra=gossip_extra(a),
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


def run_mode(h, fp, a, mode, updates, snap):
    peer_map = None if mode == "gossip" else star_peers(a.nodes)
    res = {"topology": "full mesh" if mode == "gossip" else "star on node 1"}
    with h.Cluster(a.nodes, models=[bench_model(a)], extra=gossip_extra(a),
                   name="bench-" + mode, peers=peer_map) as c:
        if snap:
            seed_data_dirs(c, snap)
        t0 = time.monotonic()
        c.start()
        wait_links(c, peer_map)
        res["startup_s"] = round(time.monotonic() - t0, 2)

        pub = fp.Conn(c.nodes[0].addr, timeout=120)
        # Frames built before the clock starts: only sending is timed.
        frames_ = [pub.publish_frame(MODEL, TABLE, struct.pack("<%dQ" % len(u.rows), *u.rows),
                                     u.values, a.dim) for u in updates]
        for u in updates:
            u.t_send = u.t_ack = u.version = None
            u.seen = [None] * a.nodes
        before = [traffic(n) for n in c.nodes]
        pollers = Pollers(fp, c.nodes, a.poll_ms / 1000.0)
        try:
            t_start = time.monotonic() + 0.2
            for k, (u, (rid, frame)) in enumerate(zip(updates, frames_)):
                delay = t_start + k * a.interval_ms / 1000.0 - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                pollers.add(u)
                u.t_send = time.monotonic()
                while True:
                    pub.send_frame(frame)
                    try:
                        version, _ = pub.publish_wait(rid)
                        break
                    except fp.ProtoError as e:
                        if e.code != fp.FR_ERR_BUSY:
                            raise
                        time.sleep(max(e.retry_after_ms, 1) / 1000.0)
                u.t_ack = time.monotonic()
                pollers.set_version(u, version)
            ok = pollers.wait_all(120)
        finally:
            pollers.close()
        pub.close()
        if pollers.errors:
            raise RuntimeError("; ".join(pollers.errors))
        if not ok:
            missing = {c.nodes[i].id: sum(1 for u in updates if u.seen[i] is None)
                       for i in range(a.nodes)}
            raise RuntimeError("%s: updates not applied everywhere after 120 s "
                               "(updates missing per node: %r)" % (mode, missing))
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
    with h.Cluster(a.nodes, models=[model], extra=gossip_extra(a),
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


def main():
    a = parse_args()
    os.environ["FRESHET_BUILD_DIR"] = os.path.abspath(a.build_dir)
    sys.dont_write_bytecode = True   # no __pycache__ in the source tree
    sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
    sys.path.insert(0, os.path.join(SRC, "bench"))
    import harness as h
    import fr_proto as fp

    if not os.access(h.FRESHETD, os.X_OK):
        sys.stderr.write("bench_propagation: %s not built\n" % h.FRESHETD)
        return 1
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
    if os.environ.get("FRESHET_TEST_TMP"):
        os.makedirs(os.environ["FRESHET_TEST_TMP"], exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="freshet-bench-snap-", dir=os.environ.get("FRESHET_TEST_TMP"))
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
