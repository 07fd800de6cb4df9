"""benchutil.py — what the Python benches (bench_propagation.py,
bench_rollback.py) share: loading the integration harness and
bench/fr_proto.py against a build tree, the bench model and the nodes'
timers, percentiles and random f32 values, a PUBLISH retried while the
node answers BUSY, waiting until every node serves the models, the
poller threads' scaffolding, and the deadline and SIGTERM handling.

Not here: what one bench alone measures (its updates, what its pollers
look for, its report).  A bench sets sys.dont_write_bytecode before it
imports this file, so no __pycache__ lands in the source tree.  Only the
standard library is used here.
"""

import os
import signal
import sys
import threading
import time

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = "emb"
TABLE = "emb"


def load(build_dir):
    """Point the harness at build_dir's node/freshetd and cli/freshet;
    returns the modules (harness, fr_proto)."""
    os.environ["FRESHET_BUILD_DIR"] = os.path.abspath(build_dir)
    sys.dont_write_bytecode = True
    sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
    sys.path.insert(0, os.path.join(SRC, "bench"))
    import harness
    import fr_proto
    return harness, fr_proto


def add_options(ap, options):
    """Add numeric options to ap (a parser or a group) from a table of
    (flag, default, help): the type is the default's (int or float), and
    a help that does not show %(default)s itself ends with it."""
    for flag, default, text in options:
        if "%(default)s" not in text:
            text += " (%(default)s)"
        ap.add_argument(flag, type=type(default), default=default, help=text)


def add_common_args(ap, holding, rows, shards, poll_ms, seed):
    """The options both benches take, with each one's defaults: the build
    tree (holding those binaries), the table (--rows, --dim, --shards),
    the nodes' digest timer, the pollers' pause and the seed."""
    ap.add_argument("--build-dir", default=os.path.join(SRC, "build"),
                    help="build tree holding %s (default: %%(default)s)" % holding)
    add_options(ap, [
        ("--rows", rows, "table rows"),
        ("--dim", 64, "f32 per row"),
        ("--shards", shards, "shards of the table"),
        ("--digest-ms", 200, "gossip.digest_interval_ms of every node (%(default)s, "
                             "the node's default)"),
        ("--poll-ms", float(poll_ms), "pause between a poller's lookups"),
    ])
    ap.add_argument("--seed", type=int, default=seed)


def apply_presets(ap, a, presets):
    """Each preset ({dest: value}, later ones winning) sets the options
    the command line left at their default."""
    given = {k for k in vars(a) if getattr(a, k) != ap.get_default(k)}
    for p in presets:
        for k, v in p.items():
            if k not in given:
                setattr(a, k, v)


def deadline(h, prog, seconds, cleanup=None):
    """harness.deadline for a bench that runs more than nodes: after
    `seconds` the nodes go, then cleanup() (ZooKeeper, Redis, proxies),
    and the bench exits 3 (atexit does not run on os._exit); a SIGTERM
    becomes SystemExit(143), so finally blocks and atexit still run."""
    def on_alarm(signum, frame):
        sys.stderr.write("%s: timed out\n" % prog)
        h._cleanup_all()
        if cleanup:
            cleanup()
        os._exit(3)

    def on_term(signum, frame):
        raise SystemExit(143)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.alarm(seconds)


def pct(xs, q):
    """Percentile q (0..100) with linear interpolation between ranks."""
    s = sorted(xs)
    if len(s) == 1:
        return s[0]
    k = (len(s) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


# Byte 3 of a little-endian f32 holds the sign and the top 7 exponent bits:
# mapping it into 0x3c..0x3f (with the sign kept) makes every random word a
# finite value of magnitude 2^-7..2^1 — random f32 without a per-value loop.
_F32_TOP = bytes((x & 0x80) | 0x3c | (x & 0x03) for x in range(256))


def random_f32(rng, n):
    """n random finite f32 values (little-endian bytes) drawn from rng."""
    b = bytearray(rng.randbytes(4 * n))
    b[3::4] = bytes(b[3::4]).translate(_F32_TOP)
    return bytes(b)


def bench_model(a):
    """The bench model: one f32 table of --rows x --dim in --shards."""
    return {"name": MODEL, "shards": a.shards, "priority": 1,
            "tables": ["%s:%d:%d:f32" % (TABLE, a.rows, a.dim)]}


def node_timers(a, wan_mbit=None):
    """Every node's [gossip] and [store]: the node's documented timers
    (--digest-ms) rather than the integration tests' faster ones, and no
    periodic snapshot (it would fork and write the whole table in the
    middle of a measurement; a rollback starts one itself).  wan_mbit,
    when given, is gossip.wan_mbit."""
    extra = {"gossip": {"digest_interval_ms": a.digest_ms,
                        "full_interval_ms": max(5000, a.digest_ms),
                        "pull_timeout_ms": 2000},
             "store": {"snapshot_interval_s": 0}}
    if wan_mbit is not None:
        extra["gossip"]["wan_mbit"] = wan_mbit
    return extra


def publish_retry(fp, conn, frame_):
    """Send frame_ (a prebuilt (req id, PUBLISH frame)) on conn and wait
    for its ack; a BUSY answer is retried after the node's hint.  Returns
    the version the node assigned."""
    rid, frame = frame_
    while True:
        conn.send_frame(frame)
        try:
            return conn.publish_wait(rid)[0]
        except fp.ProtoError as e:
            if e.code != fp.FR_ERR_BUSY:
                raise
            time.sleep(max(e.retry_after_ms, 1) / 1000.0)


def wait_serving(c, models, timeout=60):
    """Until every node's /status lists every model (registry models
    arrive through a ZooKeeper watch)."""
    end = time.monotonic() + timeout
    while True:
        missing = {}
        for n in c.nodes:
            try:
                have = {m["name"] for m in n.status()["models"]}
            except (OSError, ValueError, KeyError):
                have = set()
            if not set(models) <= have:
                missing[n.id] = sorted(set(models) - have)
        if not missing:
            return
        if time.monotonic() > end:
            raise RuntimeError("models not served after %d s: %r" % (timeout, missing))
        time.sleep(0.1)


class Pollers:
    """A thread per node, each on a connection of its own to that node,
    running self.poll(i) until close().  What a poll looks for is the
    subclass's; it sets its own state before calling this __init__,
    which starts the threads.  errors: what a thread raised (it then
    stops), for the caller to report; lookups: LOOKUPs per node, for the
    subclass to count."""

    def __init__(self, fp, nodes, poll_s, conn_timeout=30.0):
        self.fp = fp
        self.nodes = nodes
        self.poll_s = poll_s
        self.lock = threading.Lock()
        self.stop = False
        self.errors = []
        self.lookups = [0] * len(nodes)
        self.conns = [fp.Conn(n.addr, timeout=conn_timeout) for n in nodes]
        self.threads = [threading.Thread(target=self._thread, args=(i,), daemon=True)
                        for i in range(len(nodes))]
        for t in self.threads:
            t.start()

    def _thread(self, i):
        try:
            self.poll(i)
        except Exception as e:  # reported by the caller
            self.errors.append("poller of node %d: %r" % (self.nodes[i].id, e))

    def poll(self, i):
        raise NotImplementedError

    def close(self):
        self.stop = True
        for t in self.threads:
            t.join(10)
        for c in self.conns:
            c.close()
