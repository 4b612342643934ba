"""Lab 2 — overlay2 on disk: links, lower chains, mounts and what a layer changes.

Every function takes ``root``, a Docker data root, and reads only files under it. Layers are
named by cache-id here (the directory name under ``overlay2/``), so this lab does not depend on
lab 1. Use ``is_whiteout`` and ``is_opaque`` from ``fakeroot_builder.formats`` to recognise
overlay's deletion markers: they know the forms a root without privileges falls back to.

This file is also the overlay2 half of the reference reader (see lab 1's docstring).
"""

from __future__ import annotations

import os
import re
import stat

from fakeroot_builder.errors import (
    DanglingLinkError,
    MalformedIdError,
    MissingEntryError,
    ParentCycleError,
    TooManyLowersError,
    UnknownReferenceError,
)
from fakeroot_builder.formats import is_opaque, is_whiteout
from fakeroot_builder.formats import read_json as _read_json
from fakeroot_builder.formats import read_text as _read_text

__all__ = [
    "check_lowers",
    "layer_changes",
    "lower_chain",
    "mount_options",
    "read_link",
    "resolve_link",
]

_LINK = re.compile(r"^[A-Z2-7]{26}$")
_MOUNT_ID = re.compile(r"^[a-f0-9]{64}(-init)?$")
_MAX_LOWERS = 128


# -- given: small readers ------------------------------------------------------------------------


def _layer_dir(root: str, cache_id: str) -> str:
    """``<root>/overlay2/<cache-id>``, checked to exist."""
    path = os.path.join(root, "overlay2", cache_id)
    if not os.path.isdir(path):
        raise MissingEntryError(path, "no such overlay2 layer directory")
    return path


# -- task 1: short links --------------------------------------------------------------------------


def read_link(root: str, cache_id: str) -> str:
    """The 26-character short link of layer ``cache_id`` (its ``link`` file)."""
    # Solution: overlay2 keeps short names so that mount options fit in one page.
    path = os.path.join(_layer_dir(root, cache_id), "link")
    link = _read_text(path)
    if not _LINK.match(link):
        raise MalformedIdError(path, f"not a 26-character base32 link: {link[:80]!r}")
    return link


def resolve_link(root: str, link: str) -> str:
    """The cache-id that ``overlay2/l/<link>`` points at (its target is ``../<cache-id>/diff``)."""
    # Solution: read the symlink, take the directory name between "../" and "/diff".
    if not _LINK.match(link):
        raise MalformedIdError(link, "not a 26-character base32 link")
    path = os.path.join(root, "overlay2", "l", link)
    try:
        target = os.readlink(path)
    except FileNotFoundError:
        raise DanglingLinkError(path, "no such short link") from None
    match = re.fullmatch(r"\.\./([^/]+)/diff", target)
    if match is None or not os.path.isdir(os.path.join(root, "overlay2", match.group(1), "diff")):
        raise DanglingLinkError(path, f"points at {target!r}, which is not a layer's diff directory")
    return match.group(1)


# -- task 2: the lower chain ----------------------------------------------------------------------


def lower_chain(root: str, cache_id: str) -> list[str]:
    """The cache-ids of the layers below ``cache_id``, nearest first; [] for a base layer."""
    # Solution: `lower` is "l/<link>:l/<link>:…", nearest first; a base layer has no such file.
    path = os.path.join(_layer_dir(root, cache_id), "lower")
    if not os.path.exists(path):
        return []
    entries = _read_text(path).split(":")
    if len(entries) > _MAX_LOWERS:
        raise TooManyLowersError(path, f"{len(entries)} lower layers; overlay2 allows {_MAX_LOWERS}")
    chain = []
    for entry in entries:
        if not entry.startswith("l/"):
            raise MalformedIdError(path, f"lower entry {entry[:80]!r} does not start with l/")
        chain.append(resolve_link(root, entry[2:]))
    return chain


# -- task 3: do `lower` and `parent` agree? -------------------------------------------------------


def _layerdb(root: str) -> str:
    return os.path.join(root, "image", "overlay2", "layerdb", "sha256")


def _parent_cache_chain(root: str, db_id: str) -> list[str]:
    """Cache-ids of the layers below ``db_id`` by the layer DB's ``parent`` files, nearest first."""
    chain: list[str] = []
    seen = {db_id}
    entry = os.path.join(_layerdb(root), db_id[7:])
    while os.path.exists(os.path.join(entry, "parent")):
        parent = _read_text(os.path.join(entry, "parent"))
        if parent in seen:
            raise ParentCycleError(os.path.join(entry, "parent"), f"parent chain loops back to {parent}")
        seen.add(parent)
        entry = os.path.join(_layerdb(root), parent.removeprefix("sha256:"))
        chain.append(_read_text(os.path.join(entry, "cache-id")))
    return chain


