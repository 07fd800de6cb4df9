"""dcproxy.py — cut data centres apart on loopback, without root.

Every node advertises (node.advertise) the address of its own DcProxy, so
every link between nodes runs through the proxy of the node that was
dialed.  The proxy reads the dialer's HELLO (docs/wire.md §4.1: the dc
name is the first section after the 24-byte fixed part) and so knows which
two dcs the link joins.  `Cuts.cut("dc3")` closes every live link between
dc3 and any other dc and refuses new ones (the dialer sees its connection
closed right after HELLO, as behind a firewall that resets), until
`Cuts.heal("dc3")`.  Links inside a dc, and clients (which have no dc),
pass untouched.  ZooKeeper traffic does not go through these proxies.
"""

import socket
import struct
import threading

import tcputil

HDR = 24          # frame header (docs/wire.md §1)
HELLO = 0x0100


class Cuts:
    """The cut set shared by every proxy of a test."""

    def __init__(self):
        self.lock = threading.Lock()
        self.cut_dcs = set()
        self.proxies = []

    def cut(self, dc):
        with self.lock:
            self.cut_dcs.add(dc)
        for p in self.proxies:
            p.enforce()

    def heal(self, dc):
        with self.lock:
            self.cut_dcs.discard(dc)

    def blocked(self, a, b):
        with self.lock:
            return bool(a and b and a != b and
                        (a in self.cut_dcs or b in self.cut_dcs))


class DcProxy:
    def __init__(self, cuts, dc, target_port, listen_port=0):
        self.cuts = cuts
        self.dc = dc
        self.target = ("127.0.0.1", target_port)
        self.lsock = tcputil.listen(listen_port, 64)
        self.port = self.lsock.getsockname()[1]
        self.lock = threading.Lock()
        self.links = []          # (src dc, client sock, server sock)
        self.refused = 0
        self.closed = False
        cuts.proxies.append(self)
        tcputil.serve(self.lsock, lambda c: tcputil.spawn(self._start, c),
                      lambda: self.closed)

    def _start(self, c):
        try:
            c.settimeout(15)
            hdr = tcputil.recv_exact(c, HDR)
            ftype, length = struct.unpack_from("<HI", hdr, 6)
            first = hdr
            src_dc = ""
            if ftype == HELLO and 48 <= length <= 4096:
                rest = tcputil.recv_exact(c, length - HDR)
                first += rest
                role, dlen = rest[2], rest[3]
                if role == 1:
                    src_dc = rest[24:24 + dlen].decode("ascii", "replace")
            c.settimeout(None)
            if self.cuts.blocked(src_dc, self.dc):
                with self.lock:
                    self.refused += 1
                c.close()
                return
            s = socket.create_connection(self.target, timeout=5)
            s.settimeout(None)
            s.sendall(first)
        except (OSError, EOFError):
            c.close()
            return
        with self.lock:
            self.links.append((src_dc, c, s))
        tcputil.spawn(tcputil.pump, c, s)
        tcputil.spawn(tcputil.pump, s, c)

    def enforce(self):
        """Close live links that a new cut forbids."""
        with self.lock:
            keep = []
            for src_dc, c, s in self.links:
                if self.cuts.blocked(src_dc, self.dc):
                    tcputil.shutdown(c, s)
                else:
                    keep.append((src_dc, c, s))
            self.links = keep

    def close(self):
        self.closed = True
        tcputil.close(self.lsock)
        self.cuts.heal(self.dc)
        with self.lock:
            for _, c, s in self.links:
                tcputil.close(c, s)
            self.links = []
