"""Read and write bbolt files: containerd's ``meta.db`` and the snapshotter's ``metadata.db``.

bbolt (go.etcd.io/bbolt, file format version 2) is a copy-on-write B+tree in fixed-size pages:

    page 0, 1   meta pages: magic 0xED0CDAED, version 2, page size, the root bucket
                (root pgid + sequence), freelist pgid, high-water mark, txid, FNV-64a checksum.
                bbolt uses the valid one with the higher txid.
    freelist    the ids of free pages; containerd 2.x syncs none (freelist pgid = 2**64-1) and
                bbolt then rebuilds it on open by walking the tree.
    branch      16-byte elements (pos, ksize, child pgid), keys after the elements.
    leaf        16-byte elements (flags, pos, ksize, vsize), key and value after the elements;
                flag 1 marks a nested bucket, whose value is its 16-byte header
                (root pgid, sequence) followed, for an inline bucket (root pgid 0), by a whole
                leaf page.
    overflow    a node bigger than a page takes ``overflow`` more pages after its first.

:func:`loads`/:func:`read` return the whole file as a tree of :class:`Bucket` and check it
as they go; :func:`dumps`/:func:`write` lay out a whole new file the way bbolt itself would
after inserting the keys in order (same split threshold, same inlining rule), with valid
checksums and the buckets' sequence counters. No incremental updates: containerd does those.

Standard library only, so the grading sandbox can hand it to student code.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path

from .errors import BoltError

__all__ = [
    "BoltError",
    "Bucket",
    "MAGIC",
    "NO_FREELIST",
    "PAGE_SIZE",
    "VERSION",
    "dumps",
    "loads",
    "read",
    "write",
]

PAGE_SIZE = 4096
MAGIC = 0xED0CDAED
VERSION = 2
#: The freelist pgid of a file whose freelist is not synced to disk (what containerd 2.x writes).
NO_FREELIST = 0xFFFF_FFFF_FFFF_FFFF

_BRANCH, _LEAF, _META, _FREELIST = 0x01, 0x02, 0x04, 0x10
_BUCKET_LEAF = 0x01
_MAX_KEY = 32768
_MAX_VALUE = (1 << 31) - 2
_MIN_KEYS_PER_PAGE = 2
_FILL_PERCENT = 0.5  # bbolt's DefaultFillPercent; containerd does not change it
_MAX_DEPTH = 64

_PAGE_HDR = struct.Struct("<QHHI")  # id, flags, count, overflow
_BRANCH_ELEM = struct.Struct("<IIQ")  # pos, ksize, pgid
_LEAF_ELEM = struct.Struct("<IIII")  # flags, pos, ksize, vsize
_BUCKET_HDR = struct.Struct("<QQ")  # root pgid, sequence
_META_FIELDS = struct.Struct("<IIII QQ QQQ Q")  # magic, version, pagesize, flags, root, seq, freelist, pgid, txid, checksum
_HDR = _PAGE_HDR.size  # 16
_ELEM = 16
_META_SUMMED = _META_FIELDS.size - 8  # the checksum covers every field before it


def _fnv64a(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFF_FFFF_FFFF_FFFF
    return h


def _as_bytes(value: object, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"bbolt {what} must be bytes or str, not {type(value).__name__}: {value!r}")


class Bucket:
    """A bbolt bucket: keys (bytes) to values (bytes) or nested Buckets, plus its sequence counter.

    Keys and values given as ``str`` are stored as their UTF-8 bytes; a plain mapping given as
    a value becomes a nested Bucket with sequence 0. ``sequence`` is the counter bbolt's
    ``NextSequence`` increments (containerd takes snapshot ids and names from it).
    """

    __slots__ = ("items", "sequence")

    def __init__(self, items: Mapping | None = None, sequence: int = 0) -> None:
        if not isinstance(sequence, int) or not 0 <= sequence < 1 << 64:
            raise ValueError(f"bucket sequence must be an integer in [0, 2**64), not {sequence!r}")
        self.sequence = sequence
        self.items: dict[bytes, bytes | Bucket] = {}
        for key, value in (items or {}).items():
            k = _as_bytes(key, "key")
            if k in self.items:
                raise ValueError(f"bucket key {k!r} given twice (as str and as bytes)")
            self[k] = value

    def __setitem__(self, key: bytes | str, value: object) -> None:
        if isinstance(value, Bucket):
            pass
        elif isinstance(value, Mapping):
            value = Bucket(value)
        else:
            value = _as_bytes(value, "value")
        self.items[_as_bytes(key, "key")] = value

    def __getitem__(self, key: bytes | str) -> bytes | Bucket:
        return self.items[_as_bytes(key, "key")]

    def __contains__(self, key: object) -> bool:
        try:
            return _as_bytes(key, "key") in self.items
        except TypeError:
            return False

    def __iter__(self) -> Iterator[bytes]:
        """The keys in bbolt's order (sorted by their bytes)."""
        return iter(sorted(self.items))

    def __len__(self) -> int:
        return len(self.items)

    def get(self, key: bytes | str, default: object = None) -> object:
        return self.items.get(_as_bytes(key, "key"), default)

    def bucket(self, *path: bytes | str) -> Bucket:
        """The nested bucket at ``path`` (``b.bucket("v1", "moby", "images")``)."""
        node = self
        for depth, key in enumerate(path):
            value = node.items.get(_as_bytes(key, "key"))
            if not isinstance(value, Bucket):
                where = "/".join(_show(k) for k in path[: depth + 1])
                problem = "is a value, not a bucket" if value is not None else "no such bucket"
                raise KeyError(f"{where}: {problem}")
            node = value
        return node

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Bucket):
            return NotImplemented
        return self.sequence == other.sequence and self.items == other.items

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        inner = ", ".join(f"{k!r}: {v!r}" for k, v in sorted(self.items.items()))
        seq = f", sequence={self.sequence}" if self.sequence else ""
        return f"Bucket({{{inner}}}{seq})"


