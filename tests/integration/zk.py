"""zk.py — a real ZooKeeper server for tests, the demo and benchmarks.

Starts Debian's ZooKeeper (package `zookeeper`, /usr/share/java/zookeeper.jar)
as a standalone server on a free loopback port with a data dir of its own,
and stops it on every exit path.  It can be stopped and started again on the
same port and data dir (the "ZooKeeper down for 10 s" test).

    with ZooKeeper() as zk:          # zk.hosts == "127.0.0.1:PORT"
        ...
        zk.stop(); time.sleep(10); zk.start()

As a command it runs another command with a server up:

    python3 zk.py run -- CMD ARGS...     # CMD sees FRESHET_ZK=127.0.0.1:PORT

Only the standard library is used here; tests that write raw znodes use
Debian's python3-kazoo themselves.
"""

import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

CLASSPATH = "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar"
JAVA = "/usr/bin/java"

_live = []


def _cleanup():
    for z in list(_live):
        z.close()


atexit.register(_cleanup)


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _ruok(port, timeout=0.5):
    """True when the server answers the four-letter word 'ruok'."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"ruok")
            return s.recv(16) == b"imok"
    except OSError:
        return False


class ZooKeeper:
    """One standalone server.  tick_ms sets tickTime, which bounds the
    session timeouts a client may negotiate to 2..20 ticks."""

    def __init__(self, tick_ms=500, dir=None):
        base = dir or os.environ.get("FRESHET_TEST_TMP")
        if base:
            os.makedirs(base, exist_ok=True)
        self.dir = tempfile.mkdtemp(prefix="freshet-zk-", dir=base)
        self.port = _free_port()
        self.hosts = "127.0.0.1:%d" % self.port
        self.proc = None
        self.log_path = os.path.join(self.dir, "zookeeper.log")
        self.cfg = os.path.join(self.dir, "zoo.cfg")
        with open(self.cfg, "w") as f:
            f.write("tickTime=%d\n" % tick_ms)
            f.write("dataDir=%s\n" % os.path.join(self.dir, "data"))
            f.write("clientPort=%d\n" % self.port)
            f.write("clientPortAddress=127.0.0.1\n")
            f.write("admin.enableServer=false\n")
            f.write("4lw.commands.whitelist=ruok,stat,mntr,cons\n")
            f.write("maxClientCnxns=0\n")
        _live.append(self)

    def start(self, timeout=60):
        if self.proc and self.proc.poll() is None:
            return self
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [JAVA, "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
             "-Dzookeeper.admin.enableServer=false",
             "-Dzookeeper.4lw.commands.whitelist=*",
             "-cp", CLASSPATH,
             "org.apache.zookeeper.server.ZooKeeperServerMain", self.cfg],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("ZooKeeper exited with %d; log:\n%s"
                                   % (self.proc.returncode, self.log()))
            if _ruok(self.port):
                return self
            time.sleep(0.1)
        raise RuntimeError("ZooKeeper not up on %s after %d s; log:\n%s"
                           % (self.hosts, timeout, self.log()))

    def stop(self):
        """Kill the server (SIGKILL: clients see the connection drop at
        once, as when a ZooKeeper host dies).  Data stays for start()."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return "(no log)"

    def close(self):
        self.stop()
        if self in _live:
            _live.remove(self)
        if not os.environ.get("FRESHET_KEEP_TMP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
        return False


def main(argv):
    if len(argv) < 3 or argv[1] != "run" or "--" not in argv:
        sys.stderr.write("usage: zk.py run -- CMD [ARGS...]\n")
        return 2
    cmd = argv[argv.index("--") + 1:]
    if not cmd:
        sys.stderr.write("zk.py: no command after --\n")
        return 2
    with ZooKeeper() as zk:
        env = dict(os.environ, FRESHET_ZK=zk.hosts)
        return subprocess.call(cmd, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
