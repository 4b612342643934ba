"""fakeroot_builder.bbolt: round trips, bbolt's page layout, real containerd files, bbolt's own check.

The page-layout assertions below read the written bytes with ``struct`` directly (not with the
module's reader), so a reader and writer that agree on a wrong layout cannot pass them. The
real-containerd files in tests/data/bbolt/ (see its README) were read by bbolt itself: their
``.jsonl`` is the Go walk.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import struct
from pathlib import Path

import pytest

import boltcheck
from fakeroot_builder import bbolt
from fakeroot_builder.bbolt import NO_FREELIST, BoltError, Bucket
from fakeroot_builder.errors import DockerLabError, RootError

DATA = Path(__file__).resolve().parent / "data" / "bbolt"
REAL = sorted(DATA.glob("containerd-*/*.db"))
PS = bbolt.PAGE_SIZE
META = struct.Struct("<IIII QQ QQQ Q")


# -- helpers reading the bytes on their own ----------------------------------------------------


def meta(data: bytes, which: int) -> dict:
    f = META.unpack_from(data, which * PS + 16)
    names = "magic version pagesize flags root seq freelist pgid txid checksum".split()
    return dict(zip(names, f))


def page(data: bytes, pgid: int) -> tuple[int, int, int, int]:
    return struct.unpack_from("<QHHI", data, pgid * PS)


def leaf_elements(data: bytes, off: int, count: int) -> list[tuple[int, bytes, bytes]]:
    out = []
    for i in range(count):
        at = off + 16 + 16 * i
        flags, pos, ksize, vsize = struct.unpack_from("<IIII", data, at)
        out.append((flags, data[at + pos : at + pos + ksize], data[at + pos + ksize : at + pos + ksize + vsize]))
    return out


def first_children(data: bytes, pgid: int) -> list[int]:
    """Flags of the pages from ``pgid`` down its first children to a leaf."""
    kinds = []
    while True:
        _, flags, count, _ = page(data, pgid)
        kinds.append(flags)
        if flags != 1:
            return kinds
        pos, ksize, pgid = struct.unpack_from("<IIQ", data, pgid * PS + 16)


def top_bucket_value(data: bytes, name: bytes) -> bytes:
    """The value (bucket header [+ inline page]) of top-level bucket ``name``; root must be a leaf."""
    root = meta(data, 0)["root"]
    _, flags, count, _ = page(data, root)
    assert flags == 2
    for eflags, key, value in leaf_elements(data, root * PS, count):
        if key == name:
            assert eflags == 1
            return value
    raise KeyError(name)


def fnv64a(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) % 2**64
    return h


def sample() -> Bucket:
    return Bucket(
        {
            "v1": {
                "version": b"\x08",
                "moby": Bucket(
                    {
                        "images": {"docker.io/library/nginx:latest": {"target": {"digest": "sha256:" + "a" * 64}}},
                        "snapshots": Bucket({"overlayfs": Bucket({}, sequence=7)}),
                    }
                ),
            }
        }
    )


# -- round trips --------------------------------------------------------------------------------


def test_an_empty_file_round_trips():
    data = bbolt.dumps(Bucket())
    assert bbolt.loads(data) == Bucket()
    assert len(data) == 3 * PS  # two meta pages and the root bucket's empty leaf


def test_nested_buckets_values_and_sequences_round_trip():
    root = sample()
    back = bbolt.loads(bbolt.dumps(root))
    assert back == root
    assert back.bucket("v1", "moby", "snapshots", "overlayfs").sequence == 7
    assert back.bucket(b"v1")[b"version"] == b"\x08"


def test_str_keys_and_values_are_their_utf8_bytes():
    b = Bucket({"ключ": "значение"})
    assert b[b"\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87"] == "значение".encode()
    assert "ключ" in b and b.get("missing") is None


def test_the_same_key_as_str_and_bytes_is_refused():
    with pytest.raises(ValueError, match="given twice"):
        Bucket({"a": b"1", b"a": b"2"})


def test_bucket_path_lookup_names_the_missing_part():
    with pytest.raises(KeyError, match="v1/moby/nothing: no such bucket"):
        sample().bucket("v1", "moby", "nothing")
    with pytest.raises(KeyError, match="v1/version: is a value"):
        sample().bucket("v1", "version")


def test_writing_is_deterministic_and_a_reread_file_rewrites_byte_for_byte():
    data = bbolt.dumps(sample())
    assert bbolt.dumps(sample()) == data
    assert bbolt.dumps(bbolt.loads(data)) == data


def test_buckets_compare_sequence_too():
    assert Bucket({"a": b"1"}, sequence=1) != Bucket({"a": b"1"})


# -- the layout bbolt expects -------------------------------------------------------------------


def test_meta_pages_are_valid_and_differ_only_in_txid():
    data = bbolt.dumps(sample(), txid=9)
    m0, m1 = meta(data, 0), meta(data, 1)
    for m, page_id in ((m0, 0), (m1, 1)):
        assert (m["magic"], m["version"], m["pagesize"]) == (0xED0CDAED, 2, 4096)
        assert m["checksum"] == fnv64a(data[page_id * PS + 16 : page_id * PS + 16 + 56])
        assert page(data, page_id)[:2] == (page_id, 0x04)
    assert {m0["txid"], m1["txid"]} == {8, 9} and m1["txid"] == 9  # txid 9 lives on page 9 % 2
    assert m0["root"] == m1["root"] and m0["pgid"] == m1["pgid"] == len(data) // PS
    assert m0["freelist"] == NO_FREELIST


def test_an_empty_freelist_page_when_asked():
    data = bbolt.dumps(sample(), freelist=True)
    fl = meta(data, 0)["freelist"]
    assert fl == meta(data, 0)["pgid"] - 1  # allocated last, as bbolt's commit does
    assert page(data, fl) == (fl, 0x10, 0, 0)
    assert bbolt.loads(data) == sample()


def test_a_big_value_takes_overflow_pages():
    blob = bytes(range(256)) * 100  # 25600 bytes
    data = bbolt.dumps(Bucket({"b": {"blob": blob, "small": b"x"}}))
    root = struct.unpack_from("<Q", top_bucket_value(data, b"b"))[0]
    assert root != 0  # too big to be inline
    pid, flags, count, overflow = page(data, root)
    assert (pid, flags, count) == (root, 2, 2)
    assert overflow == -(-(16 + 2 * 16 + 4 + len(blob) + 5 + 1) // PS) - 1 == 6
    assert bbolt.loads(data).bucket("b")["blob"] == blob


def test_many_keys_make_branch_pages_several_levels_deep():
    keys = {f"moby/{i}/sha256:{i:064x}".encode(): i.to_bytes(4, "big") * 8 for i in range(20000)}
    root = Bucket({"snapshots": Bucket(keys, sequence=20000)})
    data = bbolt.dumps(root)
    top = struct.unpack_from("<Q", top_bucket_value(data, b"snapshots"))[0]
    # ~1300 leaves of ~15 elements, ~65 branch pages of ~20 keys, 4 of those, the root
    assert first_children(data, top) == [1, 1, 1, 2]
    assert bbolt.loads(data) == root
    # bbolt cuts a node bigger than a page at half a page (its default fill percent), so
    # every leaf but the last holds what fits in 2048 bytes: 15 elements of 130 bytes here.
    leaves = [page(data, p)[2] for p in range(2, len(data) // PS) if page(data, p)[1] == 2]
    *full, last, root_leaf = leaves  # the root bucket's leaf is written last
    assert set(full[1000:]) == {(2048 - 16) // (16 + 82 + 32)}
    assert root_leaf == 1 and sum(full) + last == 20000 and 15 <= last < 4096 // 130


def test_small_buckets_are_inline_big_ones_and_parents_are_not():
    elem = 16 + 1 + 4
    fits = {bytes([1 + i]): b"vvvv" for i in range((1024 - 16) // elem)}  # exactly <= 1024
    too_big = {**fits, b"\xff": b"vvvv"}
    data = bbolt.dumps(Bucket({"a": fits, "b": too_big, "c": {"child": {}}, "d": {}}))
    hdr = struct.Struct("<QQ")
    a, b, c, d = (top_bucket_value(data, k) for k in (b"a", b"b", b"c", b"d"))
    assert hdr.unpack_from(a)[0] == 0 and len(a) == 16 + 16 + len(fits) * elem
    assert struct.unpack_from("<QHHI", a, 16) == (0, 2, len(fits), 0)
    assert hdr.unpack_from(b)[0] != 0
    assert hdr.unpack_from(c)[0] != 0  # holds a bucket: never inline
    assert d == hdr.pack(0, 0) + struct.pack("<QHHI", 0, 2, 0, 0)  # an empty bucket is 32 bytes
    assert bbolt.loads(data).bucket("c", "child") == Bucket()


def test_inline_bucket_keeps_its_sequence():
    data = bbolt.dumps(Bucket({"s": Bucket({"k": b"v"}, sequence=41)}))
    assert struct.unpack_from("<QQ", top_bucket_value(data, b"s")) == (0, 41)


def test_write_sets_the_mode_and_replaces_atomically(tmp_path: Path):
    target = tmp_path / "meta.db"
    target.write_bytes(b"old")
    bbolt.write(target, sample(), mode=0o644)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert bbolt.read(target) == sample()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meta.db"]


@pytest.mark.parametrize(
    ("root", "message"),
    [
        (Bucket({"top": b"value"}), "top-level key 'top' holds a value"),
        (Bucket({"b": {b"": b"v"}}), "key 'b/': length 0"),
        (Bucket({"b": {b"k" * 32769: b"v"}}), "length 32769"),
    ],
)
def test_what_bbolt_cannot_hold_is_refused(root: Bucket, message: str):
    with pytest.raises(ValueError, match=message):
        bbolt.dumps(root)


def test_values_must_be_bytes_or_str():
    with pytest.raises(TypeError, match="must be bytes or str, not int"):
        Bucket({"a": 1})


# -- malformed files ----------------------------------------------------------------------------


def corrupt(data: bytes, offset: int, raw: bytes) -> bytes:
    return data[:offset] + raw + data[offset + len(raw) :]


def resum(data: bytearray, which: int) -> bytes:
    start = which * PS + 16
    struct.pack_into("<Q", data, start + 56, fnv64a(data[start : start + 56]))
    return bytes(data)


def with_meta(data: bytes, **fields) -> bytes:
    """``data`` with meta fields changed on both meta pages, checksums recomputed."""
    out = bytearray(data)
    names = "magic version pagesize flags root seq freelist pgid txid".split()
    for which in (0, 1):
        m = meta(data, which)
        m.update(fields)
        META.pack_into(out, which * PS + 16, *(m[n] for n in names), 0)
        resum(out, which)
    return bytes(out)


GOOD = bbolt.dumps(sample())
ROOT = meta(GOOD, 0)["root"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "meta page 0: file too short"),
        (b"\0" * 8192, r"magic 0x0, not 0xed0cdaed \(not a bbolt file\)"),
        (with_meta(GOOD, version=1), "file format version 1, not 2"),
        (corrupt(corrupt(GOOD, 16 + 20, b"\1"), PS + 16 + 20, b"\1"), "meta page 1: checksum"),
        (GOOD[: 3 * PS], r"truncated: 12288 bytes, but the meta page's high-water mark is page \d+"),
        (with_meta(GOOD, root=50), "root bucket page 50 outside pages"),
        (with_meta(GOOD, pagesize=1000), "implausible page size 1000"),
        (with_meta(GOOD, freelist=1), "freelist page 1 outside pages"),
        (corrupt(GOOD, ROOT * PS, struct.pack("<Q", 99)), f"bucket \\(root\\): page {ROOT} says it is page 99"),
        (corrupt(GOOD, ROOT * PS + 8, b"\x10"), f"page {ROOT} has flags 0x10, not a branch or leaf"),
        (corrupt(GOOD, ROOT * PS + 10, b"\xff\xff"), "65535 elements do not fit in the page"),
        (corrupt(GOOD, ROOT * PS + 12, b"\xff"), "overflows 255 pages past the high-water mark"),
        (corrupt(GOOD, ROOT * PS + 16 + 8, b"\xff\xff\x00\x00"), "element 0: key/value outside the page"),
        (corrupt(GOOD, ROOT * PS + 16, b"\x04"), "element 0: unknown leaf flags 0x4"),
    ],
)
def test_a_malformed_file_raises_bolterror_naming_the_problem(data: bytes, message: str):
    with pytest.raises(BoltError, match=message):
        bbolt.loads(data)


def test_a_bucket_page_referenced_twice_is_reported():
    root = Bucket({"a": {"k": b"x" * 2000}, "b": {"k": b"y" * 2000}})
    data = bytearray(bbolt.dumps(root))
    rp = meta(data, 0)["root"]
    (_, _, a), (_, _, b) = leaf_elements(bytes(data), rp * PS, 2)
    a_root = struct.unpack_from("<Q", a)[0]
    # point bucket b at bucket a's page
    at = bytes(data).index(b, rp * PS)
    struct.pack_into("<Q", data, at, a_root)
    with pytest.raises(BoltError, match=f"bucket b: page {a_root} is referenced twice \\(also by bucket a\\)"):
        bbolt.loads(bytes(data))


def test_keys_out_of_order_are_reported():
    data = bbolt.dumps(Bucket({"b": {"k1": b"1" * 1500, "k2": b"2"}}))
    fixed = data.replace(b"k2", b"k0")
    with pytest.raises(BoltError, match="bucket b, page \\d+ element 1: key 'k0' out of order"):
        bbolt.loads(fixed)


def test_a_bad_inline_bucket_is_reported():
    data = bbolt.dumps(Bucket({"s": {"k": b"v"}}))
    value = top_bucket_value(data, b"s")
    bad = data.replace(value, value[:16] + struct.pack("<QHHI", 0, 1, 1, 0) + value[32:])
    with pytest.raises(BoltError, match="bucket s: inline bucket page has flags 0x1, not a leaf"):
        bbolt.loads(bad)


def test_one_bad_meta_page_falls_back_to_the_other_as_bbolt_does():
    data = bbolt.dumps(sample(), txid=5)  # the newest meta (txid 5) is page 1
    broken = corrupt(data, PS + 16 + 40, b"\x07")  # its pgid field, checksum now wrong
    assert bbolt.loads(broken) == sample()


def test_read_names_the_file(tmp_path: Path):
    bad = tmp_path / "meta.db"
    bad.write_bytes(b"\0" * 8192)
    with pytest.raises(BoltError) as info:
        bbolt.read(bad)
    assert info.value.path == str(bad) and str(info.value).startswith(f"{bad}: no valid meta page")
    assert isinstance(info.value, RootError) and isinstance(info.value, DockerLabError)
    with pytest.raises(BoltError, match="no such file"):
        bbolt.read(tmp_path / "absent.db")
    with pytest.raises(BoltError, match="is a directory"):
        bbolt.read(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_an_unreadable_file_says_to_use_sudo(tmp_path: Path):
    bad = tmp_path / "meta.db"
    bbolt.write(bad, sample(), mode=0)
    with pytest.raises(BoltError, match="permission denied .*sudo"):
        bbolt.read(bad)


# -- files real containerd wrote ----------------------------------------------------------------


def go_walk(path: Path) -> boltcheck.Walk:
    lines = [json.loads(x) for x in Path(f"{path}.jsonl").read_text().splitlines()]
    return boltcheck.Walk(lines[0], lines[1:], [])


def test_the_real_containerd_files_are_all_here():
    assert [p.relative_to(DATA).as_posix() for p in REAL] == [
        "containerd-1.6/meta.db",
        "containerd-1.6/metadata.db",
        "containerd-2/meta.db",
        "containerd-2/metadata.db",
    ]


@pytest.mark.parametrize("path", REAL, ids=lambda p: p.relative_to(DATA).as_posix())
def test_a_real_containerd_file_reads_back_key_for_key(path: Path):
    walk = go_walk(path)
    assert walk.summary["check"] == "ok"
    root = bbolt.read(path)
    assert boltcheck.flatten(root) == walk.items
    assert len(walk.items) > 20


@pytest.mark.parametrize("path", REAL, ids=lambda p: p.relative_to(DATA).as_posix())
def test_a_real_containerd_file_survives_our_rewrite(path: Path):
    root = bbolt.read(path)
    assert bbolt.loads(bbolt.dumps(root)) == root


def test_real_files_hold_what_the_format_page_says():
    v2 = bbolt.read(DATA / "containerd-2" / "meta.db")
    v16 = bbolt.read(DATA / "containerd-1.6" / "meta.db")
    assert v2.bucket("v1")["version"] == b"\x08" and v16.bucket("v1")["version"] == b"\x06"
    snaps = bbolt.read(DATA / "containerd-2" / "metadata.db").bucket("v1", "snapshots")
    ids = sorted(s["id"][0] for s in snaps.items.values())
    assert snaps.sequence == max(ids)  # the next snapshot gets sequence + 1
    meta2 = (DATA / "containerd-2" / "meta.db").read_bytes()
    assert meta(meta2, 0)["freelist"] == NO_FREELIST  # 2.x: no freelist in meta.db ...
    assert meta(meta2, 1)["freelist"] == NO_FREELIST
    md2 = (DATA / "containerd-2" / "metadata.db").read_bytes()
    assert meta(md2, 0)["freelist"] != NO_FREELIST  # ... but the snapshotter's db keeps one


# -- bbolt's own check (Go) ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def go_check() -> boltcheck.BoltCheck:
    reason = boltcheck.unavailable()
    if reason:
        if boltcheck.on_ci():
            pytest.fail(f"CI is set but bbolt's check cannot be built: {reason}")
        pytest.skip(reason)
    return boltcheck.build()


def big_root() -> Bucket:
    return Bucket(
        {
            "v1": {
                "snapshots": Bucket(
                    {f"moby/{i}/sha256:{i:064x}": {"id": bytes([i % 128]), "kind": b"\x03"} for i in range(3000)},
                    sequence=3000,
                ),
                "blobs": {f"{i:04d}": bytes([i % 256]) * (i * 37) for i in range(300)},
                "inline": Bucket({"k": b"v"}, sequence=5),
                "empty": {},
            },
            "v2": Bucket({}, sequence=12),
        }
    )


@pytest.mark.parametrize("freelist", [False, True], ids=["no-freelist", "freelist"])
@pytest.mark.parametrize("make", [sample, big_root, Bucket], ids=["sample", "big", "empty"])
def test_bbolt_accepts_what_we_write_and_sees_the_same_items(go_check, tmp_path: Path, make, freelist: bool):
    root = make()
    path = tmp_path / "x.db"
    bbolt.write(path, root, freelist=freelist)
    walk = go_check.run(path)
    assert walk.summary["check"] == "ok"
    assert walk.summary["freepages"] == 0  # every page we allocate is used
    assert walk.items == boltcheck.flatten(root)


def test_bbolt_can_write_to_our_file_and_takes_the_next_sequence(go_check, tmp_path: Path):
    path = tmp_path / "x.db"
    bbolt.write(path, big_root())
    walk = go_check.run(path, "-mutate", "-nextseq", "v1/snapshots")
    assert walk.extra == [{"nextseq": 3001}]
    after = bbolt.read(path)  # and we read what bbolt wrote, freelist and all
    assert after.bucket("v1", "snapshots").sequence == 3001
    assert "boltcheck-probe" not in after
    assert after.bucket("v1", "blobs") == big_root().bucket("v1", "blobs")


@pytest.mark.parametrize("path", REAL, ids=lambda p: p.relative_to(DATA).as_posix())
def test_bbolt_accepts_our_rewrite_of_a_real_file(go_check, tmp_path: Path, path: Path):
    ours = tmp_path / path.name
    bbolt.write(ours, bbolt.read(path))
    assert go_check.run(ours).items == go_walk(path).items
    copy = tmp_path / "real.db"
    shutil.copy(path, copy)
    assert go_check.run(copy).items == go_walk(path).items  # the committed walk is still bbolt's


def test_a_branch_page_pointing_at_itself_is_reported():
    data = bytearray(bbolt.dumps(Bucket({"s": {f"k{i:05d}": b"v" * 40 for i in range(2000)}})))
    top = struct.unpack_from("<Q", top_bucket_value(bytes(data), b"s"))[0]
    assert page(bytes(data), top)[1] == 1  # a branch
    struct.pack_into("<Q", data, top * PS + 16 + 8, top)  # its first child: itself
    with pytest.raises(BoltError, match=f"bucket s: page {top} is referenced twice \\(also by bucket s\\)"):
        bbolt.loads(bytes(data))


def test_random_corruption_raises_bolterror_and_nothing_else():
    import random

    rng = random.Random(10)
    seeds = [
        bbolt.dumps(bbolt.read(REAL[0])),
        bbolt.dumps(Bucket({"a": {f"k{i:04d}": b"v" * (i % 50) for i in range(800)}, "b": {"x": b"y", "n": {}}})),
    ]
    outcomes = {"read": 0, "BoltError": 0}
    for _ in range(500):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):  # page headers, elements and the first keys
            at = rng.randrange(2, len(data) // PS) * PS + rng.randrange(200)
            data[at] ^= 1 << rng.randrange(8)
        try:
            assert isinstance(bbolt.loads(bytes(data)), Bucket)
            outcomes["read"] += 1
        except BoltError:
            outcomes["BoltError"] += 1
    assert outcomes["BoltError"] > 150 and outcomes["read"] > 30


@pytest.mark.parametrize(("seed", "images"), [(2023, None), (7, ["nginx:latest", "alpine:3.19"])], ids=["canonical", "small"])
def test_bbolt_accepts_the_databases_the_containerd_store_builder_writes(go_check, tmp_path: Path, seed, images):
    from fakeroot_builder.cache import cached_root

    built = cached_root(seed=seed, images=images, store="containerd")
    ct = built.truth.containerd
    for rel, bucket, sequence in (
        ("io.containerd.metadata.v1.bolt/meta.db", "v1/moby/snapshots/overlayfs", ct.meta_sequence),
        ("io.containerd.snapshotter.v1.overlayfs/metadata.db", "v1/snapshots", ct.snapshot_sequence),
    ):
        copy = tmp_path / rel.rsplit("/", 1)[1]
        shutil.copy(built.path / rel, copy)
        walk = go_check.run(copy, "-mutate", "-nextseq", bucket)
        assert walk.summary["check"] == "ok" and walk.summary["freepages"] == 0, rel
        assert walk.items == boltcheck.flatten(bbolt.read(built.path / rel)), rel
        assert walk.extra == [{"nextseq": sequence + 1}], rel
