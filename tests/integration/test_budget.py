#!/usr/bin/env python3
"""node.gpu_budget_mb: a model whose tables do not fit what is left of the
backend budget is refused at registration with an error naming the table,
the bytes needed and the bytes left; what fits is served, and /status and
/metrics report the backend and its bytes."""

import subprocess

import harness as h

chk = h.Checks("test_budget", timeout=120)
SMALL = {"name": "small", "shards": 4, "priority": 1,
         "tables": ["a:4096:32:f32", "b:4096:32:f16"]}      # 512 KiB + 256 KiB
BIG = {"name": "big", "shards": 4, "priority": 1,
       "tables": ["c:16384:32:f32"]}                         # 2 MiB

with h.Cluster(1, models=[SMALL, BIG], name="budget",
               extra={"node": {}}) as c:
    n = c.nodes[0]
    with open(n.conf) as f:
        conf = f.read()
    with open(n.conf, "w") as f:
        f.write(conf.replace("[node]\n", "[node]\ngpu_budget_mb = 1\n", 1))
    p = subprocess.run([h.FRESHETD, "--config", n.conf], capture_output=True,
                       text=True, timeout=60)
    out = p.stdout + p.stderr
    print(out[-1500:])
    chk.ok(p.returncode != 0, "the node refuses to start (exit %d)" % p.returncode)
    chk.ok("model 'big' table 'c': needs 2097152 bytes, 262144 of node.gpu_budget_mb (1 MiB) are left"
           in out, "the error names the table, the bytes needed and the bytes left")

with h.Cluster(1, models=[SMALL], name="budget2") as c:
    n = c.nodes[0]
    with open(n.conf) as f:
        conf = f.read()
    with open(n.conf, "w") as f:
        f.write(conf.replace("[node]\n", "[node]\ngpu_budget_mb = 1\n", 1))
    c.start()
    st = n.status()
    bi = st["backend_info"]
    chk.ok(bi["backend"] == "cpu" and bi["device"] == -1,
           "/status reports backend cpu, no device (%r)" % bi)
    chk.ok(bi["bytes"] == 4096 * 32 * 4 + 4096 * 32 * 2 and bi["budget_bytes"] == 1 << 20,
           "/status reports the backend bytes and the budget (%r)" % bi)
    chk.ok(n.metric_sum("freshet_backend_bytes") == bi["bytes"],
           "/metrics freshet_backend_bytes = %d" % bi["bytes"])
    chk.ok(n.metric_sum("freshet_backend_info", backend="cpu") == 1,
           "/metrics freshet_backend_info{backend=cpu}")
chk.done()
