"""``dockerlab draw REF --root DIR``: an image's layer stack as boxes, base at the bottom.

Each box is one :class:`dockerlab.stack.Row`: an image layer (layer id, db id, cache-id, link,
size), then a container's ``-init`` and read-write layers on top; layers other images share are
marked. ``--svg FILE`` writes the same picture as SVG (plain SVG text, no dependency). Both
renderers take a :class:`~dockerlab.stack.Stack`, so any store that yields rows can be drawn.
"""

from __future__ import annotations

import argparse
import os
from html import escape
from pathlib import Path

from fakeroot_builder.errors import DockerLabError

from .impl import default_impl
from .inspect import render_sources
from .stack import Row, Stack, overlay2_stack

__all__ = ["render_svg", "render_text", "register"]

_MARK = {"layer": "", "init": "init", "container": "RW"}


def _row_lines(row: Row, limit: int = 66) -> list[str]:
    """The row's fields as ``label value`` pairs, as many per line as fit in ``limit``."""
    lines: list[str] = []
    for label, value in row.fields:
        item = f"{label} {value}"
        if lines and len(lines[-1]) + 3 + len(item) <= limit:
            lines[-1] += "   " + item
        else:
            lines.append(item)
    return lines


def render_text(stack: Stack) -> str:
    """The stack as terminal boxes, top layer first (so the base is at the bottom)."""
    body = [(row, _row_lines(row)) for row in stack.rows]
    titles = [row.title + (f"   ⇆ shared with {', '.join(row.shared_with)}" if row.shared_with else "") for row in stack.rows]
    width = max([len(line) + 4 for _, lines in body for line in lines] + [len(t) + 2 for t in titles] + [40])
    out = [f"{stack.ref}  image {stack.image_id[7:19]}  ({stack.store}; tags: {' '.join(stack.refs) or '-'})", ""]
    previous = None
    for row, texts in reversed(body):
        if previous is None:
            out.append("┌" + "─" * width + "┐")
        elif previous != "layer" and row.kind == "layer":
            out.append("╞" + "═" * width + "╡")  # where the image's read-only layers begin
        else:
            out.append("├" + "─" * width + "┤")
        title = row.title + (f"   ⇆ shared with {', '.join(row.shared_with)}" if row.shared_with else "")
        out.append("│ " + title.ljust(width - 1) + "│")
        out.extend("│   " + text.ljust(width - 3) + "│" for text in texts)
        previous = row.kind
    out.append("└" + "─" * width + "┘")
    legend = _LEGEND.get(stack.store, _LEGEND["overlay2"])
    out += ["", legend]
    if stack.containers:
        shown = next((r.title.split(" (")[0] for r in stack.rows if r.kind == "container"), "")
        others = [c for c in stack.containers if c != shown]
        out.append(f"container on top: {shown}" + (f" (also: {', '.join(others)}; pick one with --container)" if others else ""))
    out += render_sources(stack.sources)
    return "\n".join(out)


#: What the ids of each store are (the last line under the boxes).
_LEGEND = {
    "overlay2": "base at the bottom; db id = ChainID (the same on every host); cache-id and link are random per host",
    "containerd": "base at the bottom; snapshot key = ChainID (lab 1's db id, the same on every host);"
                  " dir = snapshots/<id>, containerd's counter",
}

_COLORS = {"layer": ("#e8f0fe", "#3367d6"), "init": ("#fef7e0", "#f29900"), "container": ("#fce8e6", "#d93025")}


def render_svg(stack: Stack) -> str:
    """The same picture as an SVG document (text stays selectable; no fonts embedded)."""
    gap, pad, width = 6, 16, 640
    rows = [(row, _row_lines(row, 80)) for row in reversed(stack.rows)]
    heights = [24 + 16 * len(lines) for _, lines in rows]
    height = pad * 2 + 34 + sum(h + gap for h in heights) + 34
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}"'
        ' font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{pad}" y="{pad + 14}" font-size="15" font-weight="bold">{escape(stack.ref)}'
        f' — image {escape(stack.image_id[7:19])} ({escape(stack.store)})</text>',
    ]
    y = pad + 30
    for (row, lines), row_h in zip(rows, heights):
        fill, stroke = _COLORS.get(row.kind, _COLORS["layer"])
        dash = ' stroke-dasharray="6 3"' if row.shared_with else ""
        parts.append(f'<rect x="{pad}" y="{y}" width="{width - 2 * pad}" height="{row_h}" rx="4" fill="{fill}"'
                     f' stroke="{stroke}" stroke-width="1.5"{dash}/>')
        title = escape(row.title)
        if row.shared_with:
            title += f'  <tspan fill="#188038">⇆ shared with {escape(", ".join(row.shared_with))}</tspan>'
        parts.append(f'<text x="{pad + 10}" y="{y + 18}" font-weight="bold">{title}</text>')
        for i, line in enumerate(lines):
            parts.append(f'<text x="{pad + 22}" y="{y + 34 + 16 * i}">{escape(line)}</text>')
        y += row_h + gap
    ids, dirs = (("snapshot key = ChainID", "dir: snapshots/<id>, containerd's counter") if stack.store == "containerd"
                 else ("db id = ChainID", "cache-id and link: random per host"))
    parts.append(f'<text x="{pad}" y="{y + 12}" font-size="11" fill="#5f6368">base at the bottom · {ids}'
                 ' (same on every host)</text>')
    parts.append(f'<text x="{pad}" y="{y + 26}" font-size="11" fill="#5f6368">{escape(dirs)}'
                 ' · dashed border: a layer other images share</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _cmd_draw(args: argparse.Namespace) -> int:
    from .stores import CLASSIC, find_store

    store = find_store(args.root, again=["draw", args.ref])
    if store.kind == CLASSIC:
        stack = overlay2_stack(store.root, args.ref, args.impl, container=args.container,
                               with_containers=not args.no_container)
    else:
        from .containerd_tools import containerd_stack

        stack = containerd_stack(store.root, args.ref, args.impl, container=args.container,
                                 with_containers=not args.no_container)
    if args.svg:
        target = Path(args.svg).expanduser()
        if not target.parent.is_dir():
            raise DockerLabError(f"--svg {target}: directory {target.parent} does not exist")
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(render_svg(stack), encoding="utf-8")
        os.replace(tmp, target)
        print(f"wrote {target}")
    else:
        print(render_text(stack))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("draw", help="an image's layer stack as boxes (base at the bottom), or as SVG")
    p.add_argument("ref", help="nginx, nginx:latest, a short or full image id")
    p.add_argument("--root", default=None, help="the image store (default: /var/lib/docker, else /var/lib/containerd)")
    p.add_argument("--impl", default=default_impl(), help="labs (your code, the reference where not written) or solutions")
    p.add_argument("--container", default=None, help="the container drawn on top (default: the image's first, by name)")
    p.add_argument("--no-container", action="store_true", help="the image's layers only")
    p.add_argument("--svg", default=None, help="write an SVG file instead of printing")
    p.set_defaults(func=_cmd_draw)
