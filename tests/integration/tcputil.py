"""tcputil.py — the socket plumbing the test proxies share (proxy.py,
dcproxy.py; bench/wan_proxy.py too): a listening socket on loopback, an
accept loop in a thread, reading exactly n bytes, copying one direction
of a connection, and shutting sockets down or closing them whatever state
they are in.

What a proxy does with the bytes (spoil frames, cut dcs, cap bandwidth)
stays in its own file.  Only the standard library is used.
"""

import socket
import threading


def listen(port=0, backlog=64):
    """A socket listening on 127.0.0.1:port (0: any free port)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(backlog)
    return s


def serve(lsock, handle, closed=lambda: False):
    """In a daemon thread: accept connections on lsock and call
    handle(conn) for each, until lsock is closed or closed() is true."""
    def loop():
        while not closed():
            try:
                c, _ = lsock.accept()
            except OSError:
                return
            handle(c)
    threading.Thread(target=loop, daemon=True).start()


def spawn(fn, *args):
    """fn(*args) in a daemon thread."""
    threading.Thread(target=fn, args=args, daemon=True).start()


def recv_exact(sock, n):
    """Exactly n bytes from sock; EOFError when it closes first."""
    buf = b""
    while len(buf) < n:
        b = sock.recv(n - len(buf))
        if not b:
            raise EOFError
        buf += b
    return buf


def shutdown(*socks):
    """shutdown(SHUT_RDWR) every socket, one already gone included."""
    for s in socks:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def close(*socks):
    """close() every socket, one already gone included."""
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


def pump(src, dst, send=None, size=65536):
    """Copy what src reads to dst (through send(data) instead of
    dst.sendall when given) until src closes or either side fails, then
    shut both down."""
    try:
        while True:
            data = src.recv(size)
            if not data:
                break
            if send is None:
                dst.sendall(data)
            else:
                send(data)
    except OSError:
        pass
    shutdown(src, dst)
