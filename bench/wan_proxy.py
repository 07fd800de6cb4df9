#!/usr/bin/env python3
"""wan_proxy.py — one simulated WAN link on loopback: a TCP proxy whose
connections all share one bandwidth budget per direction.

bench_propagation.py puts one in front of the Redis broker for each remote
data centre, so that every replica of that dc reads the stream through the
same capped link, as freshetd's gossip.wan_mbit caps every link from a node
to one other dc with one shared token bucket.  The bucket copies the
node's (node/net.c): refilled once per 100 ms tick with a tick's worth of
bytes, holding at most two ticks; the two directions have a bucket each
(a full-duplex link).  It is a bench tool, not a network emulator: no
delay, no loss, loopback only.

    wan_proxy.py --target 127.0.0.1:6379 --mbit 100 [--listen PORT]

It prints "port N" once it listens, then answers lines on stdin: "stats"
prints one JSON object {"up": bytes client->target, "down": bytes
target->client, "conns": accepted}; "quit" or the end of stdin stops it
(so it never outlives the process that started it).

Only the standard library is used.
"""

import argparse
import json
import socket
import sys
import threading
import time

CHUNK = 16384


class Bucket:
    """A token bucket filled per tick (libevent's ev_token_bucket_cfg
    with rate = burst / 2 per tick); take() blocks until some bytes may
    pass and returns how many (at most n)."""

    def __init__(self, bytes_per_s, tick_s=0.1, burst_ticks=2):
        self.per_tick = max(1, int(bytes_per_s * tick_s))
        self.burst = self.per_tick * burst_ticks
        self.tick_s = tick_s
        self.t0 = time.monotonic()
        self.tick = 0
        self.tokens = self.burst
        self.lock = threading.Lock()

    def take(self, n):
        while True:
            with self.lock:
                now_tick = int((time.monotonic() - self.t0) / self.tick_s)
                if now_tick > self.tick:
                    self.tokens = min(self.burst,
                                      self.tokens + (now_tick - self.tick) * self.per_tick)
                    self.tick = now_tick
                if self.tokens > 0:
                    g = min(n, self.tokens)
                    self.tokens -= g
                    return g
                wait = self.t0 + (self.tick + 1) * self.tick_s - time.monotonic()
            time.sleep(max(wait, 0.0005))


class Proxy:
    def __init__(self, listen_port, target, mbit):
        self.target = target
        rate = mbit * 125000.0
        self.buckets = {"up": Bucket(rate), "down": Bucket(rate)}
        self.counts = {"up": 0, "down": 0, "conns": 0}
        self.lock = threading.Lock()
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", listen_port))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            try:
                t = socket.create_connection(self.target, timeout=10)
            except OSError as e:
                sys.stderr.write("wan_proxy: target %s:%d: %s\n" % (self.target + (e,)))
                c.close()
                continue
            t.settimeout(None)
            for s in (c, t):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self.counts["conns"] += 1
            threading.Thread(target=self._pump, args=(c, t, "up"), daemon=True).start()
            threading.Thread(target=self._pump, args=(t, c, "down"), daemon=True).start()

    def _pump(self, src, dst, way):
        bucket = self.buckets[way]
        try:
            while True:
                data = src.recv(CHUNK)
                if not data:
                    break
                view = memoryview(data)
                while view:
                    g = bucket.take(len(view))
                    dst.sendall(view[:g])
                    view = view[g:]
                    with self.lock:
                        self.counts[way] += g
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stats(self):
        with self.lock:
            return dict(self.counts)


def parse_hostport(s):
    host, _, port = s.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError("'%s': expected HOST:PORT" % s)
    return host, int(port)


def main():
    ap = argparse.ArgumentParser(prog="wan_proxy",
                                 description="a bandwidth-capped TCP proxy on loopback")
    ap.add_argument("--target", type=parse_hostport, required=True, help="HOST:PORT to forward to")
    ap.add_argument("--mbit", type=float, required=True,
                    help="budget per direction, shared by every connection, Mbit/s")
    ap.add_argument("--listen", type=int, default=0, help="port on 127.0.0.1 (0: any free one)")
    a = ap.parse_args()
    if not a.mbit > 0:
        ap.error("--mbit: expected a positive number")
    if not 0 <= a.listen < 65536:
        ap.error("--listen: expected 0..65535")
    p = Proxy(a.listen, a.target, a.mbit)
    print("port %d" % p.port, flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "stats":
            print(json.dumps(p.stats()), flush=True)
        elif cmd == "quit":
            break
    return 0


if __name__ == "__main__":
    sys.exit(main())
