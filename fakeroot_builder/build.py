"""The builder's entry points: plan a root from the catalogue and write it."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence

from .catalogue import CONTAINERS, IMAGES
from .errors import BuildError
from .plan import CANONICAL_SEED, Plan, make_plan
from .truth import RootTruth

__all__ = ["STORES", "DegradedRootWarning", "build_root", "plan_root", "write_store"]

#: The image stores a root can be written as: Docker's classic overlay2 layout
#: (``/var/lib/docker``) or Docker 29's containerd image store (``/var/lib/containerd``).
STORES = ("classic", "containerd")


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


def write_store(plan: Plan, target: str | os.PathLike[str], store: str = "classic") -> RootTruth:
    """Write ``plan`` at ``target`` (which must not exist) as ``store`` and return its truth."""
    if store == "classic":
        from . import writer  # looked up at call time (tests interrupt writer.write_plan)

        return plan.truth(writer.write_plan(plan, target))
    if store == "containerd":
        from .containerd_store import plan_containerd, write_containerd

        cplan = plan_containerd(plan)
        return cplan.truth(write_containerd(cplan, target))
    raise BuildError(f"unknown store {store!r}; choose one of: {', '.join(STORES)}")


def build_root(
    target: str | os.PathLike[str],
    *,
    seed: int = CANONICAL_SEED,
    images: Sequence[str] | None = None,
    host_seed: int | None = None,
    containers: bool = True,
    store: str = "classic",
) -> RootTruth:
    """Write a Docker data root at ``target`` (which must not exist) and return its truth.

    ``seed`` decides the layers' content and so every content-addressed id; ``host_seed``
    (default ``seed``) decides the ids a daemon draws at random. ``images`` defaults to the
    whole catalogue. ``store`` is ``classic`` (``/var/lib/docker`` with overlay2) or
    ``containerd`` (``/var/lib/containerd`` as Docker 29 leaves it): the same images, layers
    and containers either way. Degraded writes (no mknod, no ``trusted.`` xattrs) are reported
    as a :class:`DegradedRootWarning` and in ``truth.notes``.
    """
    if store not in STORES:
        raise BuildError(f"unknown store {store!r}; choose one of: {', '.join(STORES)}")
    plan = plan_root(seed=seed, images=images, host_seed=host_seed, containers=containers)
    truth = write_store(plan, target, store)
    for note in truth.notes:
        warnings.warn(f"{os.fspath(target)}: {note}", DegradedRootWarning, stacklevel=2)
    return truth
