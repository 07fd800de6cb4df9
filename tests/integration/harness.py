"""harness.py — start and stop real freshetd processes for integration tests.

Every test builds a Cluster in a temp dir of its own, on free loopback ports,
and tears it down on every exit path (context manager + atexit + a hard
deadline per test).  Nodes are real `freshetd` processes speaking real TCP;
the `freshet` CLI is the real client.  Nothing here fakes a node.

Only the Python standard library is used.
"""

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("FRESHET_BUILD_DIR") or os.path.join(HERE, "..", "..", "build")
FRESHETD = os.path.join(BUILD, "node", "freshetd")
FRESHET = os.path.join(BUILD, "cli", "freshet")
BENCH = os.path.join(HERE, "..", "..", "bench")

_live = []


def _cleanup_all():
    for c in list(_live):
        c.close()


atexit.register(_cleanup_all)


def deadline(seconds):
    """Kill the whole test (and, through atexit, its processes) if it runs
    longer than `seconds`."""
    def on_alarm(signum, frame):
        sys.stderr.write("TEST TIMED OUT after %d s\n" % seconds)
        _cleanup_all()
        os._exit(3)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)


def fr_proto():
    """bench/fr_proto.py, the Python client of the node protocol, for tests
    that time or shape their own requests."""
    if BENCH not in sys.path:
        sys.path.insert(0, BENCH)
    import fr_proto as fp
    return fp


def tmpdir(prefix):
    """A new temp dir, under $FRESHET_TEST_TMP when that is set."""
    base = os.environ.get("FRESHET_TEST_TMP")
    if base:
        os.makedirs(base, exist_ok=True)
    return tempfile.mkdtemp(prefix=prefix, dir=base)


def dc_names(dcs, per_dc):
    """Each node's dc, in node order: per_dc nodes in each of dc1..dc<dcs>."""
    return ["dc%d" % (i + 1) for i in range(dcs) for _ in range(per_dc)]


def free_ports(n):
    """n distinct free TCP ports on 127.0.0.1 (bound together, then freed)."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


class Node:
    def __init__(self, cluster, node_id, port, admin_port, data_dir, conf):
        self.cluster = cluster
        self.id = node_id
        self.port = port
        self.admin_port = admin_port
        self.data_dir = data_dir
        self.conf = conf
        self.proc = None
        self.log_path = os.path.join(cluster.dir, "node%d.log" % node_id)

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def start(self, extra_args=()):
        logf = open(self.log_path, "ab")
        # A session of its own: a Ctrl-C at the terminal reaches the test
        # or the demo, which then stops its nodes in order, not the nodes
        # behind its back.
        self.proc = subprocess.Popen(
            [FRESHETD, "--config", self.conf] + list(extra_args),
            stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        logf.close()

    def wait_ready(self, timeout=20):
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("node %d exited with %d during start-up; log:\n%s"
                                   % (self.id, self.proc.returncode, self.log()))
            try:
                if self.http("/healthz", timeout=1).strip() == "ok":
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("node %d not ready after %d s; log:\n%s"
                           % (self.id, timeout, self.log()))

    def http(self, path, timeout=5):
        url = "http://127.0.0.1:%d%s" % (self.admin_port, path)
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.read().decode()

    def status(self, shards=False):
        return json.loads(self.http("/status" + ("?shards=1" if shards else "")))

    def metrics(self):
        """Prometheus text -> {(name, frozenset(labels)): value}."""
        out = {}
        for line in self.http("/metrics").splitlines():
            if not line or line.startswith("#"):
                continue
            name_labels, _, value = line.rpartition(" ")
            if "{" in name_labels:
                name, _, rest = name_labels.partition("{")
                labels = frozenset(
                    tuple(kv.split("=", 1)) for kv in
                    rest.rstrip("}").replace('"', "").split(",") if kv)
            else:
                name, labels = name_labels, frozenset()
            try:
                out[(name, labels)] = float(value)
            except ValueError:
                pass
        return out

    def metric_sum(self, name, **match):
        total = 0.0
        for (n, labels), v in self.metrics().items():
            if n != name:
                continue
            d = dict(labels)
            if all(d.get(k) == str(val) for k, val in match.items()):
                total += v
        return total

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self, timeout=20):
        """SIGTERM and wait; returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.terminate()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("node %d ignored SIGTERM for %d s" % (self.id, timeout))

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-6000:]
        except OSError:
            return "(no log)"


