"""Helpers the catalogue's recipes share: history lines, fake binaries, applet links, PEM blocks.

Layer content must depend on the layer's seeded Faker (``ctx.fake``) and nothing else, so every
helper that makes bytes takes that Faker. History lines are static (a :class:`Step` is built once,
at import), so the hex digests they quote come from :func:`static_hex`, not from Faker.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Iterable, Mapping

from faker import Faker

from ..provider import seeded_bytes
from ..recipe import LayerContext, LayerRecipe, Step

__all__ = [
    "GLIBC_LOADER",
    "MUSL_LOADER",
    "add_applets",
    "add_binary",
    "add_hardlinks",
    "add_rootfs_step",
    "copy_step",
    "elf_bytes",
    "nop",
    "pem_block",
    "run",
    "static_hex",
    "workdir",
]

#: The program interpreter glibc executables name (what ``file`` shows as "interpreter").
GLIBC_LOADER = "/lib64/ld-linux-x86-64.so.2"
#: The same for musl (Alpine).
MUSL_LOADER = "/lib/ld-musl-x86_64.so.1"


# -- history lines ---------------------------------------------------------------------------------


def static_hex(label: str, length: int = 64) -> str:
    """A made-up but stable lowercase hex string for ``label``, e.g. the ``<hex>`` of ``file:<hex>``.

    Real Docker hashes the copied file; our files vary with the seed while a history line is fixed,
    so the digest is derived from the label instead (the same label always gives the same hex).
    """
    out = ""
    counter = 0
    while len(out) < length:
        out += hashlib.sha256(f"catalogue:{label}:{counter}".encode()).hexdigest()
        counter += 1
    return out[:length]


def nop(instruction: str) -> Step:
    """A step that changes only the config, as the classic builder records it.

    ``nop('ENV A=1')`` → ``/bin/sh -c #(nop)  ENV A=1`` (two spaces, as in real histories).
    """
    return Step(f"/bin/sh -c #(nop)  {instruction}")


def workdir(path: str) -> Step:
    """``WORKDIR``, which the classic builder records with a single space after ``#(nop)``."""
    return Step(f"/bin/sh -c #(nop) WORKDIR {path}")


def run(command: str, layer: LayerRecipe) -> Step:
    """A ``RUN`` step; ``command`` is written as in the Dockerfile, ``\\``-continued lines and all.

    History records the command with every backslash-newline removed and the indentation kept
    (``set -eux; \\`` + newline + tab + ``apt-get update`` → ``set -eux; \tapt-get update``).
    """
    return Step("/bin/sh -c " + command.replace("\\\n", "").strip(), layer)


def add_rootfs_step(layer: LayerRecipe) -> Step:
    """``ADD rootfs.tar.xz /`` as an official base image's history shows it."""
    return Step(f"/bin/sh -c #(nop) ADD file:{static_hex(layer.name)} in / ", layer)


def copy_step(layer: LayerRecipe, destination: str) -> Step:
    """``COPY <file> <destination>``; the same recipe always gets the same ``file:<hex>``."""
    return Step(f"/bin/sh -c #(nop) COPY file:{static_hex(layer.name)} in {destination} ", layer)


# -- file content ----------------------------------------------------------------------------------

# e_ident (magic, 64-bit, little-endian, ELF v1, SysV ABI, padding), then the ELF64 header fields.
_ELF_HEADER = struct.Struct("<4sBBBBB7xHHIQQQIHHHHHH")
_ET_DYN = 3  # PIE executables and shared objects alike
_EM_X86_64 = 0x3E


def _seeded_bytes(fake: Faker, length: int) -> bytes:
    """``fake.binary(length)`` of a seeded Faker, byte for byte."""
    return seeded_bytes(fake.random, length)


def elf_bytes(
    fake: Faker,
    strings: Iterable[str] = (),
    *,
    size: int | None = None,
    interpreter: str | None = GLIBC_LOADER,
) -> bytes:
    """A small fake x86-64 ELF file: a real ELF header, seeded filler, and ``strings`` inside.

    ``file`` recognises it and ``strings`` shows the interpreter and ``strings`` (put a version
    banner there), which is all a lab needs from a binary. ``size`` defaults to a few hundred bytes.
    """
    size = size or fake.random_int(320, 960)
    entry = 0x1000 + 0x10 * fake.random_int(0x10, 0xFFF)
    header = _ELF_HEADER.pack(
        b"\x7fELF", 2, 1, 1, 0, 0,  # e_ident: class 64, little-endian, version 1, SysV, ABI v0
        _ET_DYN, _EM_X86_64, 1, entry,
        0, 0, 0,  # no program or section header tables: nothing here is meant to run
        _ELF_HEADER.size, 56, 0, 64, 0, 0,
    )
    names = ([interpreter] if interpreter else []) + list(strings)
    text = b"".join(s.encode() + b"\0" for s in names)
    filler = _seeded_bytes(fake, max(size - len(header) - len(text), 64))
    cut = len(filler) // 4
    return header + filler[:cut] + text + filler[cut:]


def add_binary(
    ctx: LayerContext,
    path: str,
    *strings: str,
    size: int | None = None,
    interpreter: str | None = GLIBC_LOADER,
    mode: int = 0o755,
) -> None:
    """Add a fake executable (or shared library) at ``path``; see :func:`elf_bytes`."""
    ctx.file(path, elf_bytes(ctx.fake, strings, size=size, interpreter=interpreter), mode)


def _walk_order(path: str) -> list[str]:
    """The order a directory walk (and so a layer tar) meets paths in: component by component."""
    return path.split("/")


def add_hardlinks(ctx: LayerContext, source: str, names: Iterable[str]) -> None:
    """Give the file ``source`` (already added) more names, as hard links.

    In a layer tar the first name a directory walk meets carries the data and every later one is a
    hard link to it (moby's tar writer remembers the first path it saw per inode). So if one of
    ``names`` sorts before ``source``, the data moves to that name and ``source`` becomes a link.
    """
    entry = next(e for e in ctx.entries() if e.path == source.strip("/"))
    paths = sorted({entry.path, *(n.strip("/") for n in names)}, key=_walk_order)
    first = paths[0]
    if first != entry.path:
        ctx.file(first, entry.data, entry.mode, entry.uid, entry.gid)
    for path in paths[1:]:
        ctx.hardlink(path, first)


def add_applets(
    ctx: LayerContext,
    applets: Mapping[str, Iterable[str]],
    busybox: str = "bin/busybox",
    *,
    hardlink: bool = False,
) -> None:
    """Add BusyBox applets: ``{directory: names}``, each a link to ``busybox`` (already added).

    Alpine installs them as absolute symlinks (``/bin/ls -> /bin/busybox``); the ``busybox`` image
    as hard links to the one binary (``hardlink=True``, see :func:`add_hardlinks`).
    """
    paths = [f"{directory}/{name}" for directory, names in applets.items() for name in names]
    paths = [p for p in paths if p != busybox]
    if hardlink:
        add_hardlinks(ctx, busybox, paths)
        return
    for path in paths:
        ctx.symlink(path, "/" + busybox)


def pem_block(fake: Faker, label: str = "CERTIFICATE", length: int = 420) -> str:
    """A PEM block of seeded DER-looking bytes (it starts ``MII…`` like a real certificate)."""
    der = b"\x30\x82" + (length - 4).to_bytes(2, "big") + fake.binary(length=length - 4)
    body = base64.b64encode(der).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"
