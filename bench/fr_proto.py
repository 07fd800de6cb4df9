"""fr_proto.py — a small blocking Python client for freshetd's client
protocol (docs/wire.md §4): HELLO, PUBLISH, LOOKUP and their replies, on
one persistent TCP connection.

It is for benchmarks that need to time individual requests from Python
(bench_propagation.py).  It is not the C client library (client/) and not
a second implementation to test the node against: it sends well-formed
frames only, does one request at a time, and does not retry.  The frame
envelope comes from tests/integration/frames.py (found next to this file's
source tree, or through sys.path).

Only the standard library and python3-xxhash (through frames.py) are used.
"""

import os
import socket
import struct
import sys

_IT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration")
if _IT not in sys.path:
    sys.path.insert(0, _IT)

import frames  # noqa: E402  (path set up just above)

T_HELLO = 0x0100
T_HELLO_ACK = 0x0101
T_ERROR = 0x0102
T_PUBLISH = 0x0110
T_PUBLISH_ACK = 0x0111
T_LOOKUP = 0x0112
T_LOOKUP_REPLY = 0x0113

PROTO_VERSION = 1
ROLE_NODE = 1
ROLE_CLIENT = 2

FR_ERR_BUSY = -11

_HELLO = struct.Struct("<HBBB3xI4xQ")        # 24 bytes
_ERROR = struct.Struct("<QiHH")              # 16 bytes
_PUBLISH = struct.Struct("<QBBBxII4x")       # 24 bytes
_PUBLISH_ACK = struct.Struct("<QiIIHHQ")     # 32 bytes
_LOOKUP = struct.Struct("<QBBHI")            # 16 bytes
_LOOKUP_REPLY = struct.Struct("<QiIIHH")     # 24 bytes


class ProtoError(Exception):
    """The node answered with an error code (negative enum fr_err), or
    sent something this client did not expect."""

    def __init__(self, code, msg):
        super().__init__("%d: %s" % (code, msg))
        self.code = code
        self.msg = msg


def _pad(b):
    return b + b"\0" * (-len(b) % 8)


def _name(s, what, lo, hi):
    b = s.encode("ascii")
    if not lo <= len(b) <= hi:
        raise ValueError("%s '%s': expected %d..%d bytes" % (what, s, lo, hi))
    return b


def _text(payload, off, n):
    return payload[off:off + n].decode("ascii", "replace")