MODEL_DEFAULT = {
    "name": "ctr",
    "shards": 16,
    "priority": 1,
    "tables": ["users:4096:16:f32", "items:2048:8:f16"],
}


class Cluster:
    """n nodes of one DC, a static full peer list, one or more models.

    peers, if given, is {node id: [peer ids]}: the ids each node lists in
    its [peers] section instead of every other node (another topology for
    the same nodes, e.g. a star).  A node missing from it lists none.

    zk, if given, is a zk.ZooKeeper: nodes join it ([zookeeper] hosts,
    cluster = the test's own name) and find their peers there, so no
    [peers] are written unless `peers` asks for some.  dcs is a list of
    dc names, one per node (default all "dc1").  registry=True leaves the
    [model] sections out: the test registers models in ZooKeeper
    (register_models()) and nodes pick them up live.  advertise, if
    given, is called with each Node before its config is written and
    returns the port other nodes should dial for it (node.advertise),
    e.g. a dcproxy.DcProxy in front of it, or None.  chroot ("/a/b") is
    appended to the ZooKeeper hosts: the cluster lives under it.
    node_extra, if given, is {node id: {section: {key: value}}}: config
    for one node on top of `extra` (roles, a short undo ring, ...)."""

    def __init__(self, n, models=(MODEL_DEFAULT,), extra=None, name="itest",
                 peers=None, zk=None, dcs=None, registry=False,
                 advertise=None, chroot="", node_extra=None):
        self.dir = tmpdir("freshet-%s-" % name)
        self.models = list(models)
        self.peer_map = peers
        self.zk = zk
        self.zk_hosts = (zk.hosts + chroot) if zk else None
        self.registry = registry
        self.cluster_name = "%s-%d" % (name.replace("_", "-"), os.getpid())
        self.dcs = list(dcs) if dcs else ["dc1"] * n
        if len(self.dcs) != n:
            raise ValueError("dcs names %d dcs for %d nodes" % (len(self.dcs), n))
        ports = free_ports(2 * n)
        self.nodes = []
        for i in range(n):
            nid = i + 1
            data = os.path.join(self.dir, "data%d" % nid)
            conf = os.path.join(self.dir, "node%d.conf" % nid)
            self.nodes.append(Node(self, nid, ports[2 * i], ports[2 * i + 1], data, conf))
            self.nodes[-1].dc = self.dcs[i]
        self.node_extra = node_extra or {}
        for node in self.nodes:
            node.advertise_port = advertise(node) if advertise else None
            self._write_conf(node, extra or {})
        _live.append(self)

    def _write_conf(self, node, extra):
        lines = ["[node]",
                 "id = %d" % node.id,
                 "dc = %s" % node.dc,
                 "listen = 127.0.0.1:%d" % node.port,
                 "admin = 127.0.0.1:%d" % node.admin_port,
                 "advertise = %s" % ("127.0.0.1:%d" % node.advertise_port
                                     if node.advertise_port else ""),
                 "data_dir = %s" % node.data_dir,
                 "log_level = info",
                 "backend = cpu"]
        if self.zk:
            lines.append("cluster = %s" % self.cluster_name)
        sections = {"gossip": {"digest_interval_ms": 100,
                               "pull_timeout_ms": 1000,
                               "reconnect_min_ms": 50,
                               "reconnect_max_ms": 500}}
        if self.zk:
            sections["zookeeper"] = {"hosts": self.zk_hosts,
                                     "session_timeout_ms": 4000}
        for sec, kv in extra.items():
            sections.setdefault(sec, {}).update(kv)
        for sec, kv in self.node_extra.get(node.id, {}).items():
            if sec == "node":
                lines += ["%s = %s" % (k, v) for k, v in kv.items()]
            else:
                sections.setdefault(sec, {}).update(kv)
        for sec, kv in sections.items():
            lines.append("[%s]" % sec)
            lines += ["%s = %s" % (k, v) for k, v in kv.items()]
        lines.append("[peers]")
        for other in self.nodes:
            if other is node:
                continue
            if self.zk and self.peer_map is None:
                continue
            if self.peer_map is None or other.id in self.peer_map.get(node.id, ()):
                lines.append("peer = %d@127.0.0.1:%d" % (other.id, other.port))
        for m in ([] if self.registry else self.models):
            lines.append("[model %s]" % m["name"])
            lines.append("shards = %d" % m["shards"])
            lines.append("priority = %d" % m["priority"])
            lines += ["table = %s" % t for t in m["tables"]]
        with open(node.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def register_models(self):
        """Create every model in ZooKeeper with `freshet model create`."""
        for m in self.models:
            args = ["model", "create", "--zk", self.zk_hosts,
                    "--cluster", self.cluster_name, "--name", m["name"],
                    "--shards", m["shards"], "--priority", m["priority"]]
            for t in m["tables"]:
                args += ["--table", t]
            cli(*args)

    def leader_of(self, dc, timeout=30):
        """The node that says it leads dc (by its /status), waiting for
        exactly one."""
        end = time.time() + timeout
        seen = None
        while time.time() < end:
            leaders = []
            for node in self.nodes:
                if node.dc != dc or not node.alive():
                    continue
                try:
                    if node.status()["topology"]["leader"]:
                        leaders.append(node)
                except (OSError, KeyError, ValueError):
                    pass
            if len(leaders) == 1:
                return leaders[0]
            seen = [n.id for n in leaders]
            time.sleep(0.1)
        raise AssertionError("dc %s: no single leader after %d s (leaders: %r)"
                             % (dc, timeout, seen))

    def start(self):
        for node in self.nodes:
            node.start()
        for node in self.nodes:
            node.wait_ready()
        return self

    def close(self):
        for node in self.nodes:
            node.kill9()
        if self in _live:
            _live.remove(self)
        if os.environ.get("FRESHET_KEEP_TMP"):
            sys.stderr.write("kept %s\n" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is not None:
            for node in self.nodes:
                sys.stderr.write("---- node %d log tail ----\n%s\n" % (node.id, node.log()))
        self.close()
        return False

    def fingerprint(self, node):
        """What must be equal on every converged node: per model its summary
        and each table's checksum."""
        st = node.status()
        fp = {}
        for m in st["models"]:
            fp[m["name"]] = (m["summary"],
                             tuple((t["name"], t["checksum"]) for t in m["tables"]))
        return fp

    def wan_out(self, src_dc=None):
        """Bytes the live nodes (of src_dc, when given) sent to nodes of
        other dcs (freshet_dc_bytes_total with src_dc its dc, dst_dc
        another), summed: each byte that crossed a dc boundary is counted
        once, by its sender."""
        total = 0.0
        for n in self.nodes:
            if not n.alive() or src_dc not in (None, n.dc):
                continue
            for (name, labels), v in n.metrics().items():
                d = dict(labels)
                if name == "freshet_dc_bytes_total" and d.get("src_dc") == n.dc \
                        and d.get("dst_dc") != n.dc:
                    total += v
        return total

    def wait_converged(self, nodes=None, timeout=30):
        nodes = nodes or self.nodes
        end = time.time() + timeout
        last = None
        while time.time() < end:
            try:
                fps = [self.fingerprint(n) for n in nodes]
            except OSError:
                fps = None
            if fps and all(fp == fps[0] for fp in fps):
                return fps[0]
            last = fps
            time.sleep(0.1)
        raise AssertionError("not converged after %d s: %r" % (timeout, last))


def cli(*args, input_text=None, check=True, timeout=30):
    """Run the freshet CLI; returns CompletedProcess (text)."""
    p = subprocess.run([FRESHET] + [str(a) for a in args], input=input_text,
                       capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError("freshet %s exited %d: %s%s"
                             % (" ".join(map(str, args)), p.returncode, p.stdout, p.stderr))
    return p


def publish(node, model, table, rows, check=True, key=None):
    """rows: list of (row_id, [values]).  Returns the assigned version."""
    text = "".join("%d %s\n" % (r, " ".join(repr(float(v)) for v in vals))
                   for r, vals in rows)
    args = ["publish", "--node", node.addr, "--model", model, "--table", table]
    if key:
        args += ["--key", key]
    p = cli(*args, input_text=text, check=check)
    if not check:
        return p
    return int(p.stdout.split()[-1])


class Checks:
    """Counts assertions; prints a closing line CTest and humans can read.
    timeout, when given, is the test's deadline() as well."""

    def __init__(self, name, timeout=None):
        self.name = name
        self.passed = 0
        if timeout is not None:
            deadline(timeout)

    def ok(self, cond, what):
        if not cond:
            raise AssertionError(what)
        self.passed += 1
        print("ok - %s" % what, flush=True)

    def done(self):
        print("%s: %d checks passed" % (self.name, self.passed), flush=True)