def check_lowers(root: str) -> list[str]:
    """Db ids of the layers whose ``lower`` chain disagrees with their ``parent`` chain, sorted.

    A layer disagrees when its lower chain (as cache-ids) is not the cache-ids of its parent,
    grandparent… or when either chain cannot be followed (missing file, dangling link).
    """
    # Solution: compute both chains per layer DB entry; any error while following one is a
    # disagreement too, reported rather than raised.
    bad = []
    for name in sorted(os.listdir(_layerdb(root))):
        db_id = "sha256:" + name
        try:
            cache_id = _read_text(os.path.join(_layerdb(root), name, "cache-id"))
            if lower_chain(root, cache_id) != _parent_cache_chain(root, db_id):
                bad.append(db_id)
        except (MissingEntryError, MalformedIdError, DanglingLinkError, TooManyLowersError, ParentCycleError):
            bad.append(db_id)
    return bad


# -- task 4: the mount of a container -------------------------------------------------------------


def _container_id(root: str, container: str) -> str:
    """The full id of a container, looked up as Docker does: full id, then name, then id prefix."""
    base = os.path.join(root, "containers")
    ids = sorted(os.listdir(base)) if os.path.isdir(base) else []
    if not container:
        raise UnknownReferenceError(base, "an empty container reference names nothing")
    if container in ids:
        return container
    name = "/" + container.lstrip("/")
    for cid in ids:
        config = os.path.join(base, cid, "config.v2.json")
        if os.path.exists(config) and _read_json(config).get("Name") == name:
            return cid
    matches = [i for i in ids if i.startswith(container)]
    if len(matches) == 1:
        return matches[0]
    problem = "is ambiguous" if matches else "names no container"
    raise UnknownReferenceError(base, f"{container!r} {problem}")


def mount_options(root: str, container: str) -> str:
    """The overlay mount options Docker passes for ``container`` (id, id prefix or name).

    ``lowerdir=<root>/overlay2/l/<init link>:…:<root>/overlay2/l/<base link>,``
    ``upperdir=<root>/overlay2/<mount-id>/diff,workdir=<root>/overlay2/<mount-id>/work``
    """
    # Solution: containers are found through layerdb/mounts/<id>/mount-id; the RW layer's `lower`
    # already starts with the -init layer, and each l/<link> becomes an absolute path.
    cid = _container_id(root, container)
    mount_path = os.path.join(root, "image", "overlay2", "layerdb", "mounts", cid, "mount-id")
    mount_id = _read_text(mount_path)
    if not _MOUNT_ID.match(mount_id) or mount_id.endswith("-init"):
        raise MalformedIdError(mount_path, f"not a mount id: {mount_id[:80]!r}")
    layer = _layer_dir(root, mount_id)
    overlay = os.path.join(root, "overlay2")
    lowers = [os.path.join(overlay, entry) for entry in _read_text(os.path.join(layer, "lower")).split(":")]
    return f"lowerdir={':'.join(lowers)},upperdir={os.path.join(layer, 'diff')},workdir={os.path.join(layer, 'work')}"


# -- task 5: what one layer changes ---------------------------------------------------------------


def _is_dir(path: str) -> bool:
    return stat.S_ISDIR(os.lstat(path).st_mode)


def _visible_below(rel: str, diff: str, lowers: list[str]) -> bool:
    """Whether ``rel`` of layer ``diff`` shows a path of the union of ``lowers`` (nearest first)."""
    parts = rel.split("/")
    if any(is_opaque(os.path.join(diff, *parts[:depth])) for depth in range(1, len(parts))):
        return False  # inside this layer's own opaque directory nothing from below shows
    for lower in lowers:
        hidden_below = False
        for depth in range(1, len(parts) + 1):
            path = os.path.join(lower, *parts[:depth])
            if not os.path.lexists(path):
                break
            if is_whiteout(path):
                return False
            if depth == len(parts):
                return True
            if not _is_dir(path):
                return False  # a file over a directory hides what was below it
            if is_opaque(path):
                hidden_below = True
        if hidden_below:
            return False
    return False


def layer_changes(root: str, cache_id: str) -> dict:
    """What layer ``cache_id`` adds, changes and deletes, compared with the layers below it.

    Returns ``{"added": […], "changed": […], "deleted": […], "opaque": […]}``, each a sorted
    list of absolute paths (``/etc/nginx/nginx.conf``). A whiteout is a deletion; an opaque
    directory is listed in ``opaque`` (and in ``added`` if nothing below had it), and what sits
    in it is added (nothing below shows through it); a directory that exists below is not a
    change by itself.
    """
    # Solution: walk diff/; look every path up in the lower layers as overlayfs would.
    diff = os.path.join(_layer_dir(root, cache_id), "diff")
    lowers = [os.path.join(root, "overlay2", c, "diff") for c in lower_chain(root, cache_id)]
    out: dict[str, list[str]] = {"added": [], "changed": [], "deleted": [], "opaque": []}
    for top, dirs, files in os.walk(diff):
        for name in dirs + files:
            path = os.path.join(top, name)
            rel = os.path.relpath(path, diff).replace(os.sep, "/")
            if is_whiteout(path):
                out["deleted"].append("/" + rel)
                continue
            below = _visible_below(rel, diff, lowers)
            if _is_dir(path):
                if is_opaque(path):
                    out["opaque"].append("/" + rel)
                if not below:
                    out["added"].append("/" + rel)
            else:
                out["changed" if below else "added"].append("/" + rel)
    return {key: sorted(paths) for key, paths in out.items()}
