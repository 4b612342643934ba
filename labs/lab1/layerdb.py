"""Lab 1 — the layer DB: from an image name to the directories holding its layers.

Every function takes ``root``, a Docker data root (``/var/lib/docker`` or a fake one), and
reads only files under it. Ids are spelled as Docker spells them: ``sha256:<64 hex>`` for
layer ids (DiffIDs), db ids (ChainIDs) and image ids; 64 bare hex for cache-ids.

Glossary: layer id = DiffID, db id = ChainID, cache-id = the overlay2 directory name.

Errors: every error of ``fakeroot_builder.errors`` takes ``(path, problem)``: the file or
directory at fault and what is wrong with it, e.g.
``raise MissingEntryError(entry_dir, "no such layer DB entry")``.

Its twin in ``solutions/`` is the reference reader that ``dockerlab inspect`` uses; yours
can be run the same way with ``dockerlab inspect --impl labs``.
"""

from __future__ import annotations

import hashlib
import os
import re

from fakeroot_builder.errors import (
    MalformedIdError,
    MissingEntryError,
    ParentCycleError,
    UnknownReferenceError,
)
from fakeroot_builder.formats import read_json as _read_json
from fakeroot_builder.formats import read_text as _read_text

__all__ = [
    "chain_ids",
    "compare_hosts",
    "db_id_in_image",
    "db_ids_of_layer",
    "image_layer_ids",
    "image_refs",
    "image_stack",
    "layer_diff_dir",
    "read_layer",
    "resolve_image",
    "stack_matches_config",
]

_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
_HEX64 = re.compile(r"^[a-f0-9]{64}$")


# -- given: small readers ------------------------------------------------------------------------


def _store(root: str) -> str:
    """``<root>/image/overlay2``: the image store of the overlay2 driver."""
    return os.path.join(root, "image", "overlay2")


def _digest(value: str, path: str) -> str:
    """``value`` if it is ``sha256:<64 hex>``, else an error naming ``path``."""
    if not _DIGEST.match(value):
        raise MalformedIdError(path, f"expected sha256:<64 hex>, found {value[:80]!r}")
    return value


# -- task 1: name or id → image id → layer ids ---------------------------------------------------


def resolve_image(root: str, ref: str) -> str:
    """The image id (``sha256:…``) that ``ref`` names, as ``docker image inspect REF`` finds it.

    ``ref`` may be a name (``nginx``, ``nginx:latest``, ``docker.io/library/nginx``), a digest
    reference (``nginx@sha256:…``), a full image id (with or without ``sha256:``) or a unique
    prefix of one (``2a4fbb36e966``).
    """
    # TODO: task 1: normalize a name as the docker CLI does ("nginx" → "nginx:latest",
    #   "docker.io/library/nginx" → "nginx:latest") and look it up in
    #   image/overlay2/repositories.json; otherwise treat ref as a full or short image id: the
    #   files of image/overlay2/imagedb/content/sha256/ are named by image id. Unknown or
    #   ambiguous → raise UnknownReferenceError(path, problem), e.g.
    #   UnknownReferenceError(repositories_json_path, f"no image called {ref!r}").
    raise NotImplementedError("task 1: resolve_image() is not written yet")


def image_refs(root: str, image_id: str) -> list[str]:
    """Every reference in repositories.json that points at ``image_id``, sorted."""
    # TODO: task 1: list the keys of repositories.json whose value is image_id (sorted).
    raise NotImplementedError("task 1: image_refs() is not written yet")


def image_layer_ids(root: str, ref: str) -> list[str]:
    """The image's layer ids (DiffIDs), base first: its config's ``rootfs.diff_ids``."""
    # TODO: task 1: resolve the image, read its config (imagedb/content/sha256/<hex>) and
    #   return rootfs.diff_ids.
    raise NotImplementedError("task 1: image_layer_ids() is not written yet")


# -- task 2: one layer DB entry ------------------------------------------------------------------


