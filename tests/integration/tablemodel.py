"""A reference model of one f32 table for rollback tests.

It records every acknowledged publish (version, origin, rows, values) and
answers what the table must hold given the rollback directives applied:
each row at its newest write whose version is not revoked by any
directive (revoked: t < version <= r), last-writer-wins by (version,
origin), never-written rows zero.  checksum() is what a node reports in
/status as the table's checksum: XXH3-64 of the whole table's bytes, as 16
hex digits.
"""

import array
import json
import threading

import xxhash


class TableModel:
    def __init__(self, rows, dim):
        self.rows = rows
        self.dim = dim
        self.writes = {}          # row -> list of (version, origin, bytes)
        self.lock = threading.Lock()

    def record(self, version, origin, rows, values):
        """values: f32 bytes, len(rows) * dim floats, row-major."""
        rb = self.dim * 4
        with self.lock:
            for i, r in enumerate(rows):
                self.writes.setdefault(r, []).append(
                    (version, origin, bytes(values[i * rb:(i + 1) * rb])))

    def table_bytes(self, revoked=()):
        rb = self.dim * 4
        out = bytearray(self.rows * rb)
        with self.lock:
            for r, ws in self.writes.items():
                best = None
                for v, o, b in ws:
                    if any(t < v <= rr for t, rr in revoked):
                        continue
                    if best is None or (v, o) > (best[0], best[1]):
                        best = (v, o, b)
                if best:
                    out[r * rb:(r + 1) * rb] = best[2]
        return bytes(out)

    def checksum(self, revoked=()):
        return "%016x" % xxhash.xxh3_64_intdigest(self.table_bytes(revoked))

    def row_values(self, row, revoked=()):
        rb = self.dim * 4
        data = self.table_bytes(revoked)
        return array.array("f", data[row * rb:(row + 1) * rb]).tolist()


def directives(zk_hosts, chroot, cluster, model):
    """[(epoch, t, r)] from ZooKeeper, ascending, malformed ones skipped."""
    from kazoo.client import KazooClient

    kz = KazooClient(hosts=zk_hosts + chroot)
    kz.start(timeout=15)
    try:
        base = "/freshet/%s/models/%s/rollbacks" % (cluster, model)
        out = []
        if not kz.exists(base):
            return out
        for child in kz.get_children(base):
            if not child.startswith("r_") or not child[2:].isdigit():
                continue
            try:
                d = json.loads(kz.get(base + "/" + child)[0].decode())
                out.append((int(child[2:]) + 1, int(d["t"]), int(d["r"])))
            except (ValueError, KeyError, TypeError):
                continue
        return sorted(out)
    finally:
        kz.stop()
        kz.close()
