"""Small text helpers shared by the student's tools (no pytest needed to import them)."""

from __future__ import annotations

import os
import re

__all__ = ["shorten_ids"]

_HEX64 = re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")


def shorten_ids(text: str) -> str:
    """Every 64-hex id in ``text`` cut to 12 hex digits + ``…``, or longer where needed to tell
    it from another id of the same text (the whole id when they differ only at the end)."""
    ids = sorted(set(_HEX64.findall(text)))
    keep: dict[str, int] = {}
    for i, value in enumerate(ids):
        common = 0
        for other in ids[max(0, i - 1): i + 2]:  # sorted: the closest ids are the neighbours
            if other != value:
                common = max(common, len(os.path.commonprefix([value, other])))
        keep[value] = max(12, common + 1)
    return _HEX64.sub(lambda m: m.group(0) if keep[m.group(0)] >= 64 else m.group(0)[: keep[m.group(0)]] + "…", text)
