"""Constants of the on-disk format, shared by the builder, the reference reader and the labs.

Everything here is a fact about what Docker's overlay2 driver and layer store write (see
``docker-storage-format.md``), not logic that resolves one id into another: that logic lives
once, in the reference reader (``solutions/``). Standard library only, so the grading sandbox
can offer this module to student code.
"""

from __future__ import annotations

import json
import os
import re
import stat

from .errors import CorruptFileError, CorruptJSONError, MissingEntryError

__all__ = [
    "CACHE_ID_RE",
    "DIGEST_RE",
    "LINK_RE",
    "MAX_LOWERS",
    "MOUNT_ID_RE",
    "OPAQUE_XATTRS",
    "OTHER_ROOT_DIRS",
    "WHITEOUT_OPAQUE",
    "WHITEOUT_PREFIX",
    "WHITEOUT_XATTRS",
    "is_opaque",
    "is_whiteout",
    "read_json",
    "read_text",
    "source_repository",
]

#: ``sha256:`` followed by 64 lowercase hex: diff ids, chain ids, image ids, digests.
DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
#: A graph driver id: 64 lowercase hex, the name of ``overlay2/<cache-id>/``.
CACHE_ID_RE = re.compile(r"^[a-f0-9]{64}$")
#: What ``layerdb/mounts/<container>/{mount-id,init-id}`` may hold (moby checks this regex).
MOUNT_ID_RE = re.compile(r"^[a-f0-9]{64}(-init)?$")
#: overlay2's short link: 26 characters of RFC 4648 base32 (``A-Z2-7``), no padding.
LINK_RE = re.compile(r"^[A-Z2-7]{26}$")
#: overlay2 refuses to stack more lower layers than this.
MAX_LOWERS = 128

#: Top-level directories a daemon creates in its root beside ``containers``, ``image`` and
#: ``overlay2`` (with their modes). The builder makes them empty: their bolt databases are
#: binary and not part of the lab.
OTHER_ROOT_DIRS = (
    ("buildkit", 0o711),
    ("containerd", 0o700),
    ("network", 0o750),
    ("plugins", 0o700),
    ("runtimes", 0o700),
    ("swarm", 0o700),
    ("tmp", 0o700),
    ("trust", 0o700),
    ("volumes", 0o701),
)

#: In a layer *tar*, a deleted path ``d/x`` is the empty file ``d/.wh.x`` …
WHITEOUT_PREFIX = ".wh."
#: … and a directory whose lower contents are hidden carries the entry ``d/.wh..wh..opq``.
WHITEOUT_OPAQUE = ".wh..wh..opq"

#: On disk an opaque directory carries one of these set to ``y``. ``trusted.`` is what a
#: root daemon writes; ``user.`` is what overlayfs reads in rootless (userxattr) mode and what
#: the builder falls back to when it may not write ``trusted.`` attributes.
OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")
#: On disk a deleted path is a 0/0 character device. Where mknod is not allowed the builder
#: writes overlayfs's other form instead: an empty file carrying one of these attributes.
WHITEOUT_XATTRS = ("trusted.overlay.whiteout", "user.overlay.whiteout")


def _has_xattr(path: str | os.PathLike[str], names: tuple[str, ...], value: bytes) -> bool:
    for name in names:
        try:
            if os.getxattr(path, name, follow_symlinks=False) == value:
                return True
        except (OSError, AttributeError):
            continue
    return False


def is_whiteout(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` in a layer's ``diff/`` marks a deletion (a 0/0 char device).

    Also accepts the forms the builder falls back to when it may not call mknod: an empty file
    marked with an ``overlay.whiteout`` xattr, or, where there are no xattrs, an empty file with
    mode 0000.
    """
    st = os.lstat(path)
    if stat.S_ISCHR(st.st_mode):
        return getattr(st, "st_rdev", 0) == 0  # pyfakefs has no st_rdev; its devices are 0/0
    if stat.S_ISREG(st.st_mode) and st.st_size == 0:
        # the builder's fallbacks: marked by xattr, or (no xattrs at all) an empty mode-0000 file
        return _has_xattr(path, WHITEOUT_XATTRS, b"y") or stat.S_IMODE(st.st_mode) == 0
    return False


def is_opaque(path: str | os.PathLike[str]) -> bool:
    """True when the directory ``path`` hides everything below it (overlay's opaque xattr)."""
    return os.path.isdir(path) and _has_xattr(path, OPAQUE_XATTRS, b"y")


def read_text(path: str | os.PathLike[str]) -> str:
    """The content of a small file a daemon writes (``cache-id``, ``link``…): no trailing newline.

    A missing file raises :class:`~fakeroot_builder.errors.MissingEntryError` naming the path.
    """
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except FileNotFoundError:
        raise MissingEntryError(path, "file is missing") from None
    except IsADirectoryError:
        raise MissingEntryError(path, "is a directory where the format has a file") from None
    except UnicodeDecodeError:
        raise CorruptFileError(path, "is not UTF-8 text") from None


def read_json(path: str | os.PathLike[str]) -> dict:
    """A JSON object of the root, or :class:`~fakeroot_builder.errors.CorruptJSONError` naming
    the path when it is cut short (a full disk, a crash mid-write) or is not an object."""
    text = read_text(path)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CorruptJSONError(path, f"not valid JSON ({exc.msg} at byte {exc.pos})") from None
    if not isinstance(value, dict):
        raise CorruptJSONError(path, f"expected a JSON object, found {type(value).__name__}")
    return value


def source_repository(repo: str) -> str:
    """The fully qualified repository a pull records (``nginx`` → ``docker.io/library/nginx``).

    ``SourceRepository`` in ``distribution/v2metadata-by-diffid`` is spelled this way; a name
    whose first part looks like a host (``127.0.0.1:5000/demo``) is already qualified.
    """
    first = repo.split("/", 1)[0]
    if "/" in repo and ("." in first or ":" in first or first == "localhost"):
        return repo
    return f"docker.io/{repo}" if "/" in repo else f"docker.io/library/{repo}"
