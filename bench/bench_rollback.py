#!/usr/bin/env python3
"""bench_rollback — how fast `freshet rollback --wait` puts every replica
back (docs/design.md §6), against the propagation of the update it
revokes, measured in the same run on the same nodes.

Real freshetd processes on loopback (tests/integration/harness.py) and a
real ZooKeeper (tests/integration/zk.py): D dcs x K nodes (default 3 x 3),
every link between dcs capped at --wan-mbit (gossip.wan_mbit), one model
in the registry with one table (default 200,000 x 64 f32 in 32 shards),
written in full once before anything is timed.  Then, R rounds (default
5), each:

- baseline, propagation: a Python client (bench/fr_proto.py) publishes an
  update of U rows at random ids (default 10,000) to a replica of dc1;
  time from sending it until every node holds it;
- rollback: `freshet rollback --to V-1 --yes --wait` (V: the update's
  version, so exactly that update is revoked); time from starting the CLI
  until every node serves the pre-update table again; beside it the CLI's
  own figure ("every node (N) applied epoch E in S s", docs/cli.md), the
  time from its "filed" line on, and the nodes' own view (the log line
  that says a node applied the directive, against R, the filing's ms);
- from round 2 on, before the measured update: one more update, timed
  apart as "next" (the first update after a rollback) and kept, so that
  what a rollback leaves to the next update is not charged to the
  baseline.

After each step the bench waits until no node has pulled a byte for
--quiet-ms (after a rollback also until every node has finished the
snapshot the rollback starts), then reads the pull-byte counters.

"Holds it" and "serves the pre-update table" are judged per node by a
poller thread of its own: it looks up a few sentinel rows of the update
(--sentinels-per-shard in every shard the update touched, a LOOKUP on its
own connection) until they carry the expected values, then reads the
node's /status until the table's checksum (XXH3 of the whole table, and
the backend's mirror where it reports one) equals the expected one, which
the bench computes from its own copy of the table.  A node's time is the
moment that /status answer came back.  (/status hashes the whole table,
so it is asked only once the sentinels agree.)

Then a variant on a second cluster (same ZooKeeper, same sizes): the
last node (in the last dc) has a 1 KiB undo ring per shard
(store.undo_kb_per_shard = 1), too short to restore anything, so it
resets the revoked shards and pulls them whole from rolled-back peers;
per round its repair time is reported against the same round's
ring-restore nodes.  It is started last, once its dc has a leader, so it
is a replica (--full-transfer-node leader: started first, so it leads).

Ratios are the result (rollback/propagation, full transfer/ring restore);
absolute numbers on a shared 2-core machine are noise.  Not a correctness
test (tests/integration/test_rollback.py is), though every round checks
that every node ends byte-exact (checksum) at the directive's epoch.  A
readable table comes first; the last line is one JSON object.
"""

import argparse
import json
import os
import random
import re
import shutil
import struct
import sys
import threading
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
import benchutil as bu  # noqa: E402  (bench/, next to this file)
from benchutil import MODEL, TABLE, pct, random_f32  # noqa: E402

QUICK = {"rows": 20000, "dim": 16, "shards": 8, "update_rows": 1000, "rounds": 2}
TINY_RING_KB = 1

_zk = []        # the ZooKeeper server, stopped on every exit path


