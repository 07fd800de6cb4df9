#!/usr/bin/env python3
"""3 DCs x 3 nodes on a real ZooKeeper (under a chroot the nodes create),
the model registered in ZooKeeper:

1. every dc elects exactly one leader, and only leaders link dcs;
2. a stream of publishes into dc1 (distinct rows, so nothing coalesces)
   leaves every node byte-identical, and the bytes that crossed between dcs
   stay within 5 % of the ideal (D-1)*U, where U is the published rows in
   the batch encoding (docs/wire.md §2: id 8 + version 8 + origin 4 +
   values per row);
3. kill -9 of dc2's leader while a stream flows: a new leader takes over
   within the session timeout + 1 s, the stream keeps being acknowledged,
   every acknowledged row reaches every node (nothing acknowledged is
   lost), and after the old leader returns no update crossed into dc2 more
   than twice.
"""

import array
import struct
import threading
import time

import harness as h
import zk as zkmod

fr_proto = h.fr_proto()
chk = h.Checks("test_dc_converge", timeout=280)
DCS = ["dc1", "dc2", "dc3"]
PER_DC = 3
DIM = 64
ROW_WIRE = 8 + 8 + 4 + DIM * 4
MODEL = {"name": "ctr", "shards": 16, "priority": 1,
         "tables": ["users:400000:%d:f32" % DIM]}
SESSION_MS = 4000


def into_dc(c, dc):
    """Bytes sent into dc from other dcs (counted by the senders)."""
    total = 0
    for n in c.nodes:
        if not n.alive() or n.dc == dc:
            continue
        total += n.metric_sum("freshet_dc_bytes_total", src_dc=n.dc, dst_dc=dc)
    return total


def publish_rows(node, first, count, batch=2000, key=None):
    rows = list(range(first, first + count))
    acked = []
    with fr_proto.Conn(node.addr) as conn:
        for i in range(0, count, batch):
            part = rows[i:i + batch]
            vals = array.array("f", [float((r * 7 + j) % 1000) / 1000.0
                                     for r in part for j in range(DIM)]).tobytes()
            conn.publish("ctr", "users", part, vals, DIM)
            acked += part
    return acked


with zkmod.ZooKeeper() as zk, \
        h.Cluster(len(DCS) * PER_DC, models=[MODEL], name="dc_converge", zk=zk,
                  dcs=h.dc_names(len(DCS), PER_DC), registry=True,
                  chroot="/itest/dc-converge",
                  extra={"zookeeper": {"session_timeout_ms": SESSION_MS},
                         "gossip": {"digest_interval_ms": 100}}) as c:
    c.register_models()
    c.start()
    leaders = {dc: c.leader_of(dc) for dc in DCS}
    chk.ok(True, "one leader per dc: %s" % {d: l.id for d, l in leaders.items()})
    serving = [n.id for n in c.nodes
               if any(m["name"] == "ctr" for m in n.status()["models"])]
    chk.ok(len(serving) == len(c.nodes),
           "every node serves model ctr from the registry (%s)" % serving)
    # Only leaders have links to other dcs.
    time.sleep(1.0)
    for n in c.nodes:
        cross = [p for p in n.status()["peers"] if p.get("dc") and p["dc"] != n.dc
                 and p.get("up")]
        if n not in leaders.values():
            chk.ok(not cross, "non-leader %d (%s) has no link to another dc" % (n.id, n.dc))
    changes = {n.id: n.metric_sum("freshet_zk_peer_changes_total") for n in c.nodes}
    chk.ok(all(v >= PER_DC - 1 for v in changes.values()),
           "every node took its dc's members from the view (peer changes %s)" % changes)
    c.wait_converged(timeout=30)

    # --- 2. WAN bytes against the ideal --------------------------------
    before = c.wan_out()
    src = [n for n in c.nodes if n.dc == "dc1" and n is not leaders["dc1"]][0]
    total_rows = 0
    for k in range(8):
        total_rows += len(publish_rows(src, k * 10000, 10000))
        time.sleep(0.2)
    c.wait_converged(timeout=90)
    time.sleep(0.5)   # the last heartbeats counted on both sides
    crossed = c.wan_out() - before
    ideal = (len(DCS) - 1) * total_rows * ROW_WIRE
    ratio = crossed / ideal
    print("WAN bytes %d, ideal (D-1)*U %d, ratio %.4f" % (crossed, ideal, ratio))
    chk.ok(ratio <= 1.05, "WAN bytes %.4f x the ideal (D-1)*U (<= 1.05)" % ratio)
    chk.ok(ratio >= 0.95, "WAN bytes %.4f x the ideal: every row crossed (>= 0.95)" % ratio)

    # --- 3. kill -9 dc2's leader during a stream -----------------------
    old = leaders["dc2"]
    into_before = into_dc(c, "dc2")
    stream_rows = []
    stop = threading.Event()
    errors = []

    def stream():
        k = 0
        try:
            while not stop.is_set():
                stream_rows.extend(publish_rows(src, 200000 + k * 1000, 1000, batch=1000))
                k += 1
                time.sleep(0.05)
        except Exception as e:  # reported below
            errors.append(e)

    t = threading.Thread(target=stream)
    t.start()
    time.sleep(1.0)
    t_kill = time.time()
    old.kill9()
    new = c.leader_of("dc2", timeout=SESSION_MS / 1000 + 10)
    took = time.time() - t_kill
    print("dc2 leader %d killed; node %d leads after %.2f s" % (old.id, new.id, took))
    chk.ok(new is not old, "a new dc2 leader (%d) was elected" % new.id)
    chk.ok(took <= SESSION_MS / 1000 + 1.0,
           "takeover in %.2f s <= session timeout + 1 s (%.1f s)" % (took, SESSION_MS / 1000 + 1))
    time.sleep(1.0)
    n_before_restart = len(stream_rows)
    old.start()
    old.wait_ready()
    time.sleep(2.0)
    stop.set()
    t.join()
    chk.ok(not errors, "the stream kept being acknowledged (%s)" % errors[:1])
    chk.ok(len(stream_rows) > n_before_restart > 0,
           "publishes acknowledged before and after the takeover (%d, %d)"
           % (n_before_restart, len(stream_rows)))
    fp = c.wait_converged(timeout=90)
    chk.ok(True, "all 9 nodes byte-identical after the takeover")
    # Every acknowledged row is on every node: spot-check by lookup.
    probe = stream_rows[:: max(1, len(stream_rows) // 50)]
    for n in c.nodes:
        with fr_proto.Conn(n.addr) as conn:
            _, _, raw = conn.lookup("ctr", "users", probe)
        want = [float((r * 7) % 1000) / 1000.0 for r in probe]
        firsts = [struct.unpack_from("<f", raw, i * DIM * 4)[0]
                  for i in range(len(probe))]
        chk.ok(all(abs(a - b) < 1e-3 for a, b in zip(firsts, want)),
               "node %d holds every acknowledged row probed (%d rows)" % (n.id, len(probe)))
    into = into_dc(c, "dc2") - into_before
    u = len(stream_rows) * ROW_WIRE
    print("bytes into dc2 during the kill run: %d, U %d, ratio %.3f" % (into, u, into / u))
    chk.ok(into <= 2.0 * u * 1.05,
           "no update crossed into dc2 more than twice (%.3f x U)" % (into / u))
chk.done()
