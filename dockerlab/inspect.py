"""An image's stack, as ``dockerlab inspect`` shows it, composed from a lab implementation.

Nothing here resolves ids itself: every step is a task function of lab 1 or lab 2, taken from
``solutions/`` (the reference reader) or from the student's ``labs/`` with ``--impl labs``.
"""

from __future__ import annotations

import json
from typing import Any

from .impl import load

__all__ = ["inspect_image", "render_table"]


def inspect_image(root: str, ref: str, impl: str = "solutions") -> dict[str, Any]:
    """``{"image_id", "repo_tags", "layers": [{layer_id, db_id, cache_id, parent, size, link, diff_dir}]}``."""
    lab1, lab2 = load("lab1", impl), load("lab2", impl)
    image_id = lab1.resolve_image(root, ref)
    layer_ids = lab1.image_layer_ids(root, ref)
    layers = []
    for layer_id, db_id in zip(layer_ids, lab1.chain_ids(layer_ids)):
        entry = lab1.read_layer(root, db_id)
        layers.append(
            {
                "layer_id": layer_id,
                "db_id": db_id,
                "cache_id": entry["cache_id"],
                "parent": entry["parent"],
                "size": entry["size"],
                "link": lab2.read_link(root, entry["cache_id"]),
                "diff_dir": str(lab1.layer_diff_dir(root, ref, layer_id)),
            }
        )
    tags = [r for r in lab1.image_refs(root, image_id) if "@" not in r]
    return {"image_id": image_id, "repo_tags": tags, "layers": layers}


def _short(value: str | None) -> str:
    return "-" if value is None else value.removeprefix("sha256:")[:12]


def render_table(info: dict[str, Any]) -> str:
    """The stack base first, one row per layer, with its overlay2 directory under it."""
    lines = [
        f"image {info['image_id']}  {' '.join(info['repo_tags'])}",
        f"{len(info['layers'])} layers, base first",
        "",
        f"{'#':>3}  {'layer id':<12}  {'db id':<12}  {'cache-id':<12}  {'parent':<12}  {'size':>9}",
    ]
    for i, layer in enumerate(info["layers"], 1):
        lines.append(
            f"{i:>3}  {_short(layer['layer_id'])}  {_short(layer['db_id'])}  {_short(layer['cache_id'])}  "
            f"{_short(layer['parent']):<12}  {layer['size']:>9}"
        )
        lines.append(f"     {layer['diff_dir']}  (l/{layer['link']})")
    return "\n".join(lines)


def to_json(info: dict[str, Any]) -> str:
    """The ``--json`` form."""
    return json.dumps(info, indent=2)
