#!/usr/bin/env python3
"""Bad config files and bad CLI input: clear errors, exit codes != 0,
nothing changed."""

import os
import subprocess

import harness as h

chk = h.Checks("test_bad_input", timeout=120)


def freshetd(*args):
    return subprocess.run([h.FRESHETD] + list(args), capture_output=True,
                          text=True, timeout=20)


with h.Cluster(2, name="badinput") as c:
    node = c.nodes[0]
    good = open(node.conf).read()

    cases = [
        ("id = 1", "id = 0", "id"),
        ("id = 1", "id = banana", "id"),
        ("[node]", "[node]\nbogus_key = 1", "bogus_key"),
        ("[node]", "[nodes]\nid = 3\n[node]", "nodes"),
        ("shards = 16", "shards = 0", "shards"),
        ("table = users:4096:16:f32", "table = users:4096:16:f64", "f64"),
        ("table = users:4096:16:f32", "table = users:4096", "table"),
        ("listen = 127.0.0.1:", "listen = 127.0.0.1:99999\n#", "listen"),
    ]
    for i, (old, new, word) in enumerate(cases):
        bad = os.path.join(c.dir, "bad%d.conf" % i)
        text = good.replace(old, new, 1)
        assert text != good, (old, new)
        with open(bad, "w") as f:
            f.write(text)
        p = freshetd("--config", bad, "--check-config")
        chk.ok(p.returncode != 0 and word in (p.stderr + p.stdout),
               "bad config %d (%s) refused, exit %d, message names '%s': %s"
               % (i, new.splitlines()[-1] if "\n" in new else new, p.returncode, word,
                  (p.stderr + p.stdout).strip().splitlines()[-1:]))
        p = freshetd("--config", bad)
        chk.ok(p.returncode != 0 and not os.path.exists(node.data_dir),
               "node with bad config %d did not start and created no data dir" % i)

    p = freshetd("--config", os.path.join(c.dir, "missing.conf"))
    chk.ok(p.returncode != 0 and "missing.conf" in p.stderr, "missing config file named")
    p = freshetd("--config", node.conf, "--node.id=notanumber")
    chk.ok(p.returncode != 0 and "node.id" in p.stderr, "bad override names the key")
    p = freshetd("--config", node.conf, "--check-config")
    chk.ok(p.returncode == 0 and "config OK" in p.stderr,
           "the good config passes --check-config")
    # Its output is the effective config, and loads as one.
    again = os.path.join(c.dir, "effective.conf")
    with open(again, "w") as f:
        f.write(p.stdout)
    p2 = freshetd("--config", again, "--check-config")
    chk.ok(p2.returncode == 0 and p2.stdout == p.stdout,
           "--check-config's output loads as a config and prints the same")
    p = freshetd("--help")
    chk.ok(p.returncode == 0 and "digest_interval_ms" in p.stdout, "--help lists the keys")

    c.start()
    before = c.fingerprint(node)
    bad_inputs = [
        ("1 0.5 0.5\n", "line 1"),                                  # too few values
        ("1 " + "0.1 " * 16 + "\n2 " + "x " * 16 + "\n", "line 2"),  # bad number
        ("1 " + "0.1 " * 16 + "\n\n3.5 " + "0.1 " * 16 + "\n", "line 3"),  # bad id
        ("99999999 " + "0.1 " * 16 + "\n", "99999999"),             # row out of range
    ]
    for text, word in bad_inputs:
        p = h.cli("publish", "--node", node.addr, "--model", "ctr", "--table", "users",
                  input_text=text, check=False)
        chk.ok(p.returncode != 0 and word in p.stderr,
               "bad input refused (exit %d), message names '%s': %s"
               % (p.returncode, word, p.stderr.strip()[:120]))
    for args, word in [
        (["publish", "--node", node.addr, "--model", "nope", "--table", "users"], "nope"),
        (["publish", "--node", node.addr, "--model", "ctr", "--table", "nope"], "nope"),
        (["lookup", "--node", node.addr, "--model", "ctr", "--table", "users",
          "--ids", "1,x"], "x"),
        (["publish", "--node", "127.0.0.1:notaport", "--model", "ctr", "--table", "users"],
         "notaport"),
        (["frobnicate"], "frobnicate"),
    ]:
        p = h.cli(*args, input_text="1 " + "0.1 " * 16 + "\n", check=False)
        chk.ok(p.returncode != 0 and word in p.stderr,
               "freshet %s refused (exit %d): %s" % (args[0], p.returncode,
                                                      p.stderr.strip()[:120]))
    chk.ok(c.fingerprint(node) == before, "nothing was published by any bad input")
chk.done()
