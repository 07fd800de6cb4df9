"""proxy.py — a TCP proxy for tests, in a thread: forwards bytes both ways
and, in the chosen direction, can spoil whole frames on purpose (a flipped
payload bit, a wrong type, a truncated frame followed by a close, an
oversized length) or black-hole everything (a partition)."""

import socket
import struct
import threading

import frames


class Proxy:
    def __init__(self, listen_port, target_port):
        self.target = ("127.0.0.1", target_port)
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", listen_port))
        self.lsock.listen(16)
        self.lock = threading.Lock()
        self.plan = []          # spoil actions for the client->server direction
        self.blackhole = False
        self.spoiled = []
        self.frames_seen = 0
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def spoil(self, *actions):
        """Queue actions ('flip', 'type', 'truncate', 'oversize'), one per
        forwarded frame from the client side, after skip frames."""
        with self.lock:
            self.plan.extend(actions)

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            try:
                s = socket.create_connection(self.target, timeout=5)
                s.settimeout(None)
            except OSError:
                c.close()
                continue
            threading.Thread(target=self._pump_frames, args=(c, s), daemon=True).start()
            threading.Thread(target=self._pump_raw, args=(s, c), daemon=True).start()

    def _pump_raw(self, src, dst):
        try:
            while True:
                b = src.recv(65536)
                if not b:
                    break
                if not self.blackhole:
                    dst.sendall(b)
        except OSError:
            pass
        for x in (src, dst):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _recv_exact(self, sock, n):
        buf = b""
        while len(buf) < n:
            b = sock.recv(n - len(buf))
            if not b:
                raise EOFError
            buf += b
        return buf

    def _pump_frames(self, src, dst):
        try:
            while True:
                hdr = self._recv_exact(src, frames.HDR_BYTES)
                h = frames.parse_header(hdr)
                if h["magic"] != frames.MAGIC or h["length"] < frames.HDR_BYTES:
                    raise EOFError  # not ours to judge; just stop
                body = self._recv_exact(src, h["length"] - frames.HDR_BYTES)
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
        for x in (src, dst):
            try:
                x.shutdown(socket.SHUT_RDWR)
                x.close()
            except OSError:
                pass

    def close(self):
        self.closed = True
        self.lsock.close()
