"""The builder's entry points: plan a root from the catalogue and write it."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence

from .catalogue import CONTAINERS, IMAGES
from .plan import CANONICAL_SEED, Plan, make_plan
from .truth import RootTruth
from .writer import write_plan

__all__ = ["DegradedRootWarning", "build_root", "plan_root"]


class DegradedRootWarning(UserWarning):
    """The file system refused something a root daemon writes; the root uses a fallback form."""


def plan_root(
    *,
    seed: int = CANONICAL_SEED,
    images: Sequence[str] | None = None,
    host_seed: int | None = None,
    containers: bool = True,
) -> Plan:
    """Plan a root from the catalogue without writing anything (see :func:`make_plan`)."""
    return make_plan(
        IMAGES, CONTAINERS, seed=seed, images=images, host_seed=host_seed, with_containers=containers
    )


def build_root(
    target: str | os.PathLike[str],
    *,
    seed: int = CANONICAL_SEED,
    images: Sequence[str] | None = None,
    host_seed: int | None = None,
    containers: bool = True,
) -> RootTruth:
    """Write a Docker data root at ``target`` (which must not exist) and return its truth.

    ``seed`` decides the layers' content and so every content-addressed id; ``host_seed``
    (default ``seed``) decides the ids a daemon draws at random. ``images`` defaults to the
    whole catalogue. Degraded writes (no mknod, no ``trusted.`` xattrs) are reported as a
    :class:`DegradedRootWarning` and in ``truth.notes``.
    """
    plan = plan_root(seed=seed, images=images, host_seed=host_seed, containers=containers)
    notes = write_plan(plan, target)
    for note in notes:
        warnings.warn(f"{os.fspath(target)}: {note}", DegradedRootWarning, stacklevel=2)
    return plan.truth(notes)
