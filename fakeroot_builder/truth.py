"""Ground truth: exactly what the builder wrote, for tests to take expected answers from.

Building a root returns a :class:`RootTruth`; ``dockerlab build --truth FILE`` writes it as JSON.
Graded tests compare a student's answers with these values, never with another implementation.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["Changes", "ContainerTruth", "ImageTruth", "LayerTruth", "RootTruth"]


@dataclass(frozen=True)
class Changes:
    """What one layer does to the layers below it; absolute paths, sorted."""

    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    opaque: tuple[str, ...] = ()


@dataclass(frozen=True)
class LayerTruth:
    """One layer of an image's stack, with every id Docker gives it."""

    layer_id: str  #: DiffID, ``sha256:…`` of the uncompressed tar
    db_id: str  #: ChainID, the ``layerdb/sha256/<hex>`` directory
    cache_id: str  #: 64 hex, the ``overlay2/<cache-id>`` directory
    link: str  #: 26 chars, ``overlay2/l/<link>``
    parent: str | None  #: db id of the layer below; None for the base
    size: int  #: what ``layerdb/…/size`` holds
    compressed_digest: str  #: sha256 of the gzip blob a registry serves
    compressed_size: int  #: bytes of that blob
    lower: tuple[str, ...]  #: links of the layers below, nearest first (``lower`` file)
    changes: Changes = field(default_factory=Changes)

    @property
    def diff_dir(self) -> str:
        """The layer's files, relative to the root."""
        return f"overlay2/{self.cache_id}/diff"


@dataclass(frozen=True)
class ImageTruth:
    """An image on the host: how it is referred to, its id and its layers, base first."""

    name: str  #: catalogue name, e.g. ``nginx:latest``
    refs: tuple[str, ...]  #: keys of repositories.json pointing at it
    image_id: str
    manifest_digest: str | None  #: None for images built locally (never pulled)
    layers: tuple[LayerTruth, ...]

    @property
    def repo_tags(self) -> tuple[str, ...]:
        """The ``name:tag`` references (what ``docker images`` lists)."""
        return tuple(r for r in self.refs if "@" not in r)

    @property
    def layer_ids(self) -> tuple[str, ...]:
        """``rootfs.diff_ids``, base first."""
        return tuple(layer.layer_id for layer in self.layers)

    @property
    def db_ids(self) -> tuple[str, ...]:
        """ChainIDs, base first."""
        return tuple(layer.db_id for layer in self.layers)


@dataclass(frozen=True)
class ContainerTruth:
    """A container and the two overlay2 directories it owns."""

    id: str
    name: str
    image: str  #: what the user typed (``Config.Image``)
    image_id: str
    state: str  #: ``created`` or ``exited``
    mount_id: str  #: ``overlay2/<mount-id>``, the RW layer
    init_id: str  #: ``<mount-id>-init``
    link: str
    init_link: str
    parent: str  #: db id of the image's top layer
    lower: tuple[str, ...]  #: links below the RW layer, nearest (the init layer) first
    changes: Changes = field(default_factory=Changes)


@dataclass(frozen=True)
class RootTruth:
    """Everything a build wrote that a test may ask about."""

    seed: int
    host_seed: int
    images: tuple[ImageTruth, ...]
    containers: tuple[ContainerTruth, ...] = ()
    notes: tuple[str, ...] = ()  #: how the root deviates from a daemon's (e.g. degraded whiteouts)
    #: How the builder wrote what a root daemon writes with privileges, by kind (a kind is
    #: absent when the root holds none): ``whiteout``: ``device`` (a 0/0 character device, as a
    #: daemon), ``trusted.overlay.whiteout`` / ``user.overlay.whiteout`` (an empty mode-0000 file
    #: with that xattr) or ``mode-0000 file`` (no xattrs); ``opaque``: the xattr name set to ``y``
    #: (``trusted.overlay.opaque``, else ``user.overlay.opaque``) or ``unmarked``;
    #: ``kernel_xattrs``: ``trusted.overlay.*``, ``user.overlay.*`` or ``unmarked``; ``owners``:
    #: ``as in the layer tars`` (root) or ``yours`` (everything owned by the builder's user).
    forms: dict[str, str] = field(default_factory=dict)

    def image(self, ref: str) -> ImageTruth:
        """The image called ``ref`` (catalogue name, tag or digest reference)."""
        for image in self.images:
            if ref == image.name or ref in image.refs:
                return image
        raise KeyError(f"no image {ref!r} in this root; it has {[i.name for i in self.images]}")

    def container(self, name_or_id: str) -> ContainerTruth:
        """The container with this name or id."""
        for container in self.containers:
            if name_or_id in (container.id, container.name):
                return container
        raise KeyError(f"no container {name_or_id!r} in this root")

    def layers(self) -> dict[str, LayerTruth]:
        """Every distinct layer of the root, by db id."""
        return {layer.db_id: layer for image in self.images for layer in image.layers}

    def to_json(self) -> str:
        """The truth as JSON (``dockerlab build --truth``); ``diff_dir`` is included for readers."""
        return json.dumps(_jsonable(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> RootTruth:
        """Read back what :meth:`to_json` wrote."""
        return _load(cls, json.loads(text))


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, LayerTruth):
        return {**asdict(obj), "diff_dir": obj.diff_dir}
    if hasattr(obj, "__dataclass_fields__"):
        return {f.name: _jsonable(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, tuple):
        return [_jsonable(x) for x in obj]
    return obj


def _changes(data: dict[str, list[str]]) -> Changes:
    return Changes(*(tuple(data[k]) for k in ("added", "changed", "deleted", "opaque")))


def _layer(d: dict[str, Any]) -> LayerTruth:
    return LayerTruth(
        d["layer_id"], d["db_id"], d["cache_id"], d["link"], d["parent"], d["size"],
        d["compressed_digest"], d["compressed_size"], tuple(d["lower"]), _changes(d["changes"]),
    )


def _load(cls: Any, data: Any) -> Any:
    """Rebuild a :class:`RootTruth` from its JSON form (explicit, and fast enough for every test run)."""
    assert cls is RootTruth
    images = tuple(
        ImageTruth(i["name"], tuple(i["refs"]), i["image_id"], i["manifest_digest"], tuple(_layer(x) for x in i["layers"]))
        for i in data["images"]
    )
    containers = tuple(
        ContainerTruth(**{**c, "lower": tuple(c["lower"]), "changes": _changes(c["changes"])})
        for c in data["containers"]
    )
    return RootTruth(data["seed"], data["host_seed"], images, containers, tuple(data["notes"]),
                     dict(data.get("forms", {})))
