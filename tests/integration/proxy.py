"""proxy.py — a TCP proxy for tests, in a thread: forwards bytes both ways
and, in the chosen direction, can spoil whole frames on purpose (a flipped
payload bit, a wrong type, a truncated frame followed by a close, an
oversized length) or black-hole everything (a partition)."""

import socket
import struct
import threading

import frames
import tcputil


class Proxy:
    def __init__(self, listen_port, target_port):
        self.target = ("127.0.0.1", target_port)
        self.lsock = tcputil.listen(listen_port, 16)
        self.lock = threading.Lock()
        self.plan = []          # spoil actions for the client->server direction
        self.blackhole = False
        self.spoiled = []
        self.frames_seen = 0
        self.closed = False
        tcputil.serve(self.lsock, self._connect, lambda: self.closed)

    def spoil(self, *actions):
        """Queue actions ('flip', 'type', 'truncate', 'oversize'), one per
        forwarded frame from the client side, after skip frames."""
        with self.lock:
            self.plan.extend(actions)

    def _connect(self, c):
        try:
            s = socket.create_connection(self.target, timeout=5)
            s.settimeout(None)
        except OSError:
            c.close()
            return
        tcputil.spawn(self._pump_frames, c, s)
        # server -> client: raw bytes, unless black-holed.
        tcputil.spawn(tcputil.pump, s, c,
                      lambda b: None if self.blackhole else c.sendall(b))

    def _pump_frames(self, src, dst):
        try:
            while True:
                hdr = tcputil.recv_exact(src, frames.HDR_BYTES)
                h = frames.parse_header(hdr)
                if h["magic"] != frames.MAGIC or h["length"] < frames.HDR_BYTES:
                    raise EOFError  # not ours to judge; just stop
                body = tcputil.recv_exact(src, h["length"] - frames.HDR_BYTES)
                self.frames_seen += 1
                act = None
                # Spoil only after the HELLO exchange (frame 1 is HELLO).
                if self.frames_seen > 1:
                    with self.lock:
                        if self.plan:
                            act = self.plan.pop(0)
                if self.blackhole:
                    continue
                if act is None:
                    dst.sendall(hdr + body)
                    continue
                self.spoiled.append((act, h["type"]))
                if act == "flip" and body:
                    b = bytearray(body)
                    b[len(b) // 2] ^= 0x10
                    dst.sendall(hdr + bytes(b))
                elif act == "flip":
                    dst.sendall(hdr + body)
                elif act == "type":
                    # A well-formed frame of a type nobody knows.
                    dst.sendall(frames.frame(0x7777, frames.pad8(b"garbage!")))
                    dst.sendall(hdr + body)
                elif act == "oversize":
                    bad = bytearray(hdr)
                    struct.pack_into("<I", bad, 8, 0x7fffffff)
                    dst.sendall(bytes(bad) + body)
                    raise EOFError
                elif act == "truncate":
                    dst.sendall(hdr + body[: len(body) // 2])
                    raise EOFError
        except (OSError, EOFError):
            pass
        tcputil.shutdown(src, dst)
        tcputil.close(src, dst)

    def close(self):
        self.closed = True
        self.lsock.close()
