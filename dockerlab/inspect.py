"""An image's stack, as ``dockerlab inspect`` shows it, composed from a lab implementation.

Nothing here resolves ids itself: :func:`dockerlab.stack.overlay2_stack` composes the task
functions of lab 1 and lab 2, from ``solutions/`` (the reference reader) or from the student's
``labs/`` (``--impl labs``: theirs where written, the reference where not, and it says which).
"""

from __future__ import annotations

import json
from typing import Any

from .stack import Stack, lab_of, overlay2_stack

__all__ = ["inspect_image", "render_table"]


def inspect_image(root: str, ref: str, impl: str = "solutions") -> dict[str, Any]:
    """``{"image_id", "repo_tags", "layers": [{layer_id, db_id, cache_id, parent, size, link, diff_dir}]}``."""
    return _as_dict(overlay2_stack(root, ref, impl, with_containers=False))


def _as_dict(stack: Stack) -> dict[str, Any]:
    keys = ("layer_id", "db_id", "cache_id", "parent", "size", "link", "diff_dir")
    info: dict[str, Any] = {
        "image_id": stack.image_id,
        "repo_tags": stack.refs,
        "layers": [{k: row.values[k] for k in keys} for row in stack.rows if row.kind == "layer"],
    }
    if stack.sources:
        info["sources"] = dict(stack.sources)
    return info


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
    lines += render_sources(info.get("sources", {}))
    return "\n".join(lines)


def render_sources(sources: dict[str, str]) -> list[str]:
    """Which answers came from the student's code and which from the reference (``--impl labs``)."""
    if not sources:
        return []
    yours = sorted(f for f, s in sources.items() if s == "yours")
    reference = sorted(f for f, s in sources.items() if s == "reference")
    lines = [""]
    lines.append("your code:  " + (", ".join(f"{f}()" for f in yours) if yours else "none of these functions yet"))
    if reference:
        lines.append("reference:  " + ", ".join(f"{f}() [{lab_of(f)}]" for f in reference)
                     + "  (not written yet in labs/; solutions/ stood in)")
    return lines


def to_json(info: dict[str, Any]) -> str:
    """The ``--json`` form (``_sources``: which function answered, with ``--impl labs``)."""
    return json.dumps(info, indent=2)
