"""How the catalogue describes images: Dockerfile-like steps whose layers are made from a seed.

A :class:`LayerRecipe` is a named function that returns a layer's entries. The name matters:
two images whose steps use the same recipe (``debian-bookworm-slim-rootfs``) get byte-identical
layers, so the layer is stored once and shared, as on a real host. Each recipe draws its random
content from its own Faker, seeded from the root's seed and the recipe's name, so a layer's
content does not depend on which other images are built alongside it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from faker import Faker

from .layer import Entry
from .provider import reseeded_faker
from .seeds import derived_seed

__all__ = [
    "ContainerRecipe",
    "ImageRecipe",
    "LayerContext",
    "LayerRecipe",
    "Step",
    "derived_seed",
]


class LayerContext:
    """What a layer recipe gets: a seeded Faker, the step's time, and entry helpers.

    The helpers add missing parent directories, so a recipe lists only what it cares about.
    """

    def __init__(self, fake: Faker, mtime: datetime, seed: int = 0) -> None:
        self.fake = fake
        self.mtime = int(mtime.timestamp())
        self._seed = seed
        self._entries: dict[str, Entry] = {}

    def shared_random(self, label: str) -> random.Random:
        """A generator seeded from the root's seed and ``label`` only: every layer (and container)
        asking for the same ``label`` draws the same values, so several layers can agree on which
        paths they touch (``ctx.fake`` is seeded per layer)."""
        return random.Random(derived_seed(self._seed, "shared", label))

    # -- building entries -------------------------------------------------------------------
    def _add(self, entry: Entry) -> None:
        parts = entry.path.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            if parent not in self._entries:
                self._entries[parent] = Entry(parent, "dir", 0o755, mtime=self.mtime)
        self._entries[entry.path] = entry

    def dir(self, path: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> None:
        """Add the directory ``path`` (no leading slash)."""
        self._add(Entry(path.strip("/"), "dir", mode, uid, gid, mtime=self.mtime))

    def file(
        self, path: str, data: str | bytes, mode: int = 0o644, uid: int = 0, gid: int = 0
    ) -> None:
        """Add a regular file with ``data`` (text is UTF-8 encoded)."""
        raw = data.encode() if isinstance(data, str) else data
        self._add(Entry(path.strip("/"), "file", mode, uid, gid, raw, mtime=self.mtime))

    def symlink(self, path: str, target: str) -> None:
        """Add a symlink ``path -> target``."""
        self._add(Entry(path.strip("/"), "symlink", 0o777, target=target, mtime=self.mtime))

    def hardlink(self, path: str, source: str) -> None:
        """Add a hard link to the already added file ``source``."""
        self._add(Entry(path.strip("/"), "hardlink", 0o644, target=source.strip("/"), mtime=self.mtime))

    def delete(self, path: str) -> None:
        """Delete ``path`` from the layers below (a whiteout)."""
        self._add(Entry(path.strip("/"), "whiteout", 0o600, mtime=self.mtime))

    def opaque(self, path: str, mode: int = 0o755) -> None:
        """Replace the directory ``path``: hide all the layers below have in it."""
        path = path.strip("/")
        self.dir(path, mode)
        self._entries[path + "/" + "\0opaque"] = Entry(path, "opaque", mode, mtime=self.mtime)

    def entries(self) -> list[Entry]:
        """Everything added so far."""
        return list(self._entries.values())


@dataclass(frozen=True)
class LayerRecipe:
    """A named, seeded function making one layer's entries."""

    name: str
    make: Callable[[LayerContext], None]

    def build(self, seed: int, mtime: datetime) -> list[Entry]:
        """Run the recipe for ``seed``; the same seed and name always give the same entries."""
        ctx = LayerContext(reseeded_faker(derived_seed(seed, "layer", self.name)), mtime, seed)
        self.make(ctx)
        return ctx.entries()


@dataclass(frozen=True)
class Step:
    """One line of an image's history; ``layer`` is None for steps that change only the config."""

    created_by: str
    layer: LayerRecipe | None = None


@dataclass(frozen=True)
class ImageRecipe:
    """An image of the catalogue: its base, its own steps and the config it ends with.

    ``config`` holds the container config fields Docker shows (``Env``, ``Cmd``, ``Entrypoint``,
    ``ExposedPorts``, ``Labels``, ``WorkingDir``, ``StopSignal``…); a base image's fields are
    inherited and overridden key by key, like ``FROM``. ``tags`` are every tag the host has for it.
    """

    name: str
    steps: tuple[Step, ...]
    base: str | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    pulled: bool = True

    @property
    def all_tags(self) -> tuple[str, ...]:
        """``name`` first, then the extra tags."""
        return (self.name, *[t for t in self.tags if t != self.name])


@dataclass(frozen=True)
class ContainerRecipe:
    """A container on the host: ``created`` only, or ``exited`` after a run that left changes."""

    image: str
    state: str = "created"
    cmd: tuple[str, ...] | None = None
    changes: Callable[[LayerContext], None] | None = None

    def rw_entries(self, seed: int, key: str, mtime: datetime) -> Iterable[Entry]:
        """The entries a run left in the container's RW layer (none for a created container)."""
        if self.changes is None:
            return []
        return LayerRecipe(f"container:{key}", self.changes).build(seed, mtime)
