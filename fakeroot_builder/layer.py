"""A layer as a set of files in memory, and the deterministic tar stream made from it.

One :class:`Layer` is the content of one Dockerfile step. From it come, byte for byte:

- the uncompressed tar whose sha256 is the layer id (DiffID);
- the gzip blob whose sha256 is the compressed digest ``docker pull`` prints;
- the ``tar-split.json.gz`` that lets Docker rebuild that tar from ``diff/``;
- the ``size`` Docker records (sum of ``st_size`` of the non-directories once unpacked).

Headers follow what moby's archive package writes (ustar magic, ``root`` owner names, the file
type bits kept in the mode field as Go 1.8 did), so exported layers look like a daemon's own.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from dataclasses import dataclass, field
from dataclasses import replace as replace_entry
from functools import cached_property
from json.encoder import encode_basestring as _json_string  # what json.dumps(ensure_ascii=False) uses
from typing import Literal

from .formats import WHITEOUT_OPAQUE, WHITEOUT_PREFIX

__all__ = ["Entry", "Kind", "Layer", "crc64_iso", "gzip_bytes", "sha256_digest", "ustar_header"]

Kind = Literal["file", "dir", "symlink", "hardlink", "whiteout", "opaque"]

_BLOCK = 512
_TYPEFLAG = {"file": b"0", "hardlink": b"1", "symlink": b"2", "dir": b"5"}
# Go 1.8's archive/tar kept the file type in the mode field; moby's layers still carry it.
_TYPE_BITS = {"file": 0o100000, "hardlink": 0o100000, "symlink": 0o120000, "dir": 0o040000}
_OWNER_NAMES = {0: b"root"}


def sha256_digest(data: bytes) -> str:
    """``sha256:`` + hex digest of ``data``: how every content-addressed id is spelled."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _crc64_table() -> list[int]:
    poly = 0xD800000000000000  # ISO 3309, reflected, as Go's hash/crc64.ISO
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC64 = _crc64_table()
_ONES64 = (1 << 64) - 1
_BIT_REVERSED = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def crc64_iso(data: bytes) -> bytes:
    """CRC-64/GO-ISO of ``data``, big-endian: the checksum tar-split stores per file.

    Short data goes through the byte table. Longer data is reduced as one polynomial with
    Python's big integers: the ISO polynomial is ``x^64 + Q`` with ``Q = x^4 + x^3 + x + 1``, so
    ``x^(64m) = Q^m = x^(4m) + x^(3m) + x^m + 1`` (m a power of two) and a fold of the high part
    costs four shifts and xors, whatever its length.
    """
    if len(data) < 32:
        crc = _ONES64
        table = _CRC64
        for byte in data:
            crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
        return (crc ^ _ONES64).to_bytes(8, "big")
    # the reflected CRC of data is the plain CRC of its bit-reversed bytes, register reflected
    value = (int.from_bytes(data.translate(_BIT_REVERSED), "big") << 64) ^ (_ONES64 << (8 * len(data)))
    while value >> 64:
        m = 1 << (((value.bit_length() - 1) // 64).bit_length() - 1)
        high = value >> (64 * m)
        value = (value & ((1 << (64 * m)) - 1)) ^ high ^ (high << m) ^ (high << 3 * m) ^ (high << 4 * m)
    register = int.from_bytes(value.to_bytes(8, "big").translate(_BIT_REVERSED), "little")
    return (register ^ _ONES64).to_bytes(8, "big")


@dataclass(frozen=True)
class Entry:
    """One path of a layer as the layer tar carries it (``path`` relative, no slashes around).

    ``kind`` ``whiteout`` deletes ``path`` from the layers below; ``opaque`` marks the directory
    ``path`` as hiding everything the layers below have in it.
    """

    path: str
    kind: Kind = "file"
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    data: bytes = b""
    target: str = ""
    mtime: int = 0

    @property
    def tar_name(self) -> str:
        """The name this entry has inside the tar (whiteouts get their ``.wh.`` form)."""
        if self.kind == "whiteout":
            head, _, base = self.path.rpartition("/")
            return f"{head}/{WHITEOUT_PREFIX}{base}" if head else WHITEOUT_PREFIX + base
        if self.kind == "opaque":
            return f"{self.path}/{WHITEOUT_OPAQUE}"
        return self.path + "/" if self.kind == "dir" else self.path

    def sort_key(self) -> tuple[str, ...]:
        """Parents before children, siblings by name: the order of a directory walk.

        An opaque marker comes right after its directory, before any child, as moby writes it.
        """
        if self.kind == "opaque":
            return (*self.path.split("/"), "")
        return tuple(self.tar_name.rstrip("/").split("/"))


def _split_name(name: str) -> tuple[bytes, bytes]:
    raw = name.encode()
    if len(raw) <= 100:
        return raw, b""
    # ustar: split at a slash into prefix (<=155) and name (<=100)
    for i in range(len(raw) - 1, 0, -1):
        if raw[i : i + 1] == b"/" and i <= 155 and len(raw) - i - 1 <= 100:
            return raw[i + 1 :], raw[:i]
    raise ValueError(f"path too long for a ustar header: {name!r}")


def ustar_header(entry: Entry, size: int) -> bytes:
    """The 512-byte header of ``entry`` as moby's archive writes it (``size`` bytes follow)."""
    kind = "file" if entry.kind in ("whiteout", "opaque") else entry.kind
    if entry.kind == "whiteout":
        mode = 0o600  # what moby's overlay whiteout converter writes
    else:
        mode = entry.mode & 0o7777
    name, prefix = _split_name(entry.tar_name)
    target = entry.target.encode()
    if len(target) > 100:
        raise ValueError(f"link target too long for a ustar header: {entry.target!r}")
    block = b"".join((
        name.ljust(100, b"\0"),
        # mode, uid, gid, size, mtime in octal; the checksum field counts as spaces while summed
        b"%07o\0%07o\0%07o\0%011o\0%011o\0        " % (mode | _TYPE_BITS[kind], entry.uid, entry.gid, size, entry.mtime),
        _TYPEFLAG[kind],
        target.ljust(100, b"\0"),
        b"ustar\x0000",
        _OWNER_NAMES.get(entry.uid, b"").ljust(32, b"\0"),
        _OWNER_NAMES.get(entry.gid, b"").ljust(32, b"\0"),
        b"0000000\x000000000\x00",  # device major and minor
        prefix.ljust(155, b"\0"),
        bytes(12),
    ))
    if len(block) != _BLOCK:
        raise ValueError(f"a number of {entry.path!r} does not fit its ustar header field")
    return b"%s%06o\0 %s" % (block[:148], sum(block), block[156:])


@dataclass(frozen=True)
class Layer:
    """The files one build step adds, changes or deletes; everything else derives from them."""

    entries: tuple[Entry, ...]
    created_by: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        entries = sorted(self.entries, key=Entry.sort_key)
        object.__setattr__(self, "entries", tuple(_hardlinks_after_their_file(entries)))

    @cached_property
    def _stream(self) -> tuple[bytes, bytes]:
        """The tar stream and its tar-split JSON lines, made in one pass."""
        tar = bytearray()
        lines: list[bytes] = []
        pending = b""  # raw bytes tar-split has read but not yet recorded
        for entry in self.entries:
            data = entry.data if entry.kind == "file" else b""
            header = ustar_header(entry, len(data))
            raw = pending + header
            lines.append(_segment(raw, len(lines)))
            lines.append(_file_entry(entry.tar_name, data, len(lines)))
            tar += header + data
            pending = b"\0" * (-len(data) % _BLOCK)
            tar += pending
        end = b"\0" * (2 * _BLOCK)
        tar += end
        lines.append(_segment(pending + end, len(lines)))
        lines.append(_segment(b"", len(lines)))  # tar-split records the (empty) remainder too
        return bytes(tar), b"".join(lines)

    @property
    def tar(self) -> bytes:
        """The uncompressed layer tar."""
        return self._stream[0]

    @property
    def tar_split(self) -> bytes:
        """tar-split's JSON lines for :attr:`tar`, uncompressed."""
        return self._stream[1]

    @cached_property
    def tar_split_gz(self) -> bytes:
        """:attr:`tar_split` gzipped, as ``layerdb/…/tar-split.json.gz`` holds it."""
        return _gzip(self.tar_split)

    @cached_property
    def diff_id(self) -> str:
        """The layer id: sha256 of the uncompressed tar."""
        return sha256_digest(self.tar)

    @cached_property
    def blob(self) -> bytes:
        """The gzip blob a registry serves (deterministic: no name, mtime 0)."""
        return _gzip(self.tar)

    @cached_property
    def compressed_digest(self) -> str:
        """sha256 of :attr:`blob`, the id ``docker pull`` prints 12 hex digits of."""
        return sha256_digest(self.blob)

    @cached_property
    def size(self) -> int:
        """What Docker records in ``layerdb/…/size``: ``st_size`` of every unpacked non-directory.

        Regular files count their bytes, symlinks the length of their target, whiteouts 0, and a
        hardlink's bytes are counted once (by its first name).
        """
        total = 0
        for entry in self.entries:
            if entry.kind == "file":
                total += len(entry.data)
            elif entry.kind == "symlink":
                total += len(entry.target.encode())
        return total


def _hardlinks_after_their_file(entries: list[Entry]) -> list[Entry]:
    """Make the first name of each hard-linked file (in tar order) the one carrying the data.

    A tar writer walking a tree stores the first name it meets as the file and later names as
    links to it; a link must never precede its target.
    """
    files = {e.path: e for e in entries if e.kind == "file"}
    groups: dict[str, list[str]] = {}
    for e in entries:
        if e.kind == "hardlink" and e.target in files:
            groups.setdefault(e.target, [e.target]).append(e.path)
    if not groups:
        return entries
    replace: dict[str, Entry] = {}
    for target, names in groups.items():
        original = files[target]
        first, *others = sorted(names, key=lambda n: tuple(n.split("/")))
        replace[first] = replace_entry(original, path=first)
        for name in others:
            replace[name] = Entry(name, "hardlink", original.mode, original.uid, original.gid,
                                  target=first, mtime=original.mtime)
    return [replace.get(e.path, e) if e.kind in ("file", "hardlink") else e for e in entries]


def _segment(raw: bytes, position: int) -> bytes:
    return b'{"type":2,"payload":"%s","position":%d}\n' % (base64.b64encode(raw), position)


def _file_entry(name: str, data: bytes, position: int) -> bytes:
    # Go's encoding/json of tar-split's storage.Entry: fields in struct order, size omitted
    # when 0, payload null when there is no content to checksum.
    quoted = _json_string(name).encode()
    if data:
        checksum = base64.b64encode(crc64_iso(data))
        return b'{"type":1,"name":%s,"size":%d,"payload":"%s","position":%d}\n' % (
            quoted, len(data), checksum, position)
    return b'{"type":1,"name":%s,"payload":null,"position":%d}\n' % (quoted, position)


def _gzip(data: bytes) -> bytes:
    """gzip with a fixed header (no name, mtime 0, OS unknown) so the bytes depend on data only."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = compressor.compress(data) + compressor.flush()
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    trailer = (zlib.crc32(data) & 0xFFFFFFFF).to_bytes(4, "little") + (len(data) & 0xFFFFFFFF).to_bytes(
        4, "little"
    )
    return header + body + trailer


def gzip_bytes(data: bytes) -> bytes:
    """Deterministic gzip, as used for ``tar-split.json.gz`` and layer blobs."""
    return _gzip(data)