def _show(key: bytes | str) -> str:
    if isinstance(key, str):
        return key
    try:
        text = key.decode("utf-8")
    except UnicodeDecodeError:
        return "0x" + key.hex()
    return text if text.isprintable() else "0x" + key.hex()


# --------------------------------------------------------------------------------------- read


class _Reader:
    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self.data = memoryview(data).cast("B")
        self.seen: dict[int, tuple[bytes, ...]] = {}
        meta = self._pick_meta()
        self.page_size, self.root_pgid, self.root_seq, self.freelist, self.hwm, self.txid = meta
        if len(self.data) < self.hwm * self.page_size:
            raise BoltError(
                f"truncated: {len(self.data)} bytes, but the meta page's high-water mark is page "
                f"{self.hwm} ({self.hwm * self.page_size} bytes)"
            )
        if self.freelist != NO_FREELIST and not 2 <= self.freelist < self.hwm:
            raise BoltError(f"meta page: freelist page {self.freelist} outside pages 2..{self.hwm - 1}")

    def _meta_at(self, offset: int, which: int) -> tuple:
        if len(self.data) < offset + _HDR + _META_FIELDS.size:
            raise BoltError(f"meta page {which}: file too short ({len(self.data)} bytes) to hold it")
        _, flags, _, _ = _PAGE_HDR.unpack_from(self.data, offset)
        fields = _META_FIELDS.unpack_from(self.data, offset + _HDR)
        magic, version, page_size, _, root, seq, freelist, hwm, txid, checksum = fields
        if magic != MAGIC:
            raise BoltError(f"meta page {which}: magic {magic:#x}, not {MAGIC:#x} (not a bbolt file)")
        if version != VERSION:
            raise BoltError(f"meta page {which}: file format version {version}, not {VERSION}")
        start = offset + _HDR
        summed = _fnv64a(bytes(self.data[start : start + _META_SUMMED]))
        if checksum != summed:  # bbolt accepts 0 too; we do not: real files always carry one
            raise BoltError(f"meta page {which}: checksum {checksum:#018x}, computed {summed:#018x}")
        if not flags & _META:
            raise BoltError(f"meta page {which}: page flags {flags:#x} lack the meta flag")
        if page_size < 512 or page_size > 1 << 16 or page_size & (page_size - 1):
            raise BoltError(f"meta page {which}: implausible page size {page_size}")
        if not 2 <= root < hwm:
            raise BoltError(f"meta page {which}: root bucket page {root} outside pages 2..{hwm - 1}")
        return page_size, root, seq, freelist, hwm, txid

    def _pick_meta(self) -> tuple:
        errors = []
        metas = []
        try:
            metas.append(self._meta_at(0, 0))
        except BoltError as exc:
            errors.append(str(exc))
        # bbolt finds meta page 1 one page further on; with meta 0 unreadable it assumes 4 KiB.
        second = metas[0][0] if metas else PAGE_SIZE
        try:
            metas.append(self._meta_at(second, 1))
        except BoltError as exc:
            errors.append(str(exc))
        if not metas:
            raise BoltError("no valid meta page: " + "; ".join(errors))
        return max(metas, key=lambda m: m[5])

    def page(self, pgid: int, path: tuple[bytes, ...]) -> tuple[int, int, int, int]:
        """Check branch or leaf page ``pgid`` of bucket ``path``; return (offset, flags, count, end)."""
        if not 2 <= pgid < self.hwm:
            raise BoltError(f"{_where(path)}: page {pgid} is outside the data pages 2..{self.hwm - 1}")
        off = pgid * self.page_size
        pid, flags, count, overflow = _PAGE_HDR.unpack_from(self.data, off)
        if pid != pgid:
            raise BoltError(f"{_where(path)}: page {pgid} says it is page {pid}")
        if flags not in (_BRANCH, _LEAF):
            raise BoltError(f"{_where(path)}: page {pgid} has flags {flags:#x}, not a branch or leaf page")
        if pgid + overflow >= self.hwm:
            raise BoltError(f"{_where(path)}: page {pgid} overflows {overflow} pages past the high-water mark")
        for i in range(pgid, pgid + overflow + 1):
            if i in self.seen:
                raise BoltError(
                    f"{_where(path)}: page {i} is referenced twice (also by {_where(self.seen[i])})"
                )
            self.seen[i] = path
        return off, flags, count, off + (overflow + 1) * self.page_size

    def bucket(self, root: int, sequence: int, path: tuple[bytes, ...]) -> Bucket:
        out = Bucket(sequence=sequence)
        self._walk(root, path, out.items, [None], 0)
        return out

    def _walk(self, pgid: int, path: tuple[bytes, ...], items: dict, last: list, depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise BoltError(f"{_where(path)}: tree deeper than {_MAX_DEPTH} levels at page {pgid}")
        off, flags, count, end = self.page(pgid, path)
        if flags == _LEAF:
            self._leaf(self.data, off, end, count, path, pgid, items, last)
            return
        if count == 0:
            raise BoltError(f"{_where(path)}: branch page {pgid} has no elements")
        if off + _HDR + count * _ELEM > end:
            raise BoltError(f"{_where(path)}: page {pgid}: {count} elements do not fit in the page")
        for i in range(count):
            at = off + _HDR + i * _ELEM
            pos, ksize, child = _BRANCH_ELEM.unpack_from(self.data, at)
            if at + pos + ksize > end or ksize == 0:
                raise BoltError(f"{_where(path)}: page {pgid} element {i}: key outside the page")
            self._walk(child, path, items, last, depth + 1)

    def _leaf(self, buf, off: int, end: int, count: int, path, pgid, items: dict, last: list) -> None:
        """Read a leaf page (``pgid`` None: an inline bucket's) into ``items``."""
        if off + _HDR + count * _ELEM > end:
            raise BoltError(f"{_where(path, pgid)}: {count} elements do not fit in the page")
        unpack = _LEAF_ELEM.unpack_from
        for i in range(count):
            at = off + _HDR + i * _ELEM
            eflags, pos, ksize, vsize = unpack(buf, at)
            k0 = at + pos
            if ksize == 0 or k0 + ksize + vsize > end:
                raise BoltError(f"{_where(path, pgid)} element {i}: key/value outside the page")
            key = bytes(buf[k0 : k0 + ksize])
            if last[0] is not None and key <= last[0]:
                raise BoltError(f"{_where(path, pgid)} element {i}: key {_show(key)!r} out of order")
            last[0] = key
            if eflags == 0:
                items[key] = bytes(buf[k0 + ksize : k0 + ksize + vsize])
            elif eflags == _BUCKET_LEAF:
                items[key] = self._nested(buf[k0 + ksize : k0 + ksize + vsize], path + (key,))
            else:
                raise BoltError(f"{_where(path, pgid)} element {i}: unknown leaf flags {eflags:#x}")

    def _nested(self, value: memoryview, path: tuple[bytes, ...]) -> Bucket:
        if len(path) > _MAX_DEPTH:
            raise BoltError(f"{_where(path)}: buckets nested deeper than {_MAX_DEPTH}")
        if len(value) < _BUCKET_HDR.size:
            raise BoltError(f"{_where(path)}: bucket header is {len(value)} bytes, not 16")
        root, seq = _BUCKET_HDR.unpack_from(value, 0)
        if root != 0:
            return self.bucket(root, seq, path)
        inline = value[_BUCKET_HDR.size :]
        if len(inline) < _HDR:
            raise BoltError(f"{_where(path)}: inline bucket shorter than a page header")
        _, flags, count, _ = _PAGE_HDR.unpack_from(inline, 0)
        if flags != _LEAF:
            raise BoltError(f"{_where(path)}: inline bucket page has flags {flags:#x}, not a leaf")
        out = Bucket(sequence=seq)
        self._leaf(inline, 0, len(inline), count, path, None, out.items, [None])
        if any(isinstance(v, Bucket) for v in out.items.values()):
            raise BoltError(f"{_where(path)}: inline bucket holds a nested bucket")
        return out


def _where(path: tuple[bytes, ...], pgid: int | None = -1) -> str:
    """``bucket v1/moby[, page 7 | (inline)]`` for error messages (built only on error)."""
    name = "bucket " + ("/".join(_show(k) for k in path) or "(root)")
    if pgid is None:
        return name + " (inline)"
    return name if pgid < 0 else f"{name}, page {pgid}"


def loads(data: bytes | bytearray | memoryview) -> Bucket:
    """The root bucket of a bbolt file's bytes (its items are the top-level buckets).

    Raises :class:`BoltError` naming the meta page, page or bucket that is malformed.
    """
    reader = _Reader(data)
    return reader.bucket(reader.root_pgid, reader.root_seq, ())


def read(path: str | os.PathLike) -> Bucket:
    """:func:`loads` of a file; errors name the file (``BoltError.path``)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise BoltError("no such file", path) from None
    except PermissionError:
        raise BoltError("permission denied (the file belongs to root: read it with sudo)", path) from None
    except IsADirectoryError:
        raise BoltError("is a directory, not a bbolt file", path) from None
    try:
        return loads(data)
    except BoltError as exc:
        raise BoltError(exc.problem, path) from None


# -------------------------------------------------------------------------------------- write


class _Writer:
    def __init__(self, page_size: int, first_pgid: int) -> None:
        self.page_size = page_size
        self.next_pgid = first_pgid
        self.pages: list[tuple[int, bytes]] = []

    def _alloc(self, body: bytearray) -> int:
        """Give ``body`` (a page image, header not yet stamped) its page id(s)."""
        pgid = self.next_pgid
        npages = -(-len(body) // self.page_size)
        struct.pack_into("<QHHI", body, 0, pgid, *_PAGE_HDR.unpack_from(body, 0)[1:3], npages - 1)
        self.next_pgid += npages
        self.pages.append((pgid, bytes(body)))
        return pgid

    @staticmethod
    def leaf_page(elems: list[tuple[int, bytes, bytes]]) -> bytearray:
        n = len(elems)
        parts = [_PAGE_HDR.pack(0, _LEAF, n, 0)]
        data: list[bytes] = []
        pos = _ELEM * n  # from element i to its key: the elements after it, then earlier data
        pack = _LEAF_ELEM.pack
        for flags, key, value in elems:
            parts.append(pack(flags, pos, len(key), len(value)))
            data.append(key)
            data.append(value)
            pos += len(key) + len(value) - _ELEM
        parts.extend(data)
        return bytearray(b"".join(parts))

    @staticmethod
    def branch_page(elems: list[tuple[bytes, int]]) -> bytearray:
        n = len(elems)
        parts = [_PAGE_HDR.pack(0, _BRANCH, n, 0)]
        pos = _ELEM * n
        pack = _BRANCH_ELEM.pack
        for key, child in elems:
            parts.append(pack(pos, len(key), child))
            pos += len(key) - _ELEM
        parts.extend(key for key, _ in elems)
        return bytearray(b"".join(parts))

    def _split(self, sizes: list[int]) -> list[tuple[int, int]]:
        """bbolt's node.split: cut a node bigger than a page at half a page (fill percent)."""
        pieces = []
        start, n = 0, len(sizes)
        threshold = int(self.page_size * _FILL_PERCENT)
        while True:
            rest = sizes[start:]
            if len(rest) <= _MIN_KEYS_PER_PAGE * 2 or _HDR + sum(rest) < self.page_size:
                pieces.append((start, n))
                return pieces
            size, index = _HDR, 0
            for i in range(len(rest) - _MIN_KEYS_PER_PAGE):
                index = i
                if i >= _MIN_KEYS_PER_PAGE and size + rest[i] > threshold:
                    break
                size += rest[i]
            pieces.append((start, start + index))
            start += index

    def tree(self, elems: list[tuple[int, bytes, bytes]]) -> int:
        """Write a bucket's leaf elements as leaf and branch pages; return its root pgid."""
        if not elems:
            return self._alloc(self.leaf_page([]))
        level = [
            (elems[a][1], self._alloc(self.leaf_page(elems[a:b])))
            for a, b in self._split([_ELEM + len(k) + len(v) for _, k, v in elems])
        ]
        while len(level) > 1:
            level = [
                (level[a][0], self._alloc(self.branch_page(level[a:b])))
                for a, b in self._split([_ELEM + len(k) for k, _ in level])
            ]
        return level[0][1]

    def elements(self, bucket: Bucket, path: tuple[bytes, ...]) -> list[tuple[int, bytes, bytes]]:
        if len(path) > _MAX_DEPTH:
            raise ValueError(f"buckets nested deeper than {_MAX_DEPTH}")
        elems = []
        for key in sorted(bucket.items):
            value = bucket.items[key]
            if not key or len(key) > _MAX_KEY:
                where = "/".join(_show(k) for k in path + (key,))
                raise ValueError(f"bbolt key {where!r}: length {len(key)} not in 1..{_MAX_KEY}")
            if isinstance(value, Bucket):
                elems.append((_BUCKET_LEAF, key, self.bucket_value(value, path + (key,))))
            elif len(value) > _MAX_VALUE:
                where = "/".join(_show(k) for k in path + (key,))
                raise ValueError(f"bbolt value {where!r}: {len(value)} bytes, more than {_MAX_VALUE}")
            else:
                elems.append((0, key, value))
        return elems

    def bucket_value(self, bucket: Bucket, path: tuple[bytes, ...]) -> bytes:
        """A nested bucket's value: its header, and its page when bbolt would inline it."""
        elems = self.elements(bucket, path)
        size = _HDR + sum(_ELEM + len(k) + len(v) for _, k, v in elems)
        if size <= self.page_size // 4 and not any(f & _BUCKET_LEAF for f, _, _ in elems):
            return _BUCKET_HDR.pack(0, bucket.sequence) + bytes(self.leaf_page(elems))
        return _BUCKET_HDR.pack(self.tree(elems), bucket.sequence)


def _meta_page(page_size, which, root, seq, freelist, hwm, txid) -> bytes:
    page = bytearray(page_size)
    _PAGE_HDR.pack_into(page, 0, which, _META, 0, 0)
    fields = (MAGIC, VERSION, page_size, 0, root, seq, freelist, hwm, txid)
    _META_FIELDS.pack_into(page, _HDR, *fields, 0)
    checksum = _fnv64a(bytes(page[_HDR : _HDR + _META_SUMMED]))
    struct.pack_into("<Q", page, _HDR + _META_SUMMED, checksum)
    return bytes(page)


def dumps(root: Bucket, *, txid: int = 2, freelist: bool = False, page_size: int = PAGE_SIZE) -> bytes:
    """A whole bbolt file holding ``root``'s buckets (its items must all be Buckets).

    ``freelist=False`` writes no freelist page (freelist pgid 2**64-1), as containerd 2.x does;
    ``True`` writes an empty one, as bbolt does without ``NoFreelistSync``. Both meta pages
    are valid: the one for ``txid`` and the one for ``txid - 1`` (same tree), as after a commit.
    """
    if not isinstance(root, Bucket):
        raise TypeError(f"dumps() needs a Bucket, not {type(root).__name__}")
    if txid < 1:
        raise ValueError(f"txid must be at least 1, not {txid}")
    if page_size < 1024 or page_size & (page_size - 1):
        raise ValueError(f"page size must be a power of two of at least 1024, not {page_size}")
    for key, value in root.items.items():
        if not isinstance(value, Bucket):
            raise ValueError(f"top-level key {_show(key)!r} holds a value: bbolt's root holds only buckets")
    writer = _Writer(page_size, 2)
    root_pgid = writer.tree(writer.elements(root, ()))
    free_pgid = NO_FREELIST
    if freelist:
        free_pgid = writer._alloc(bytearray(_PAGE_HDR.pack(0, _FREELIST, 0, 0)))
    hwm = writer.next_pgid
    out = bytearray(hwm * page_size)
    for t in (txid, txid - 1):
        out[(t % 2) * page_size : (t % 2 + 1) * page_size] = _meta_page(
            page_size, t % 2, root_pgid, root.sequence, free_pgid, hwm, t
        )
    for pgid, body in writer.pages:
        out[pgid * page_size : pgid * page_size + len(body)] = body
    return bytes(out)


def write(
    path: str | os.PathLike,
    root: Bucket,
    *,
    mode: int = 0o600,
    txid: int = 2,
    freelist: bool = False,
    page_size: int = PAGE_SIZE,
) -> None:
    """Write :func:`dumps` of ``root`` to ``path`` (created or replaced) with permissions ``mode``.

    The file appears whole or not at all (written beside it, then renamed over it).
    """
    data = dumps(root, txid=txid, freelist=freelist, page_size=page_size)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)  # the umask must not narrow the mode asked for
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