class Conn:
    """One client connection to a node: greets on connect, then one
    request at a time, each answered before the next is sent."""

    def __init__(self, addr, timeout=30.0):
        host, _, port = addr.rpartition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.req_id = 0
        self.node_id = None
        self._hello()

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # --- framing -------------------------------------------------------

    def _send(self, ftype, payload):
        self.sock.sendall(frames.frame(ftype, payload))

    def _recv_exact(self, n):
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            k = self.sock.recv_into(view[got:], n - got)
            if k == 0:
                raise ConnectionError("node closed the connection")
            got += k
        return bytes(buf)

    def _recv(self):
        """The next frame as (type, payload), envelope checked."""
        hdr = self._recv_exact(frames.HDR_BYTES)
        h = frames.parse_header(hdr)
        if h["magic"] != frames.MAGIC or h["version"] != 1 or h["reserved"] != 0 \
                or h["length"] < frames.HDR_BYTES:
            raise ProtoError(-17, "bad frame header %r" % (h,))
        payload = self._recv_exact(h["length"] - frames.HDR_BYTES)
        if frames.checksum(hdr[:16], payload) != h["checksum"]:
            raise ProtoError(-5, "frame type 0x%x: checksum mismatch" % h["type"])
        return h["type"], payload

    def _reply(self, want_type, req_id):
        """Wait for the reply to req_id; an ERROR frame raises."""
        while True:
            ftype, p = self._recv()
            if ftype == T_ERROR:
                rid, code, mlen, _ = _ERROR.unpack_from(p, 0)
                if rid in (0, req_id):
                    raise ProtoError(code, _text(p, _ERROR.size, mlen))
                continue
            if ftype != want_type:
                raise ProtoError(-18, "got frame type 0x%x, expected 0x%x"
                                 % (ftype, want_type))
            if struct.unpack_from("<Q", p, 0)[0] == req_id:
                return p

    def _next_req(self):
        self.req_id += 1
        return self.req_id

    # --- messages ------------------------------------------------------

    def _hello(self):
        self._send(T_HELLO, _HELLO.pack(PROTO_VERSION, ROLE_CLIENT, 0, 0, 0, 0))
        ftype, p = self._recv()
        if ftype == T_ERROR:
            _, code, mlen, _ = _ERROR.unpack_from(p, 0)
            raise ProtoError(code, _text(p, _ERROR.size, mlen))
        if ftype != T_HELLO_ACK:
            raise ProtoError(-18, "got frame type 0x%x, expected HELLO_ACK" % ftype)
        ver, role, _, _, node_id, _ = _HELLO.unpack_from(p, 0)
        if ver != PROTO_VERSION or role != ROLE_NODE:
            raise ProtoError(-7, "HELLO_ACK version %d role %d" % (ver, role))
        self.node_id = node_id

    def publish_frame(self, model, table, rows, values, dim, key=None):
        """Build a PUBLISH frame without sending it (so its cost stays out
        of a timed section).  rows: bytes of little-endian u64 ids (or a
        list of ints); values: bytes of n*dim little-endian f32.
        Returns (req_id, frame bytes)."""
        if not isinstance(rows, (bytes, bytearray)):
            rows = struct.pack("<%dQ" % len(rows), *rows)
        n = len(rows) // 8
        if n < 1 or len(values) != 4 * n * dim:
            raise ValueError("publish: %d rows need %d value bytes, got %d"
                             % (n, 4 * n * dim, len(values)))
        mb = _name(model, "model", 1, 63)
        tb = _name(table, "table", 1, 63)
        kb = _name(key, "key", 1, 64) if key else b""
        rid = self._next_req()
        payload = b"".join((_PUBLISH.pack(rid, len(mb), len(tb), len(kb), n, dim),
                            _pad(mb), _pad(tb), _pad(kb), bytes(rows), _pad(bytes(values))))
        return rid, frames.frame(T_PUBLISH, payload)

    def send_frame(self, frame):
        self.sock.sendall(frame)

    def publish_wait(self, req_id):
        """Wait for PUBLISH_ACK of req_id: returns (version, origin);
        raises ProtoError with the node's status otherwise (BUSY included:
        the caller decides whether to retry)."""
        p = self._reply(T_PUBLISH_ACK, req_id)
        _, status, retry, origin, mlen, _, version = _PUBLISH_ACK.unpack_from(p, 0)
        if status != 0:
            e = ProtoError(status, _text(p, _PUBLISH_ACK.size, mlen))
            e.retry_after_ms = retry
            raise e
        return version, origin

    def publish(self, model, table, rows, values, dim, key=None):
        rid, fr = self.publish_frame(model, table, rows, values, dim, key)
        self.send_frame(fr)
        return self.publish_wait(rid)

    def lookup(self, model, table, rows, want_values=True):
        """rows: list of ints.  Returns (versions, origins, values) where
        values is the raw f32 bytes (row-major), or None if not wanted."""
        n = len(rows)
        mb = _name(model, "model", 1, 63)
        tb = _name(table, "table", 1, 63)
        rid = self._next_req()
        payload = b"".join((_LOOKUP.pack(rid, len(mb), len(tb), 0, n),
                            _pad(mb), _pad(tb), struct.pack("<%dQ" % n, *rows)))
        self._send(T_LOOKUP, payload)
        p = self._reply(T_LOOKUP_REPLY, rid)
        _, status, rn, dim, mlen, _ = _LOOKUP_REPLY.unpack_from(p, 0)
        off = _LOOKUP_REPLY.size
        if status != 0:
            raise ProtoError(status, _text(p, off, mlen))
        if rn != n:
            raise ProtoError(-17, "LOOKUP_REPLY n %d, expected %d" % (rn, n))
        off += (mlen + 7) // 8 * 8
        versions = struct.unpack_from("<%dQ" % n, p, off)
        off += 8 * n
        origins = struct.unpack_from("<%dI" % n, p, off)
        off += (4 * n + 7) // 8 * 8
        values = p[off:off + 4 * n * dim] if want_values else None
        return versions, origins, values