def parse_args():
    ap = argparse.ArgumentParser(
        prog="bench_rollback",
        description="freshet rollback --wait vs the propagation of the update it "
                    "revokes, on D dcs x K nodes with a real ZooKeeper, on loopback")
    bu.add_common_args(ap, "node/freshetd and cli/freshet", rows=200000, shards=32,
                       poll_ms=2.0, seed=20261206)
    bu.add_options(ap, [
        ("--dcs", 3, "data centres"),
        ("--nodes-per-dc", 3, "nodes per dc"),
        ("--update-rows", 10000, "rows per update, at random ids"),
        ("--rounds", 5, "rounds of update + rollback, per cluster"),
        ("--wan-mbit", 100, "gossip.wan_mbit of every node: WAN budget, Mbit/s, per "
                            "(node, remote dc)"),
        ("--quiet-ms", 500, "after each step, wait until no node has pulled a byte for "
                            "this long (and, after a rollback, until every node's "
                            "snapshot is done) before counting bytes and going on"),
        ("--sentinels-per-shard", 2, "rows of the update looked up per shard"),
    ])
    ap.add_argument("--no-variant", dest="variant", action="store_false",
                    help="skip the second cluster (one node with a %d KiB undo "
                         "ring, repairing by full transfer)" % TINY_RING_KB)
    ap.add_argument("--full-transfer-node", choices=("replica", "leader"),
                    default="replica",
                    help="the variant's short-ring node: a replica of the last dc "
                         "(started once the dc has a leader) or its leader (started "
                         "first) (%(default)s)")
    ap.add_argument("--quick", action="store_true",
                    help="small sizes for a smoke run (under a minute): --rows %d "
                         "--dim %d --shards %d --update-rows %d --rounds %d, unless "
                         "given" % tuple(QUICK.values()))
    a = ap.parse_args()
    if a.quick:
        bu.apply_presets(ap, a, [QUICK])
    if a.dcs < 1 or a.nodes_per_dc < 1:
        ap.error("--dcs and --nodes-per-dc: expected at least 1")
    if a.dcs * a.nodes_per_dc < 2:
        ap.error("--dcs x --nodes-per-dc: expected at least 2 nodes")
    if a.dcs * a.nodes_per_dc > 64:
        ap.error("--dcs x --nodes-per-dc: at most 64 nodes on one machine")
    if a.rows < 1 or a.dim < 1 or a.shards < 1:
        ap.error("--rows, --dim, --shards: expected at least 1")
    if a.variant and a.nodes_per_dc < 2:
        ap.error("the variant needs --nodes-per-dc >= 2 (the short-ring node pulls "
                 "from a peer of its dc); or pass --no-variant")
    if not 1 <= a.update_rows <= a.rows:
        ap.error("--update-rows: expected 1..--rows")
    if a.rounds < 1:
        ap.error("--rounds: expected at least 1")
    if a.wan_mbit < 1 or a.digest_ms < 1:
        ap.error("--wan-mbit, --digest-ms: expected at least 1")
    if a.poll_ms < 0 or a.quiet_ms < 0 or a.sentinels_per_shard < 1:
        ap.error("--poll-ms, --quiet-ms: expected >= 0; --sentinels-per-shard: "
                 "expected >= 1")
    return a


def xxh3_hex(data):
    import xxhash
    return "%016x" % xxhash.xxh3_64_intdigest(data)


def table_state(st):
    """(checksum, backend checksum or None, rollback epoch, model dict) of
    the bench model in a /status object; None when the node does not serve
    it (yet)."""
    for m in st.get("models", ()):
        if m.get("name") == MODEL:
            t = m["tables"][0]
            return t["checksum"], t.get("backend_checksum"), m.get("rollback_epoch"), m
    return None


class Watch:
    """What every node must come to hold: the sentinels' values and the
    table checksum.  seen[i]: when node i was first seen holding it."""

    def __init__(self, sentinels, want_vals, want_sum, nnodes):
        self.sentinels = sentinels
        self.want_vals = want_vals
        self.want_sum = want_sum
        self.t0 = None
        self.sent_ok = [None] * nnodes   # sentinels right (before the checksum)
        self.seen = [None] * nnodes
        self.sent_seen = [None] * nnodes  # when the sentinels were right, at seen
        self.model = [None] * nnodes     # the node's /status model at `seen`


