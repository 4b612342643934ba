"""Break a built root on purpose, the ways real roots get broken, and say what was broken.

Each function damages one thing in a root written by the builder and returns the db ids whose
records no longer agree, so tests know the right answer without asking any reader.
"""

from __future__ import annotations

import os
from pathlib import Path

from .truth import LayerTruth, RootTruth

__all__ = [
    "above",
    "dangle_link",
    "parent_cycle",
    "remove_cache_dir",
    "replace_far_lower",
    "reverse_lower",
    "swap_lower",
    "too_many_lowers",
    "truncate_config",
    "unparse_cache_id",
]


def _layerdb(root: Path, db_id: str) -> Path:
    return root / "image/overlay2/layerdb/sha256" / db_id.removeprefix("sha256:")


def _stacked(truth: RootTruth) -> list[LayerTruth]:
    return [layer for layer in truth.layers().values() if layer.parent]


def swap_lower(root: Path, truth: RootTruth, layer: LayerTruth) -> list[str]:
    """Give ``layer`` the ``lower`` file of another stacked layer (one as long, where there is
    one, so that counting entries cannot tell); only ``layer`` disagrees."""
    others = [x for x in _stacked(truth) if x.lower != layer.lower]
    other = next((x for x in others if len(x.lower) == len(layer.lower)), others[0])
    lower = root / "overlay2" / layer.cache_id / "lower"
    lower.write_text(":".join(f"l/{link}" for link in other.lower))
    return [layer.db_id]


def reverse_lower(root: Path, truth: RootTruth, layer: LayerTruth) -> list[str]:
    """Write ``layer``'s ``lower`` entries base first (wrong order, right set); only it disagrees."""
    assert len(layer.lower) >= 2, "needs a layer with at least two layers below it"
    (root / "overlay2" / layer.cache_id / "lower").write_text(":".join(f"l/{x}" for x in reversed(layer.lower)))
    return [layer.db_id]


def replace_far_lower(root: Path, truth: RootTruth, layer: LayerTruth) -> list[str]:
    """Swap the farthest entry of ``layer``'s ``lower`` (its base) for another layer's link: same
    length, same nearest entry, so only a full comparison sees it; only ``layer`` disagrees."""
    assert len(layer.lower) >= 2, "needs a layer with at least two layers below it"
    other = next(x.link for x in truth.layers().values() if x.link not in layer.lower and x.link != layer.link)
    (root / "overlay2" / layer.cache_id / "lower").write_text(":".join(f"l/{x}" for x in (*layer.lower[:-1], other)))
    return [layer.db_id]


def above(truth: RootTruth, layer: LayerTruth) -> list[str]:
    """The db ids of ``layer`` and of every layer stacked on it (directly or not), sorted."""
    parents = {x.db_id: x.parent for x in truth.layers().values()}
    out = []
    for db_id in parents:
        node: str | None = db_id
        while node is not None and node != layer.db_id:
            node = parents.get(node)
        if node == layer.db_id:
            out.append(db_id)
    return sorted(out)


def dangle_link(root: Path, truth: RootTruth, layer: LayerTruth) -> list[str]:
    """Delete ``l/<link>`` of ``layer``: every layer stacked on it can no longer follow ``lower``."""
    os.unlink(root / "overlay2/l" / layer.link)
    return sorted(x.db_id for x in truth.layers().values() if layer.link in x.lower)


def remove_cache_dir(root: Path, truth: RootTruth, layer: LayerTruth) -> list[str]:
    """Remove ``overlay2/<cache-id>/`` of ``layer`` (its files, link and lower are gone)."""
    import shutil

    shutil.rmtree(root / "overlay2" / layer.cache_id)
    return sorted({layer.db_id} | {x.db_id for x in truth.layers().values() if layer.link in x.lower})


def parent_cycle(root: Path, truth: RootTruth, base: LayerTruth, top: LayerTruth) -> None:
    """Make the base layer's ``parent`` point at ``top``, so following parents never ends."""
    (_layerdb(root, base.db_id) / "parent").write_text(top.db_id)


def unparse_cache_id(root: Path, truth: RootTruth, layer: LayerTruth) -> None:
    """Overwrite ``layer``'s ``cache-id`` file with something that is not an id."""
    (_layerdb(root, layer.db_id) / "cache-id").write_text("not-a-cache-id\n")


def truncate_config(root: Path, truth: RootTruth, image_id: str) -> None:
    """Cut an image config in half, as a full disk would."""
    path = root / "image/overlay2/imagedb/content/sha256" / image_id.removeprefix("sha256:")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def too_many_lowers(root: Path, truth: RootTruth, layer: LayerTruth) -> None:
    """Write a ``lower`` of 129 entries (overlay2 stops at 128)."""
    (root / "overlay2" / layer.cache_id / "lower").write_text(":".join([f"l/{layer.lower[0]}"] * 129))
