"""Lab 2 — overlay2 on disk: links, lower chains, mounts and what a layer changes.

Every function takes ``root``, a Docker data root, and reads only files under it. Layers are
named by cache-id here (the directory name under ``overlay2/``), so this lab does not depend on
lab 1. Use ``is_whiteout`` and ``is_opaque`` from ``fakeroot_builder.formats`` to recognise
overlay's deletion markers: they know the forms a root without privileges falls back to.

Errors: every error of ``fakeroot_builder.errors`` takes ``(path, problem)``: the file or
directory at fault and what is wrong with it, e.g.
``raise DanglingLinkError(link_path, "no such short link")``.

Its twin in ``solutions/`` is the overlay2 half of the reference reader.
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
    # TODO: task 1: read overlay2/<cache_id>/link (26 characters, no newline). Not 26 base32
    #   characters → raise MalformedIdError(link_file_path, problem).
    raise NotImplementedError("task 1: read_link() is not written yet")


def resolve_link(root: str, link: str) -> str:
    """The cache-id that ``overlay2/l/<link>`` points at (its target is ``../<cache-id>/diff``)."""
    # TODO: task 1: overlay2/l/<link> is a symlink to ../<cache-id>/diff; return the cache-id.
    #   Missing or pointing nowhere → raise DanglingLinkError(link_path, problem), e.g.
    #   DanglingLinkError(link_path, "no such short link").
    raise NotImplementedError("task 1: resolve_link() is not written yet")


# -- task 2: the lower chain ----------------------------------------------------------------------


def lower_chain(root: str, cache_id: str) -> list[str]:
    """The cache-ids of the layers below ``cache_id``, nearest first; [] for a base layer."""
    # TODO: task 2: read overlay2/<cache_id>/lower ("l/A:l/B:…", nearest first) and resolve
    #   each link. No lower file → []. More than 128 →
    #   raise TooManyLowersError(lower_path, problem); an entry not starting with l/ →
    #   raise MalformedIdError(lower_path, problem).
    raise NotImplementedError("task 2: lower_chain() is not written yet")


# -- task 3: do `lower` and `parent` agree? -------------------------------------------------------


def _layerdb(root: str) -> str:
    return os.path.join(root, "image", "overlay2", "layerdb", "sha256")


def check_lowers(root: str) -> list[str]:
    """Db ids of the layers whose ``lower`` chain disagrees with their ``parent`` chain, sorted.

    A layer disagrees when its lower chain (as cache-ids) is not the cache-ids of its parent,
    grandparent… or when either chain cannot be followed (missing file, dangling link).
    """
    # TODO: task 3: for every layerdb entry compare lower_chain(its cache-id) with the
    #   cache-ids of its parent, grandparent…; list the db ids that disagree (or cannot be read).
    raise NotImplementedError("task 3: check_lowers() is not written yet")


# -- task 4: the mount of a container -------------------------------------------------------------


def mount_options(root: str, container: str) -> str:
    """The overlay mount options Docker passes for ``container`` (id, id prefix or name).

    ``lowerdir=<root>/overlay2/l/<init link>:…:<root>/overlay2/l/<base link>,``
    ``upperdir=<root>/overlay2/<mount-id>/diff,workdir=<root>/overlay2/<mount-id>/work``
    """
    # TODO: task 4: find the container as docker does (full id, then name as in its
    #   config.v2.json "Name", then a unique id prefix) → layerdb/mounts/<id>/mount-id →
    #   overlay2/<mount-id>/lower; make each l/<link> absolute; add upperdir (…/diff) and
    #   workdir (…/work). No such container → raise UnknownReferenceError(path, problem),
    #   e.g. UnknownReferenceError(containers_dir, f"{container!r} names no container").
    raise NotImplementedError("task 4: mount_options() is not written yet")


# -- task 5: what one layer changes ---------------------------------------------------------------


def _is_dir(path: str) -> bool:
    return stat.S_ISDIR(os.lstat(path).st_mode)


def layer_changes(root: str, cache_id: str) -> dict:
    """What layer ``cache_id`` adds, changes and deletes, compared with the layers below it.

    Returns ``{"added": […], "changed": […], "deleted": […], "opaque": […]}``, each a sorted
    list of absolute paths (``/etc/nginx/nginx.conf``). A whiteout is a deletion; an opaque
    directory is listed in ``opaque`` (and in ``added`` if nothing below had it), and what sits
    in it is added (nothing below shows through it); a directory that exists below is not a
    change by itself.
    """
    # TODO: task 5: walk diff/; whiteouts are deletions; a path visible in the lower layers
    #   is a change, otherwise an addition; note opaque directories. Look a path up in the
    #   lower layers nearest first, as overlayfs does: a whiteout, a file over a directory or
    #   an opaque directory on the way hides everything farther down.
    raise NotImplementedError("task 5: layer_changes() is not written yet")