class Pollers(bu.Pollers):
    """A thread per node, each on its own connection, checking the current
    watch on its node."""

    def __init__(self, fp, nodes, poll_s):
        self.watch = None
        self.statuses = [0] * len(nodes)
        super().__init__(fp, nodes, poll_s, conn_timeout=60)

    def set(self, w):
        with self.lock:
            self.watch = w

    def poll(self, i):
        conn, node = self.conns[i], self.nodes[i]
        while not self.stop:
            with self.lock:
                w = self.watch
            if w is None or w.seen[i] is not None:
                time.sleep(self.poll_s or 0.001)
                continue
            if w.sent_ok[i] is None:
                _, _, vals = conn.lookup(MODEL, TABLE, w.sentinels)
                self.lookups[i] += 1
                if vals == w.want_vals:
                    w.sent_ok[i] = time.monotonic()
            if w.sent_ok[i] is not None:
                s = table_state(node.status())
                t = time.monotonic()
                self.statuses[i] += 1
                if s and s[0] == w.want_sum and s[1] in (None, w.want_sum):
                    w.model[i] = s[3]
                    w.sent_seen[i] = w.sent_ok[i]
                    w.seen[i] = t
                    continue
                # The sentinels agree, the table not yet (a shard in
                # the middle of a transfer): look again, both.
                w.sent_ok[i] = None
            time.sleep(self.poll_s)

    def wait(self, w, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.errors:
                raise RuntimeError("; ".join(self.errors))
            if all(s is not None for s in w.seen):
                return
            time.sleep(0.005)
        late = [self.nodes[i].id for i, s in enumerate(w.seen) if s is None]
        raise RuntimeError("nodes %r do not hold checksum %s after %d s"
                           % (late, w.want_sum, timeout))


def wait_checksum(c, want, timeout):
    """Until every node's table checksum is want (the prefill)."""
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            last = {n.id: table_state(n.status())[:2] for n in c.nodes}
        except (OSError, TypeError, ValueError):
            last = None
        if last and all(v[0] == want and v[1] in (None, want) for v in last.values()):
            return
        time.sleep(0.2)
    raise RuntimeError("prefill not on every node after %d s: want %s, have %r"
                       % (timeout, want, last))


ROLLBACK_FILED = re.compile(r"filed rollback epoch (\d+) for model \S+: \((\d+), (\d+)\]")
ROLLBACK_DONE = re.compile(r"every node \((\d+)\) applied epoch (\d+) in ([0-9.]+) s")


ROLLBACK_NOTE = re.compile(r"note: (\d+) of (\d+) nodes serving model \S+ cannot reach cut")


def run_rollback_cli(h, c, target, r):
    """`freshet rollback --yes --wait` to target; returns (exit code,
    stdout, stderr, when its "filed rollback epoch" line arrived)."""
    import subprocess
    p = subprocess.Popen(
        [h.FRESHET, "rollback", "--zk", c.zk_hosts, "--cluster", c.cluster_name,
         "--model", MODEL, "--to", str(target), "--reason", "bench_rollback round %d" % (r + 1),
         "--yes", "--wait", "--wait-timeout", "120000"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    errs = []
    t_err = threading.Thread(target=lambda: errs.append(p.stderr.read()), daemon=True)
    t_err.start()
    out, t_filed = [], None
    try:
        for line in p.stdout:   # the CLI flushes after the "filed" line
            if t_filed is None and line.startswith("filed rollback epoch"):
                t_filed = time.monotonic()
            out.append(line)
        rc = p.wait(150)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    t_err.join(10)
    return rc, "".join(out), "".join(errs), t_filed


LOG_APPLIED = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z \S+\s+\[\d+\] node: "
                         r"model '%s': rollback epoch (\d+) \(" % MODEL, re.M)


def log_applied_ms(node, epoch):
    """Wall-clock ms of the node's log line saying it applied the
    directive of this epoch, or None."""
    import datetime
    try:
        with open(node.log_path, errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    for m in LOG_APPLIED.finditer(text):
        if int(m.group(2)) == epoch:
            t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f")
            return t.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000.0
    return None


def start_for_role(c, t, role):
    """Start the nodes so that t ends up its dc's leader (started first,
    elected before the others start) or a replica (started last, once
    its dc has a leader)."""
    others = [x for x in c.nodes if x is not t]
    if role == "leader":
        t.start()
        t.wait_ready()
        c.leader_of(t.dc, timeout=60)
    for x in others:
        x.start()
    for x in others:
        x.wait_ready()
    if role != "leader":
        c.leader_of(t.dc, timeout=60)
        t.start()
        t.wait_ready()


def run_cluster(h, fp, a, zk, tiny, label):
    """One cluster: prefill, then a.rounds of update + rollback.  tiny: the
    id of the node with a short undo ring, or None."""
    n = a.dcs * a.nodes_per_dc
    rb = 4 * a.dim
    rng = random.Random(a.seed + (1 if tiny else 0))
    node_extra = {tiny: {"store": {"undo_kb_per_shard": TINY_RING_KB}}} if tiny else None
    res = {"rounds": []}
    with h.Cluster(n, models=[bu.bench_model(a)], extra=bu.node_timers(a, a.wan_mbit),
                   name="bench-rb-" + label, dcs=h.dc_names(a.dcs, a.nodes_per_dc),
                   zk=zk, registry=True, node_extra=node_extra) as c:
        t0 = time.monotonic()
        c.register_models()
        if tiny:
            start_for_role(c, c.nodes[tiny - 1], a.full_transfer_node)
        else:
            c.start()
        leaders = {dc: c.leader_of(dc, timeout=60) for dc in sorted(set(c.dcs))}
        res["leaders"] = {dc: x.id for dc, x in leaders.items()}
        if tiny:
            res["full_transfer_node_is_leader"] = tiny in res["leaders"].values()
            if res["full_transfer_node_is_leader"] != (a.full_transfer_node == "leader"):
                raise RuntimeError("node %d was to be a %s of its dc, but the leaders are %r"
                                   % (tiny, a.full_transfer_node, res["leaders"]))
        # The trainer knows no leader: it publishes to a replica of dc1.
        pub_node = next((x for x in c.nodes if x.dc == "dc1" and x is not leaders["dc1"]),
                        leaders["dc1"])
        res["publish_to"] = pub_node.id
        bu.wait_serving(c, [MODEL])
        res["startup_s"] = round(time.monotonic() - t0, 2)

        # Prefill: every row written once, on every node, before anything
        # is timed (a serving table, and undo rings holding real values).
        t0 = time.monotonic()
        table = bytearray(random_f32(rng, a.rows * a.dim))
        pub = fp.Conn(pub_node.addr, timeout=300)
        chunk = max(1, (24 << 20) // (8 + rb))
        for lo in range(0, a.rows, chunk):
            k = min(chunk, a.rows - lo)
            bu.publish_retry(fp, pub, pub.publish_frame(
                MODEL, TABLE, struct.pack("<%dQ" % k, *range(lo, lo + k)),
                bytes(table[lo * rb:(lo + k) * rb]), a.dim))
        pre_sum = xxh3_hex(table)
        wait_checksum(c, pre_sum, timeout=300)
        res["prefill_s"] = round(time.monotonic() - t0, 2)
        print("  %s: %d nodes up in %.1f s (leaders %s; publishing to node %d), table "
              "written everywhere in %.1f s" % (
                  label, n, res["startup_s"],
                  " ".join("%s:%d" % kv for kv in sorted(res["leaders"].items())),
                  pub_node.id, res["prefill_s"]), flush=True)

        pollers = Pollers(fp, c.nodes, a.poll_ms / 1000.0)
        try:
            for r in range(a.rounds):
                res["rounds"].append(run_round(h, fp, a, c, pub, pollers, table, rng,
                                               tiny, r))
        finally:
            pollers.close()
            pub.close()
        res["poll_lookups"] = sum(pollers.lookups)
        res["poll_statuses"] = sum(pollers.statuses)
    return res


def pull_in(c):
    """Bytes pulled from peers, all nodes together."""
    return sum(x.metric_sum("freshet_pull_bytes_total", direction="in") for x in c.nodes)


class Update:
    """One update: its rows and values, and the table with it applied."""

    def __init__(self, a, rng, table):
        rb = 4 * a.dim
        self.rows = rng.sample(range(a.rows), a.update_rows)
        self.vals = random_f32(rng, a.update_rows * a.dim)
        self.post = bytearray(table)
        for i, row in enumerate(self.rows):
            self.post[row * rb:(row + 1) * rb] = self.vals[i * rb:(i + 1) * rb]
        self.post_sum = xxh3_hex(self.post)
        per_shard = {}
        for i, row in enumerate(self.rows):
            lst = per_shard.setdefault(row % a.shards, [])
            if len(lst) < a.sentinels_per_shard:
                lst.append(i)
        idx = sorted(i for lst in per_shard.values() for i in lst)
        self.sentinels = [self.rows[i] for i in idx]
        self.new_vals = b"".join(self.vals[i * rb:(i + 1) * rb] for i in idx)
        self.old_vals = b"".join(bytes(table[r * rb:(r + 1) * rb]) for r in self.sentinels)


def snapshots(c):
    return [x.metric_sum("freshet_snapshots_total") for x in c.nodes]


def wait_quiet(a, c, snaps_before=None, cap_s=120):
    """Until no node has pulled a byte for --quiet-ms and, given the
    snapshot counts from before a rollback, every node has finished one
    more (a rollback starts a snapshot).  Returns the seconds waited."""
    t0 = time.monotonic()
    last, since = None, t0
    while True:
        b = pull_in(c)
        now = time.monotonic()
        if b != last:
            last, since = b, now
        done = snaps_before is None or all(
            s > s0 for s, s0 in zip(snapshots(c), snaps_before))
        if done and now - since >= a.quiet_ms / 1000.0:
            return now - t0
        if now - t0 > cap_s:
            sys.stderr.write("bench_rollback: nodes not quiet after %d s (pulls still "
                             "going, or a snapshot not done); going on\n" % cap_s)
            return now - t0
        time.sleep(0.05)


def propagate(a, fp, c, pub, pollers, u):
    """Publish u and wait until every node holds it: (version, ms per
    node, ack ms, bytes pulled by all nodes meanwhile)."""
    frame_ = pub.publish_frame(MODEL, TABLE, struct.pack("<%dQ" % len(u.rows), *u.rows),
                               u.vals, a.dim)
    b0 = pull_in(c)
    w = Watch(u.sentinels, u.new_vals, u.post_sum, len(c.nodes))
    pollers.set(w)
    w.t0 = time.monotonic()
    version = bu.publish_retry(fp, pub, frame_)
    t_ack = time.monotonic()
    pollers.wait(w, 180)
    quiet = wait_quiet(a, c)   # the last pulls counted on both sides
    return (version, [(s - w.t0) * 1000 for s in w.seen], (t_ack - w.t0) * 1000,
            pull_in(c) - b0, w, quiet)


def sentinel_ms(w, idx):
    """When the last of the nodes idx showed the sentinel rows right (the
    LOOKUP that preceded its matching /status), ms after w.t0."""
    return round(max(w.sent_seen[i] - w.t0 for i in idx) * 1000, 2)


def run_round(h, fp, a, c, pub, pollers, table, rng, tiny, r):
    n = len(c.nodes)
    ids = [x.id for x in c.nodes]
    ring = [i for i in range(n) if ids[i] != tiny]
    out = {"round": r + 1}
    if r > 0:
        # The first update after a rollback is not the baseline: it is
        # timed apart (it resynchronises what the rollback changed), and
        # is kept; the measured update follows it.
        u = Update(a, rng, table)
        _, prop, ack, pulled, _, quiet = propagate(a, fp, c, pub, pollers, u)
        table[:] = u.post
        out["after_rollback_propagation_ms"] = round(max(prop), 2)
        out["after_rollback_ack_ms"] = round(ack, 2)
        out["after_rollback_pull_bytes"] = round(pulled)
        out["after_rollback_quiet_s"] = round(quiet, 2)
    pre_sum = xxh3_hex(table)

    # --- baseline: the update reaches every node -----------------------
    u = Update(a, rng, table)
    version, prop, ack, pulled, w, _ = propagate(a, fp, c, pub, pollers, u)
    del u.post

    # --- rollback to just below it -------------------------------------
    target = version - 1
    b0 = [x.metric_sum("freshet_pull_bytes_total", direction="in") for x in c.nodes]
    snaps = snapshots(c)
    w2 = Watch(u.sentinels, u.old_vals, pre_sum, n)
    pollers.set(w2)
    w2.t0 = time.monotonic()
    rc, stdout, stderr, t_filed = run_rollback_cli(h, c, target, r)
    t_cli = time.monotonic()
    filed = ROLLBACK_FILED.search(stdout)
    done = ROLLBACK_DONE.search(stdout)
    if rc != 0 or not filed or not done or t_filed is None:
        raise RuntimeError("freshet rollback exited %d:\n%s%s" % (rc, stdout, stderr))
    epoch = int(filed.group(1))
    if int(filed.group(2)) != target or int(done.group(2)) != epoch:
        raise RuntimeError("freshet rollback filed another cut or epoch than asked "
                           "(to %d):\n%s" % (target, stdout))
    note = ROLLBACK_NOTE.search(stderr)
    try:
        pollers.wait(w2, 120)
    except RuntimeError as e:
        late = [x for i, x in enumerate(c.nodes) if w2.seen[i] is None]
        raise RuntimeError("rollback epoch %d: %s; %s" % (epoch, e, "; ".join(
            "node %d: repairs pending %d, done %d" % (
                x.id, x.metric_sum("freshet_rollback_repairs_pending"),
                x.metric_sum("freshet_rollback_repairs_done_total")) for x in late))) from None
    rbk = [(s - w2.t0) * 1000 for s in w2.seen]
    # Every node must have applied this directive, not merely look right.
    for i, m in enumerate(w2.model):
        if m.get("rollback_epoch") != epoch:
            raise RuntimeError("node %d holds the pre-update table at rollback epoch %r, "
                               "expected %d" % (ids[i], m.get("rollback_epoch"), epoch))
    # The nodes' own view, free of polling: the log line that says a node
    # applied the directive, against R (the wall-clock ms of the filing).
    r_ms = int(filed.group(3)) >> 16
    logged = [log_applied_ms(x, epoch) for x in c.nodes]
    quiet = wait_quiet(a, c, snaps)
    b1 = [x.metric_sum("freshet_pull_bytes_total", direction="in") for x in c.nodes]
    out.update({
        "version": version, "epoch": epoch,
        "propagation_ms": round(max(prop), 2),
        "propagation_sentinels_ms": sentinel_ms(w, range(n)),
        "ack_ms": round(ack, 2),
        "propagation_pull_bytes": round(pulled),
        "rollback_ms": round(max(rbk[i] for i in ring), 2),
        "rollback_sentinels_ms": sentinel_ms(w2, ring),
        "cli_wait_ms": round(float(done.group(3)) * 1000, 1),
        "cli_wall_ms": round((t_cli - w2.t0) * 1000, 2),
        "cli_to_filed_ms": round((t_filed - w2.t0) * 1000, 2),
        "filed_to_restored_ms": round(max(w2.seen[i] - t_filed for i in ring) * 1000, 2),
        "filed_to_logged_applied_ms": round(max(logged[i] - r_ms for i in ring), 1)
        if all(logged[i] is not None for i in ring) else None,
        "node_apply_ms_max": round(max(
            (w2.model[i].get("rollback") or {}).get("last_apply_s", 0.0) for i in ring)
            * 1000, 2),
        "rollback_pull_bytes": round(sum(b1[i] - b0[i] for i in ring)),
        "rollback_quiet_s": round(quiet, 2),
        "per_node_rollback_ms": {ids[i]: round(rbk[i], 1) for i in range(n)},
        "per_node_propagation_ms": {ids[i]: round(prop[i], 1) for i in range(n)},
        # The CLI's "cannot reach cut" note: how many nodes it saw short
        # (from member znodes, whose horizons are refreshed only every few
        # seconds).
        "cli_noted_short_rings": int(note.group(1)) if note else 0})
    if tiny:
        it = ids.index(tiny)
        # Counters since the node started: this round's share.
        b = w.model[it].get("rollback") or {}
        e = w2.model[it].get("rollback") or {}
        out["full_transfer_repair_ms"] = round(rbk[it], 2)
        out["full_transfer_filed_to_repaired_ms"] = round((w2.seen[it] - t_filed) * 1000, 2)
        out["ring_nodes_p50_ms"] = round(pct([rbk[i] for i in ring], 50), 2)
        out["full_transfer_node_shards_repaired"] = \
            e.get("shards_repaired", 0) - b.get("shards_repaired", 0)
        out["full_transfer_node_rows_zeroed"] = e.get("rows_zeroed", 0) - b.get("rows_zeroed", 0)
        out["full_transfer_pull_bytes"] = round(b1[it] - b0[it])
    return out


def summarize(rounds, key):
    xs = [x[key] for x in rounds]
    return round(pct(xs, 50), 2), round(max(xs), 2)


def main():
    a = parse_args()
    h, fp = bu.load(a.build_dir)
    import zk as zkmod

    for exe in (h.FRESHETD, h.FRESHET):
        if not os.access(exe, os.X_OK):
            sys.stderr.write("bench_rollback: %s not built\n" % exe)
            return 1
    try:
        import xxhash  # noqa: F401
    except ImportError:
        sys.stderr.write("bench_rollback: the python3 xxhash module is missing "
                         "(Debian package python3-xxhash)\n")
        return 1

    # The nodes and ZooKeeper go on a deadline, a SIGTERM or an error.
    def stop_zk():
        for z in _zk:
            z.close()
    bu.deadline(h, "bench_rollback", 180 if a.quick else 1800, stop_zk)

    n = a.dcs * a.nodes_per_dc
    upd_wire = a.update_rows * (8 + 8 + 4 + 4 * a.dim)
    print("bench_rollback: %d dcs x %d nodes on loopback with ZooKeeper, WAN %d Mbit/s per "
          "(node, remote dc); table %d x %d f32 (%.1f MB) in %d shards; %d rounds of an "
          "update of %d random rows (%.2f MB on the wire) into dc1, then `freshet "
          "rollback --to <update-1> --wait`%s"
          % (a.dcs, a.nodes_per_dc, a.wan_mbit, a.rows, a.dim, a.rows * a.dim * 4 / 1e6,
             a.shards, a.rounds, a.update_rows, upd_wire / 1e6,
             "; then the same with node %d on a %d KiB undo ring" % (n, TINY_RING_KB)
             if a.variant else ""), flush=True)
    t_all = time.monotonic()
    tmp = h.tmpdir("freshet-bench-rb-")
    res = {}
    try:
        zk = zkmod.ZooKeeper(dir=tmp)
        _zk.append(zk)
        zk.start()
        res["ring"] = run_cluster(h, fp, a, zk, None, "ring")
        if a.variant:
            res["variant"] = run_cluster(h, fp, a, zk, n, "tiny-ring")
    finally:
        stop_zk()
        shutil.rmtree(tmp, ignore_errors=True)

    rounds = res["ring"]["rounds"]
    mb = 1e6
    print()
    print("all %d nodes with an undo ring; per round: the update's propagation (send -> "
          "every node holds it), then its rollback (CLI start -> every node serves the "
          "pre-update table)" % n)
    cols = (("prop ms", 9, "propagation_ms", 1), ("(rows)", 7, "propagation_sentinels_ms", 0),
            ("ack ms", 7, "ack_ms", 1),
            ("pull MB", 8, "propagation_pull_bytes", -1),
            ("rollback ms", 11, "rollback_ms", 1), ("(rows)", 7, "rollback_sentinels_ms", 0),
            ("filed ms", 9, "cli_to_filed_ms", 1),
            ("filed->ok ms", 12, "filed_to_restored_ms", 1),
            ("log ms", 7, "filed_to_logged_applied_ms", 0),
            ("cli wait ms", 11, "cli_wait_ms", 1), ("cli wall ms", 11, "cli_wall_ms", 1),
            ("apply ms", 9, "node_apply_ms_max", 2), ("pull MB", 8, "rollback_pull_bytes", -1),
            ("next prop ms", 12, "after_rollback_propagation_ms", 1),
            ("next pull MB", 12, "after_rollback_pull_bytes", -1))

    def cell(width, v, prec):
        if v is None:
            return "%*s" % (width, "-")
        if prec < 0:
            return "%*.2f" % (width, v / mb)
        return "%*.*f" % (width, prec, v)
    print("%5s %s" % ("round", " ".join("%*s" % (wd, name) for name, wd, _, _ in cols)))
    for x in rounds:
        print("%5d %s" % (x["round"], " ".join(cell(wd, x.get(k), pr) for _, wd, k, pr in cols)))
    stats = {}
    for _, _, k, _ in cols:
        xs = [x[k] for x in rounds if k in x]
        stats[k] = (round(pct(xs, 50), 2), round(max(xs), 2)) if xs else (None, None)
    for j, name in enumerate(("p50", "max")):
        print("%5s %s" % (name, " ".join(cell(wd, stats[k][j], pr) for _, wd, k, pr in cols)))
    prop50, propmax = stats["propagation_ms"]
    rb50, rbmax = stats["rollback_ms"]
    fok50 = stats["filed_to_restored_ms"][0]
    ratio = round(rb50 / prop50, 3) if prop50 else None
    ratio_max = round(rbmax / propmax, 3) if propmax else None
    fok_ratio = round(fok50 / prop50, 3) if prop50 else None
    srb50, sprop50 = stats["rollback_sentinels_ms"][0], stats["propagation_sentinels_ms"][0]
    s_ratio = round(srb50 / sprop50, 3) if sprop50 else None
    print("ratio rollback/propagation: p50 %.2f, max %.2f; from the filing on (filed->ok / "
          "prop): p50 %.2f; by the sentinel rows alone ('rows'): p50 %.2f"
          % (ratio, ratio_max, fok_ratio, s_ratio))
    if len(rounds) > 1:
        print("propagation before any rollback (round 1) %.1f ms; in later rounds (each "
              "after a rollback and the 'next' update) p50 %.1f ms"
              % (rounds[0]["propagation_ms"],
                 pct([x["propagation_ms"] for x in rounds[1:]], 50)))
    nxt = stats["after_rollback_propagation_ms"][0]
    nxt_b = stats["after_rollback_pull_bytes"][0]
    base_b = stats["propagation_pull_bytes"][0]
    if nxt is not None:
        print("the first update after a rollback ('next', published before the next round's "
              "measured one): p50 %.1f ms, %.2f MB pulled; %.2fx the baseline's time, %.2fx "
              "its bytes" % (nxt, nxt_b / mb, nxt / prop50 if prop50 else 0,
                             nxt_b / base_b if base_b else 0))

    out = {"bench": "rollback", "dcs": a.dcs, "nodes_per_dc": a.nodes_per_dc,
           "rows": a.rows, "dim": a.dim, "shards": a.shards, "update_rows": a.update_rows,
           "update_wire_bytes": upd_wire, "rounds": a.rounds, "wan_mbit": a.wan_mbit,
           "digest_interval_ms": a.digest_ms, "poll_ms": a.poll_ms, "quick": a.quick,
           "propagation_p50_ms": prop50, "propagation_max_ms": propmax,
           "rollback_p50_ms": rb50, "rollback_max_ms": rbmax,
           "propagation_sentinels_p50_ms": sprop50, "rollback_sentinels_p50_ms": srb50,
           "rollback_over_propagation_sentinels": s_ratio,
           "rollback_over_propagation": ratio, "rollback_over_propagation_max": ratio_max,
           "cli_wait_p50_ms": stats["cli_wait_ms"][0], "cli_wait_max_ms": stats["cli_wait_ms"][1],
           "cli_wall_p50_ms": stats["cli_wall_ms"][0],
           "cli_to_filed_p50_ms": stats["cli_to_filed_ms"][0],
           "filed_to_restored_p50_ms": fok50,
           "filed_to_restored_max_ms": stats["filed_to_restored_ms"][1],
           "filed_to_restored_over_propagation": fok_ratio,
           "filed_to_logged_applied_p50_ms": stats["filed_to_logged_applied_ms"][0],
           "node_apply_p50_ms": stats["node_apply_ms_max"][0],
           "propagation_pull_bytes_p50": base_b,
           "rollback_pull_bytes_p50": stats["rollback_pull_bytes"][0],
           # Round 1's update is the only one no rollback came before.
           "propagation_round1_ms": rounds[0]["propagation_ms"],
           "propagation_later_rounds_p50_ms": round(pct(
               [x["propagation_ms"] for x in rounds[1:]], 50), 2) if len(rounds) > 1 else None,
           "after_rollback_propagation_p50_ms": nxt,
           "after_rollback_pull_bytes_p50": nxt_b,
           "after_rollback_over_propagation": round(nxt / prop50, 3) if nxt and prop50 else None,
           "prefill_s": res["ring"]["prefill_s"], "leaders": res["ring"]["leaders"],
           "publish_to": res["ring"]["publish_to"], "per_round": rounds}
    if a.variant:
        vr = res["variant"]["rounds"]
        print()
        print("variant: node %d on a %d KiB undo ring per shard repairs by full transfer; "
              "the same round's other %d nodes restore from their rings (times from the "
              "CLI's start)" % (n, TINY_RING_KB, n - 1))
        print("%5s %9s %12s %12s %13s %9s %11s %7s %11s %12s" % (
            "round", "prop ms", "ring p50 ms", "ring max ms", "full-xfer ms", "xfer/max",
            "cli wait ms", "shards", "rows zeroed", "xfer pull MB"))
        for x in vr:
            print("%5d %9.1f %12.1f %12.1f %13.1f %9.2f %11.1f %7s %11s %12.2f" % (
                x["round"], x["propagation_ms"], x["ring_nodes_p50_ms"], x["rollback_ms"],
                x["full_transfer_repair_ms"],
                x["full_transfer_repair_ms"] / x["rollback_ms"] if x["rollback_ms"] else 0,
                x["cli_wait_ms"], x["full_transfer_node_shards_repaired"],
                x["full_transfer_node_rows_zeroed"], x["full_transfer_pull_bytes"] / mb))
        ft50, ftmax = summarize(vr, "full_transfer_repair_ms")
        vr50, vrmax = summarize(vr, "rollback_ms")
        ft_ratio = round(ft50 / vr50, 3) if vr50 else None
        print("full transfer: p50 %.1f ms, max %.1f ms; the last ring-restore node of the "
              "same rounds: p50 %.1f ms, max %.1f ms; ratio p50 %.2f"
              % (ft50, ftmax, vr50, vrmax, ft_ratio))
        out.update({"full_transfer_repair_p50_ms": ft50, "full_transfer_repair_max_ms": ftmax,
                    "variant_ring_rollback_p50_ms": vr50, "variant_ring_rollback_max_ms": vrmax,
                    "full_transfer_over_ring": ft_ratio,
                    "variant_cli_wait_p50_ms": summarize(vr, "cli_wait_ms")[0],
                    "variant_propagation_p50_ms": summarize(vr, "propagation_ms")[0],
                    "full_transfer_pull_bytes_p50": summarize(vr, "full_transfer_pull_bytes")[0],
                    "full_transfer_node": n,
                    "variant_leaders": res["variant"]["leaders"],
                    "variant_per_round": vr})
    print("note: 'prop' and 'rollback' end at the last node's matching /status (it hashes "
          "the whole table, slow while the nodes are busy); '(rows)' at the LOOKUP of the "
          "sentinel rows just before it. "
          "'rollback' includes the CLI's start, its ZooKeeper session and the filing "
          "('filed': CLI start -> its 'filed' line; 'filed->ok': from there to the last "
          "node; 'log': from the filing (R's ms) to the last node's log line saying it "
          "applied the directive, unpolled, 1 ms resolution); 'cli wait' is the CLI's "
          "own figure (filing -> every node reports the epoch, read every 100 ms); "
          "'apply' the slowest node's own apply time (/status rollback.last_apply_s); "
          "'pull MB': bytes all nodes pulled from peers. A node's "
          "time is polled: up to %.1f ms pause + a LOOKUP of %d sentinel rows, then a "
          "/status that hashes the table. Total %.0f s."
          % (a.poll_ms, a.sentinels_per_shard * min(a.shards, a.update_rows),
             time.monotonic() - t_all))
    print(json.dumps(out, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