def read_layer(root: str, db_id: str) -> dict:
    """The layer DB entry ``layerdb/sha256/<db id>/`` as a dict.

    Keys: ``db_id``, ``layer_id`` (the ``diff`` file), ``cache_id``, ``parent`` (a db id, or
    None for a base layer, which has no ``parent`` file) and ``size`` (an int).
    """
    # TODO: task 2: read diff, cache-id, size and (if present) parent from
    #   image/overlay2/layerdb/sha256/<hex of db_id>/. Missing entry →
    #   raise MissingEntryError(entry_dir, "no such layer DB entry"). A cache-id or size of the
    #   wrong shape → raise MalformedIdError(file_path, problem).
    raise NotImplementedError("task 2: read_layer() is not written yet")


# -- task 3: layer id → db id ---------------------------------------------------------------------


def chain_ids(layer_ids: list[str]) -> list[str]:
    """The db id (ChainID) of each layer of a stack, base first.

    The base layer's db id is its layer id; every other one is
    ``"sha256:" + sha256("<db id of the layer below> <layer id>")``.
    """
    # TODO: task 3: base: its own layer id. Above: "sha256:" + sha256 hex of
    #   f"{db id below} {layer id}" (full sha256:… strings, one space).
    raise NotImplementedError("task 3: chain_ids() is not written yet")


def db_ids_of_layer(root: str, layer_id: str) -> list[str]:
    """Every db id on disk whose ``diff`` is ``layer_id``, sorted (one layer id, many parents)."""
    # TODO: task 3: scan layerdb/sha256/*/diff for layer_id; return every match, sorted.
    raise NotImplementedError("task 3: db_ids_of_layer() is not written yet")


def db_id_in_image(root: str, ref: str, layer_id: str) -> str:
    """The db id of ``layer_id`` inside the image ``ref``'s stack (unambiguous, unlike a scan)."""
    # TODO: task 3: use the image's own stack (its layer ids), not a scan of the disk.
    #   layer_id not in the image → raise UnknownReferenceError(ref, problem).
    raise NotImplementedError("task 3: db_id_in_image() is not written yet")


# -- task 4: layer id → db id → cache-id → overlay2 directory ------------------------------------


def layer_diff_dir(root: str, ref: str, layer_id: str) -> str:
    """The directory holding the files of ``layer_id`` of image ``ref``: ``overlay2/<cache-id>/diff``."""
    # TODO: task 4: db id in the image → its cache-id → <root>/overlay2/<cache-id>/diff.
    #   layer_id not in the image → raise UnknownReferenceError(ref, problem); the directory
    #   missing → raise MissingEntryError(diff_path, problem).
    raise NotImplementedError("task 4: layer_diff_dir() is not written yet")


# -- task 5: rebuild a stack from parent pointers -------------------------------------------------


def image_stack(root: str, ref: str) -> list[str]:
    """The image's db ids base first, found by following ``parent`` files down from the top."""
    # TODO: task 5: start from the top layer's db id and follow `parent` files to the base;
    #   return base first. A loop → raise ParentCycleError(parent_file_path, problem).
    raise NotImplementedError("task 5: image_stack() is not written yet")


def stack_matches_config(root: str, ref: str) -> bool:
    """True when the parent chain on disk is exactly the ChainIDs computed from the config."""
    # TODO: task 5: compare image_stack() with chain_ids() of the config's layer ids
    #   (and each entry's diff with the layer id).
    raise NotImplementedError("task 5: stack_matches_config() is not written yet")


# -- task 6: what is deterministic, what is random -----------------------------------------------


def compare_hosts(root_a: str, root_b: str, ref: str) -> list[dict]:
    """Image ``ref`` on two hosts, layer by layer, base first.

    Each row: ``layer_id``, ``db_id_a``, ``db_id_b``, ``cache_id_a``, ``cache_id_b``. Pulled
    from the same registry, layer ids and db ids agree; cache-ids never do.
    """
    # TODO: task 6: for each layer (base first) give its layer id, its db id on each host and
    #   its cache-id on each host.
    raise NotImplementedError("task 6: compare_hosts() is not written yet")
