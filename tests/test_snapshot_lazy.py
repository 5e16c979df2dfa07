"""A loaded snapshot decodes its addresses, sizes, lengths, labels and edge names on first use.

A file whose checksums match but whose packed sections do not decode (written that way on
purpose) still loads; those sections read as empty and ``info()["problems"]`` (and ``refgraph
info``) say why.
"""

import struct
import subprocess
import sys
import zlib

import pytest

import refgraph

LABELS = 9
NAMES = 12


class Holder:
    def __init__(self):
        self.payload = {"key": [1, 2, 3]}


def _varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _deflate(raw):
    c = zlib.compressobj(1, zlib.DEFLATED, -15)
    return c.compress(raw) + c.flush()


def _replace_section(data, tag, raw):
    """The file ``data`` with section ``tag`` replaced by ``raw`` (one chunk), checksums right."""
    magic, version, count = data[:8], *struct.unpack_from("<II", data, 8)
    entries = [struct.unpack_from("<IIIQQ", data, 16 + 28 * i) for i in range(count)]
    at = 16 + 28 * count + 4
    chunks = []
    for t, codec, crc, raw_len, stored_len in entries:
        chunks.append((t, codec, crc, raw_len, data[at : at + stored_len]))
        at += stored_len
    assert at == len(data)
    packed = _deflate(raw)
    out, done = [], False
    for c in chunks:
        if c[0] != tag:
            out.append(c)
        elif not done:
            out.append((tag, 1, zlib.crc32(packed), len(raw), packed))
            done = True
    assert done
    head = bytearray(magic + struct.pack("<II", version, len(out)))
    for t, codec, crc, raw_len, stored in out:
        head += struct.pack("<IIIQQ", t, codec, crc, raw_len, len(stored))
    head += struct.pack("<I", zlib.crc32(head))
    return bytes(head) + b"".join(c[4] for c in out)


@pytest.fixture
def saved(tmp_path):
    keep = [Holder() for _ in range(3)]
    snap = refgraph.snapshot()
    path = tmp_path / "a.rgsnap"
    snap.save(path)
    del keep
    return snap, path


def test_a_loaded_snapshot_answers_like_the_one_saved(saved):
    snap, path = saved
    back = refgraph.load(path)
    # Statistics first (they decode only the sizes), then what needs the rest.
    assert back.typestats() == snap.typestats()
    assert back.info() == snap.info()
    assert back.paths("Holder") == snap.paths("Holder")
    assert "problems" not in back.info()


def test_sections_that_do_not_decode_read_empty_with_a_reason(saved, tmp_path):
    snap, path = saved
    data = path.read_bytes()
    # Labels out of order; an edge name pointing at a text that does not exist.
    bad_labels = _varint(2) + b"".join(_varint(d) + _varint(1) + b"x" for d in (3, 0))
    refs = snap.info()["references"]
    bad_names = _varint(1) + _varint(1) + b"a" + _varint(refs) + b"\x01\x09" + b"\x00" * (refs - 1)
    bad = _replace_section(_replace_section(data, LABELS, bad_labels), NAMES, bad_names)
    out = tmp_path / "bad.rgsnap"
    out.write_bytes(bad)
    back = refgraph.load(out)
    assert back.typestats() == snap.typestats()
    info = back.info()
    assert info["named_references"] == 0
    assert len(info["problems"]) == 2, info["problems"]
    assert "labels: nodes out of order" in info["problems"][0]
    assert "edge name text that does not exist" in info["problems"][1]
    # Queries still answer, without names.
    p = back.paths("Holder")
    assert p.targets == 3 and sum(g.count for g in p.groups) == 3
    assert p == snap.paths("Holder")._replace(groups=p.groups)
    r = subprocess.run(
        [sys.executable, "-m", "refgraph", "info", str(out)], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    assert "problem:" in r.stdout and "labels: nodes out of order" in r.stdout
    # A flipped byte in a packed section is still caught by its checksum, at load.
    flipped = bytearray(bad)
    flipped[-3] ^= 0x10
    out.write_bytes(bytes(flipped))
    with pytest.raises(refgraph.SnapshotError, match="checksum"):
        refgraph.load(out)
