"""Seeds derived from seeds: stable across runs and Pythons (``hash()`` is salted per run)."""

from __future__ import annotations

import hashlib

__all__ = ["derived_seed"]


def derived_seed(seed: int, *names: str) -> int:
    """A stable 64-bit seed for ``names`` under ``seed``."""
    text = ":".join([str(seed), *names]).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big")
