"""The builder's fast paths give what their plain definitions give.

Each shortcut (the CRC-64 fold, tar headers built in one piece, seeded bytes without randrange, the
visibility check, the light host generator) is checked against the definition it stands for: the
CRC catalogue's check value and a byte-at-a-time table, tarfile, json, ``random.randrange``, a
path-by-path walk and a full Faker.
"""

from __future__ import annotations

import base64
import io
import json
import random
import stat
import tarfile

import pytest

from fakeroot_builder.layer import Entry, Layer, _file_entry, crc64_iso, ustar_header
from fakeroot_builder.plan import _apply, _changes, _still_visible
from fakeroot_builder.provider import host_generator, new_faker, seeded_bytes

_POLY = 0xD800000000000000  # CRC-64/GO-ISO, reflected


def _crc64_bitwise(data: bytes) -> bytes:
    crc = (1 << 64) - 1
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY if crc & 1 else crc >> 1
    return (crc ^ ((1 << 64) - 1)).to_bytes(8, "big")


def test_crc64_has_the_catalogue_check_value():
    # CRC-64/GO-ISO of "123456789" (reveng's catalogue: check=0xb90956c775a41001)
    assert crc64_iso(b"123456789").hex() == "b90956c775a41001"


@pytest.mark.parametrize("length", [0, 1, 7, 8, 31, 32, 33, 63, 64, 65, 127, 128, 129, 500, 4096, 4097])
def test_crc64_matches_the_bit_by_bit_definition(length):
    rng = random.Random(length)
    for data in (rng.randbytes(length), b"\xff" * length, bytes(length)):
        assert crc64_iso(data) == _crc64_bitwise(data)


@pytest.mark.parametrize("entry", [
    Entry("etc/passwd", "file", 0o644, 0, 0, b"root:x:0:0\n", mtime=1_700_000_000),
    Entry("usr/bin/sudo", "file", 0o4755, 0, 0, b"\x7fELF", mtime=1),
    Entry("var/cache/apt", "dir", 0o755, 101, 65534, mtime=1_600_000_000),
    Entry("bin/sh", "symlink", 0o777, target="/bin/busybox", mtime=5),
    Entry("usr/bin/[[", "hardlink", 0o755, target="usr/bin/test", mtime=5),
    Entry("a/" * 60 + "deep-file", "file", 0o600, 33, 33, b"x", mtime=7),
    Entry("etc/gone", "whiteout", 0o644),
    Entry("etc/ssl", "opaque", 0o755),
])
def test_a_tar_header_says_what_tarfile_reads(entry):
    data = entry.data if entry.kind == "file" else b""
    header = ustar_header(entry, len(data))
    assert len(header) == 512
    blob = header + data + bytes(-len(data) % 512) + bytes(1024)
    info = tarfile.open(fileobj=io.BytesIO(blob)).getmembers()[0]
    assert info.name == entry.tar_name.rstrip("/")
    assert info.mode & 0o7777 == (0o600 if entry.kind == "whiteout" else entry.mode & 0o7777)
    file_types = {"dir": stat.S_IFDIR, "symlink": stat.S_IFLNK}  # kept in the mode field, as Go 1.8 did
    assert stat.S_IFMT(info.mode) == file_types.get(entry.kind, stat.S_IFREG)
    assert (info.uid, info.gid, info.mtime, info.size) == (entry.uid, entry.gid, entry.mtime, len(data))
    assert info.uname == ("root" if entry.uid == 0 else "") and info.gname == ("root" if entry.gid == 0 else "")
    assert info.linkname == entry.target
    kinds = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE}
    assert info.type == kinds.get(entry.kind, tarfile.REGTYPE)


def test_a_header_refuses_what_ustar_cannot_hold():
    with pytest.raises(ValueError, match="link target"):
        ustar_header(Entry("x", "symlink", 0o777, target="t" * 101), 0)
    with pytest.raises(ValueError, match="does not fit"):
        ustar_header(Entry("x", "file", uid=8**7), 0)


@pytest.mark.parametrize("name", ["etc/hosts", 'odd "quoted" \\ name', "caf\u00e9/\u00fcber", "tab\there", ""])
@pytest.mark.parametrize("data", [b"", b"payload"])
def test_a_tar_split_line_is_go_json_of_the_entry(name, data):
    want = {"type": 1, "name": name, **({"size": len(data)} if data else {}),
            "payload": base64.b64encode(crc64_iso(data)).decode() if data else None, "position": 3}
    line = _file_entry(name, data, 3)
    assert line == json.dumps(want, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


@pytest.mark.parametrize("length", [0, 1, 40, 300, 1000])
def test_seeded_bytes_are_randranges_and_leave_the_generator_where_it_would_be(length):
    ours, theirs = random.Random(length), random.Random(length)
    assert seeded_bytes(ours, length) == bytes(theirs.randrange(256) for _ in range(length))
    assert ours.random() == theirs.random()


def test_a_seeded_fakers_binary_is_fakers_own():
    from faker.providers.misc import Provider as Misc

    ours, theirs = new_faker(11), new_faker(11)
    assert ours.binary(length=200) == Misc.binary(theirs.provider("faker.providers.misc"), 200)


def test_the_host_generator_draws_what_a_full_faker_draws():
    light, full = host_generator(99), new_faker(99)
    for _ in range(20):
        assert light.cache_id() == full.cache_id()
        assert light.overlay_link() == full.overlay_link()
        assert light.container_name() == full.container_name()
        assert light.random.getrandbits(128) == full.random.getrandbits(128)


def _still_visible_path_by_path(below, entries):
    gone = {"/" + e.path for e in entries if e.kind == "whiteout"}
    covers = {"/" + e.path for e in entries if e.kind != "dir"}
    return {p for p in below if p not in gone and not any(
        p.startswith(c + "/") for c in covers)}


def test_visibility_matches_a_path_by_path_walk():
    rng = random.Random(5)
    names = ["a", "b", "c", "a b", "a-b"]
    for _ in range(300):
        below = {"/" + "/".join(rng.choice(names) for _ in range(rng.randint(1, 4))) for _ in range(30)}
        if rng.random() < 0.5:  # not always closed under parents
            below |= {p.rpartition("/")[0] for p in below if p.count("/") > 1}
        kinds = ["file", "dir", "symlink", "whiteout", "opaque"]
        entries = {}
        for _ in range(rng.randint(0, 6)):
            path = "/".join(rng.choice(names) for _ in range(rng.randint(1, 3)))
            entries[path] = Entry(path, rng.choice(kinds))
        layer = Layer(tuple(entries.values()))
        assert _still_visible(below, layer.entries) == _still_visible_path_by_path(below, layer.entries)
        own = {"/" + e.path for e in layer.entries if e.kind not in ("whiteout", "opaque")}
        assert _apply(below, layer.entries) == _still_visible_path_by_path(below, layer.entries) | own
        _changes(layer.entries, frozenset(below))  # accepts what the planner passes
