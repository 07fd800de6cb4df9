"""frames.py — just enough of freshet's frame envelope (docs/wire.md §1) for
tests to build valid frames and to spoil them on purpose.  The node side is
the real C codec; this is the test's own independent reading of the spec."""

import struct

import xxhash

MAGIC = 0x48535246
HDR = struct.Struct("<IHHII Q")   # magic, version, type, length, reserved, checksum
HDR_BYTES = 24


def checksum(hdr16, payload):
    seed = xxhash.xxh3_64_intdigest(hdr16)
    return xxhash.xxh3_64_intdigest(payload, seed=seed)


def frame(ftype, payload, version=1):
    length = HDR_BYTES + len(payload)
    hdr16 = struct.pack("<IHHII", MAGIC, version, ftype, length, 0)
    return hdr16 + struct.pack("<Q", checksum(hdr16, payload)) + payload


def parse_header(b):
    magic, version, ftype, length, reserved, csum = HDR.unpack_from(b, 0)
    return {"magic": magic, "version": version, "type": ftype,
            "length": length, "reserved": reserved, "checksum": csum}


def pad8(b):
    return b + b"\0" * (-len(b) % 8)
