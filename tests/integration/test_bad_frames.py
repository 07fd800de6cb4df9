#!/usr/bin/env python3
"""Corrupted frames (flipped bits, truncated, oversized length, unknown
type) injected on a live peer connection: rejected and counted; the data
still converges.  Also: garbage and wrong HELLOs from a raw socket."""

import socket
import struct
import time

import frames
import harness as h
import proxy

chk = h.Checks("test_bad_frames", timeout=180)

with h.Cluster(3, name="badframes") as c:
    n1, n2, n3 = c.nodes
    # n3 reaches n1 through the spoiling proxy (the larger id dials out).
    pport = h.free_ports(1)[0]
    px = proxy.Proxy(pport, n1.port)
    text = open(n3.conf).read().replace("1@127.0.0.1:%d" % n1.port,
                                        "1@127.0.0.1:%d" % pport)
    open(n3.conf, "w").write(text)
    c.start()

    def rows(k):
        return [((k * 37 + j) % 4096, [float(k)] * 16) for j in range(6)]

    for k in range(20):
        h.publish(n3, "ctr", "users", rows(k))
    c.wait_converged(timeout=30)
    chk.ok(True, "converged through the proxy before any corruption")

    bad_before = n1.metric_sum("freshet_bad_frames_total")
    for act in ("flip", "type", "flip", "truncate", "oversize", "flip"):
        px.spoil(act)
        for k in range(5):
            h.publish(n3, "ctr", "users", rows(100 + k + 10 * len(px.spoiled)))
        time.sleep(0.5)
    fp = c.wait_converged(timeout=60)
    chk.ok(len(px.spoiled) == 6, "the proxy spoiled 6 frames: %r" % (px.spoiled,))
    bad_after = n1.metric_sum("freshet_bad_frames_total")
    chk.ok(bad_after - bad_before >= 4,
           "n1 counted the bad frames (%d -> %d)" % (bad_before, bad_after))
    chk.ok(all(n.proc.poll() is None for n in c.nodes), "no node crashed")
    chk.ok(True, "data converged despite the corruption: %r" % (fp,))

    # Raw garbage and bad HELLOs straight at n2: refused, n2 keeps running.
    def raw(payload):
        s = socket.create_connection(("127.0.0.1", n2.port), timeout=5)
        s.sendall(payload)
        s.settimeout(3)
        got = b""
        try:
            while True:
                b = s.recv(4096)
                if not b:
                    break
                got += b
        except (socket.timeout, ConnectionResetError):
            pass
        s.close()
        return got

    raw(b"GET / HTTP/1.0\r\n\r\n" * 10)
    raw(b"\x00" * 100000)
    raw(frames.frame(0x100, b"\x01\x02"))                  # HELLO, malformed
    # A client HELLO (docs/wire.md §4.1) claiming protocol version 99.
    hello_v99 = struct.pack("<HBBB3xIIQ", 99, 2, 0, 0, 0, 0, 0)
    reply = raw(frames.frame(0x100, hello_v99))
    chk.ok(n2.proc.poll() is None, "n2 survived garbage and bad HELLOs")
    chk.ok(len(reply) >= 24 and frames.parse_header(reply)["type"] == 0x102
           and b"99" in reply,
           "n2 answered a wrong-version HELLO with an ERROR frame naming version 99")
    chk.ok(n2.metric_sum("freshet_bad_frames_total") >= 1, "n2 counted bad frames")
    c.wait_converged(timeout=30)
    chk.ok(True, "cluster still converged")
    px.close()
chk.done()
