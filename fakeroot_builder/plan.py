"""Turn catalogue recipes into everything a root holds, in memory, before a byte is written.

The plan is pure: same seeds and selection, same plan. It computes the content-addressed ids
(layer ids, db ids, image ids, digests) from real bytes, and draws the random ones (cache-ids,
links, container ids) from the host's seeded Faker in a fixed order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from collections.abc import Set as PathSet
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from . import CANONICAL_SEED, documents
from .errors import UnknownImageError
from .formats import source_repository
from .layer import Entry, Layer, sha256_digest
from .provider import host_generator, reseeded_faker
from .recipe import ContainerRecipe, ImageRecipe, LayerRecipe, derived_seed
from .truth import Changes, ContainerTruth, ImageTruth, LayerTruth, RootTruth

__all__ = ["CANONICAL_SEED", "ContainerPlan", "ImagePlan", "LayerPlan", "Plan", "chain_ids", "make_plan"]



def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """ChainIDs of a stack: the base's is its DiffID, then sha256 of ``"<parent chain> <diff>"``."""
    out: list[str] = []
    for diff_id in diff_ids:
        out.append(diff_id if not out else sha256_digest(f"{out[-1]} {diff_id}".encode()))
    return out


@dataclass
class LayerPlan:
    """A layer in the layer store: its content, where it sits, and its random names."""

    layer: Layer
    db_id: str
    parent: LayerPlan | None
    cache_id: str
    link: str
    has_child: bool = False
    changes: Changes = field(default_factory=Changes)

    def chain(self) -> list[LayerPlan]:
        """This layer and every one below it, nearest first."""
        out, node = [], self
        while node is not None:
            out.append(node)
            node = node.parent
        return out

    def lower(self) -> tuple[str, ...]:
        """The links of the layers below, nearest first: the ``lower`` file's entries."""
        return tuple(p.link for p in self.chain()[1:])


@dataclass
class ImagePlan:
    """An image: config bytes, manifest bytes and its stack of layers."""

    recipe: ImageRecipe
    config_bytes: bytes
    manifest_bytes: bytes | None
    layers: list[LayerPlan]
    refs: dict[str, str]  # repositories.json key -> repository name
    last_updated: str | None
    config: dict[str, Any]  # the container config the image ends with (Env, Cmd…)

    @property
    def image_id(self) -> str:
        """sha256 of the config bytes."""
        return sha256_digest(self.config_bytes)

    @property
    def manifest_digest(self) -> str | None:
        """sha256 of the manifest bytes (pulled images only)."""
        return sha256_digest(self.manifest_bytes) if self.manifest_bytes else None


@dataclass
class ContainerPlan:
    """A container: its documents and the RW and init layers on top of its image."""

    recipe: ContainerRecipe
    id: str
    name: str
    image: ImagePlan
    mount_id: str
    link: str
    init_link: str
    created: str
    config_bytes: bytes
    rw: Layer
    changes: Changes
    work_leftovers: tuple[str, str | None]  # names in work/work of the init and RW layers
    init: Layer  # the -init layer: what `docker create` adds on top of this image
    #: what overlayfs wrote while the layers were mounted: overlay2-relative path → {name: value}
    kernel_xattrs: dict[str, dict[str, dict[str, bytes]]]

    @property
    def init_id(self) -> str:
        """The init layer's directory name."""
        return self.mount_id + "-init"


@dataclass
class Plan:
    """Everything a root holds; :func:`fakeroot_builder.writer.write_plan` puts it on disk."""

    seed: int
    host_seed: int
    images: list[ImagePlan]
    layers: dict[str, LayerPlan]  # by db id, in the order they were first pulled
    containers: list[ContainerPlan]
    pull_order: list[tuple[str, LayerPlan]]  # (source repository, layer) as pulls registered them

    def truth(self, notes: Iterable[str] = ()) -> RootTruth:
        """The ground truth of this plan."""
        return RootTruth(
            seed=self.seed,
            host_seed=self.host_seed,
            images=tuple(_image_truth(i) for i in self.images),
            containers=tuple(_container_truth(c) for c in self.containers),
            notes=tuple(notes),
            forms=dict(getattr(notes, "forms", {})),
        )


def _layer_truth(lp: LayerPlan) -> LayerTruth:
    return LayerTruth(
        layer_id=lp.layer.diff_id,
        db_id=lp.db_id,
        cache_id=lp.cache_id,
        link=lp.link,
        parent=lp.parent.db_id if lp.parent else None,
        size=lp.layer.size,
        compressed_digest=lp.layer.compressed_digest,
        compressed_size=len(lp.layer.blob),
        lower=lp.lower(),
        changes=lp.changes,
    )


def _image_truth(ip: ImagePlan) -> ImageTruth:
    return ImageTruth(
        name=ip.recipe.name,
        refs=tuple(ip.refs),
        image_id=ip.image_id,
        manifest_digest=ip.manifest_digest,
        layers=tuple(_layer_truth(lp) for lp in ip.layers),
    )


def _container_truth(cp: ContainerPlan) -> ContainerTruth:
    top = cp.image.layers[-1]
    return ContainerTruth(
        id=cp.id,
        name=cp.name,
        image=cp.recipe.image,
        image_id=cp.image.image_id,
        state=cp.recipe.state,
        mount_id=cp.mount_id,
        init_id=cp.init_id,
        link=cp.link,
        init_link=cp.init_link,
        parent=top.db_id,
        lower=(cp.init_link, top.link, *top.lower()),
        changes=cp.changes,
    )


# -- changes a layer makes -----------------------------------------------------------------------


def _still_visible(below: PathSet[str], entries: Sequence[Entry]) -> PathSet[str]:
    """The paths of ``below`` that a layer with ``entries`` lets through (overlay semantics).

    A whiteout hides its path and everything under it; an opaque directory hides what the
    layers below had in it; a file or link over a directory hides what that directory held.
    """
    gone = {"/" + e.path for e in entries if e.kind == "whiteout"}
    covers = {"/" + e.path for e in entries if e.kind != "dir"} & _ancestors(below)
    if not covers:  # the usual case: nothing of this layer sits over a directory below
        return below - gone

    def hidden(path: str) -> bool:
        if path in gone:
            return True
        head = path.rpartition("/")[0]
        while head:
            if head in covers:
                return True
            head = head.rpartition("/")[0]
        return False

    return {p for p in below if not hidden(p)}


def _ancestors(paths: PathSet[str]) -> set[str]:
    """Every directory above some path of ``paths`` (``/a`` and ``/a/b`` for ``/a/b/c``)."""
    out: set[str] = set()
    level = set(paths)
    while level:  # one level up at a time
        level = {path.rpartition("/")[0] for path in level} - out
        level.discard("")
        out |= level
    return out


def _stacked_on(below: PathSet[str], entries: Sequence[Entry]) -> tuple[Changes, frozenset[str]]:
    """What a layer with ``entries`` changes over the paths ``below`` it, and the paths visible
    through it.

    What sits in an opaque directory of this same layer is added, even if a lower layer had
    the same name (``docker diff`` says ``A``).
    """
    seen = _still_visible(below, entries)
    added, changed, deleted, opaque = [], [], [], []
    for e in entries:
        path = "/" + e.path
        if e.kind == "whiteout":
            deleted.append(path)
        elif e.kind == "opaque":
            opaque.append(path)
        elif e.kind == "dir":
            if path not in seen:
                added.append(path)
        elif path in seen:
            changed.append(path)
        else:
            added.append(path)
    changes = Changes(*(tuple(sorted(x)) for x in (added, changed, deleted, opaque)))
    own = {"/" + e.path for e in entries if e.kind not in ("whiteout", "opaque")}
    return changes, frozenset(seen | own)


def _changes(entries: Sequence[Entry], below: PathSet[str]) -> Changes:
    """Classify a layer's entries against the paths the layers below show through it."""
    return _stacked_on(below, entries)[0]


def _apply(paths: PathSet[str], entries: Sequence[Entry]) -> frozenset[str]:
    """The paths visible after stacking ``entries`` on ``paths``."""
    return _stacked_on(paths, entries)[1]


# -- content-derived layers, shared by the plans of one process -----------------------------------

#: Layers already built in this process, by everything their bytes derive from: the content seed,
#: the recipe (its name and function) and the step that made it. The roots a grader builds for one
#: student share their content seed ("full", "other-host", "small"… differ only in host seed or
#: selection), so each layer's entries, tar, tar-split and gzip blob are made once, not per root.
#: A :class:`Layer` is immutable (its derived bytes are cached on it), so sharing it changes no byte.
_CONTENT_LAYERS: dict[tuple[Any, ...], Layer] = {}
#: What a layer changes and the paths visible through it, by db id. A db id (ChainID) names the
#: whole stack's content, so both follow from it alone, whatever the host or the selection.
_STACKED: dict[str, tuple[Changes, frozenset[str]]] = {}
_CONTENT_MAX = 512  # a whole catalogue's layers for a few seeds; oldest dropped first


def _remember(memo: dict[Any, Any], key: Any, value: Any) -> None:
    while len(memo) >= _CONTENT_MAX:
        del memo[next(iter(memo))]
    memo[key] = value


def _content_layer(seed: int, recipe: LayerRecipe, created_by: str, moment: Any) -> Layer:
    key = (seed, recipe.name, recipe.make, created_by)
    layer = _CONTENT_LAYERS.get(key)
    if layer is None:
        mtime, _ = moment("layer", recipe.name)  # derived from the content seed only
        layer = Layer(tuple(recipe.build(seed, mtime)), created_by)
        _remember(_CONTENT_LAYERS, key, layer)
    return layer


def _stacked(db_id: str, layer: Layer, below: frozenset[str]) -> tuple[Changes, frozenset[str]]:
    """What ``layer`` changes over the paths ``below`` it, and the paths visible through it."""
    found = _STACKED.get(db_id)
    if found is None:
        found = _stacked_on(below, layer.entries)
        _remember(_STACKED, db_id, found)
    return found


# -- the planner ---------------------------------------------------------------------------------


class _Planner:
    def __init__(
        self,
        catalogue: Sequence[ImageRecipe],
        containers: Sequence[ContainerRecipe],
        seed: int,
        host_seed: int,
    ) -> None:
        self.catalogue = {r.name: r for r in catalogue}
        self.container_recipes = containers
        self.seed = seed
        self.host_seed = host_seed
        self.host = host_generator(derived_seed(host_seed, "host"))
        self.layer_cache: dict[str, Layer] = {}
        self.layers: dict[str, LayerPlan] = {}
        self.paths: dict[str, frozenset[str]] = {"": frozenset()}  # visible paths by db id
        self.pull_order: list[tuple[str, LayerPlan]] = []
        self.clock = datetime(2024, 1, 1, tzinfo=timezone.utc) + timedelta(
            seconds=int(reseeded_faker(derived_seed(host_seed, "clock")).random.uniform(0, 3e7))
        )

    # time ---------------------------------------------------------------------------------------
    def _moment(self, *names: str) -> tuple[datetime, int]:
        fake = reseeded_faker(derived_seed(self.seed, "time", *names))
        return fake.build_date(), fake.random.randrange(1, 10**9)

    def _host_moment(self) -> str:
        self.clock += timedelta(seconds=self.host.random.uniform(5, 900))
        return documents.go_time(self.clock, self.host.random.randrange(1, 10**9))

    # layers -------------------------------------------------------------------------------------
    def _layer(self, recipe: LayerRecipe, created_by: str) -> Layer:
        if recipe.name not in self.layer_cache:
            self.layer_cache[recipe.name] = _content_layer(self.seed, recipe, created_by, self._moment)
        return self.layer_cache[recipe.name]

    def _stack(self, layers: Sequence[Layer], repository: str | None) -> list[LayerPlan]:
        stack: list[LayerPlan] = []
        ids = chain_ids([layer.diff_id for layer in layers])
        for layer, db_id in zip(layers, ids):
            parent = stack[-1] if stack else None
            lp = self.layers.get(db_id)
            if lp is None:
                changes, self.paths[db_id] = _stacked(db_id, layer, self.paths[parent.db_id if parent else ""])
                lp = LayerPlan(
                    layer=layer,
                    db_id=db_id,
                    parent=parent,
                    cache_id=self.host.cache_id(),
                    link=self.host.overlay_link(),
                    changes=changes,
                )
                self.layers[db_id] = lp
                if parent is not None:
                    parent.has_child = True
            if repository is not None:
                self.pull_order.append((repository, lp))
            stack.append(lp)
        return stack

    # images -------------------------------------------------------------------------------------
    def _recipe(self, name: str) -> ImageRecipe:
        try:
            return self.catalogue[_normalize(name)]
        except KeyError:
            known = ", ".join(self.catalogue)
            raise UnknownImageError(f"no image {name!r} in the catalogue; it has: {known}") from None

    def _history(self, recipe: ImageRecipe) -> tuple[list[dict[str, Any]], list[Layer], dict[str, Any]]:
        """Full history, layers and config of ``recipe``, its bases' first (like FROM)."""
        if recipe.base:
            history, layers, config = self._history(self._recipe(recipe.base))
        else:
            history, layers, config = [], [], {}
        config = dict(config)
        for key, value in recipe.config.items():
            config[key] = value
        when, nanos = self._moment("image", recipe.name)
        for i, step in enumerate(recipe.steps):
            moment = when + timedelta(seconds=i * 2 + (nanos % 7))
            entry: dict[str, Any] = {
                "created": documents.go_time(moment, (nanos * (i + 1)) % 10**9 or 1),
                "created_by": step.created_by,
            }
            if step.layer is None:
                entry["empty_layer"] = True
            else:
                layers.append(self._layer(step.layer, step.created_by))
            history.append(entry)
        return history, layers, config

    def image(self, name: str) -> ImagePlan:
        recipe = self._recipe(name)
        history, layers, config = self._history(recipe)
        diff_ids = [layer.diff_id for layer in layers]
        parent_image = sha256_digest(f"{recipe.name} parent".encode())
        config_bytes = documents.image_config(
            config=config,
            parent_image=parent_image,
            last_step=recipe.steps[-1].created_by.removeprefix("/bin/sh -c "),
            created=history[-1]["created"],
            history=history,
            diff_ids=diff_ids,
        )
        repo = recipe.name.rsplit(":", 1)[0]
        source = source_repository(repo)
        stack = self._stack(layers, source if recipe.pulled else None)
        refs = {tag: repo for tag in recipe.all_tags}
        manifest_bytes = None
        last_updated = None
        if recipe.pulled:
            manifest_bytes = documents.manifest(
                config_bytes,
                sha256_digest(config_bytes),
                [(len(layer.blob), layer.compressed_digest) for layer in layers],
            )
            refs[f"{repo}@{sha256_digest(manifest_bytes)}"] = repo
            if len(recipe.all_tags) > 1:
                last_updated = self._host_moment()  # `docker tag` wrote it
        else:
            last_updated = self._host_moment()
        return ImagePlan(recipe, config_bytes, manifest_bytes, stack, refs, last_updated, config)

    # containers ---------------------------------------------------------------------------------
    def container(self, recipe: ContainerRecipe, image: ImagePlan, index: int) -> ContainerPlan:
        cid = self.host.container_id()
        name = self.host.container_name()
        mount_id = self.host.cache_id()
        init_link = self.host.overlay_link()
        link = self.host.overlay_link()
        created = self._host_moment()
        state = _CREATED_STATE
        if recipe.state == "exited":
            state = _CREATED_STATE | {"StartedAt": self._host_moment(), "FinishedAt": self._host_moment()}
        config_bytes = documents.container_config(
            container_id=cid,
            name=name,
            created=created,
            image_ref=recipe.image,
            image_id=image.image_id,
            config=image.config,
            cmd=recipe.cmd,
            state=state,
            started=recipe.state == "exited",
            sandbox_id=self.host.cache_id() if recipe.state == "exited" else "",
        )
        # overlayfs leaves a whiteout named after an inode number in work/work of what it mounted
        leftovers = [f"#{self.host.random.randrange(0x40, 0x200):x}" for _ in range(2)]
        mtime, _ = self._moment("container", str(index))
        rw = Layer(tuple(recipe.rw_entries(self.seed, f"{index}:{recipe.image}", mtime)))
        image.layers[-1].has_child = True
        image_paths = self.paths[image.layers[-1].db_id]
        init = init_layer(image_paths)
        below = _apply(image_paths, init.entries)
        kernel = {
            # the init layer's files are unlinked and created anew: only its dirs are copied up
            f"{mount_id}-init/diff": self._kernel_marks([e for e in init.entries if e.kind == "dir"], image_paths),
            f"{mount_id}/diff": self._kernel_marks(rw.entries, below),
        }
        changes = _changes(rw.entries, below)
        return ContainerPlan(
            recipe=recipe,
            id=cid,
            name=name,
            image=image,
            mount_id=mount_id,
            link=link,
            init_link=init_link,
            created=created,
            config_bytes=config_bytes,
            rw=rw,
            changes=changes,
            work_leftovers=(
                leftovers[0] if _init_unlinks_a_file(image_paths) else None,
                leftovers[1] if recipe.state == "exited" and _made_whiteouts(rw.entries) else None,
            ),
            init=init,
            kernel_xattrs=kernel,
        )

    def _kernel_marks(self, entries: Sequence[Entry], below: PathSet[str]) -> dict[str, dict[str, bytes]]:
        """The xattrs overlayfs leaves in a layer it mounted (seen on a real daemon):
        ``overlay.uuid`` on ``diff/``; ``overlay.origin`` (a file handle) on every entry copied
        up from below; ``overlay.impure`` on each directory holding such an entry."""
        random = self.host.random
        marks: dict[str, dict[str, bytes]] = {"": {"overlay.uuid": random.getrandbits(128).to_bytes(16, "big")}}
        recreated = {e.path for e in entries if e.kind == "opaque"}  # rm -rf + mkdir: new, not copied
        for e in entries:
            if e.kind in ("whiteout", "opaque") or e.path in recreated or "/" + e.path not in below:
                continue
            handle = b"\x00\xfb\x1d\x00\x01" + random.getrandbits(192).to_bytes(24, "big")
            marks.setdefault(e.path, {})["overlay.origin"] = handle
            marks.setdefault(e.path.rpartition("/")[0], {})["overlay.impure"] = b"y"
        return marks

    def plan(self, names: Sequence[str], with_containers: bool) -> Plan:
        images = [self.image(n) for n in names]
        by_name = {i.recipe.name: i for i in images}
        containers = []
        if with_containers:
            for index, recipe in enumerate(self.container_recipes):
                image = by_name.get(_normalize(recipe.image))
                if image is not None:
                    containers.append(self.container(recipe, image, index))
        return Plan(self.seed, self.host_seed, images, self.layers, containers, self.pull_order)


_CREATED_STATE: dict[str, Any] = {
    "Running": False,
    "Paused": False,
    "Restarting": False,
    "OOMKilled": False,
    "RemovalInProgress": False,
    "Dead": False,
    "Pid": 0,
    "ExitCode": 0,
    "Error": "",
    "StartedAt": "0001-01-01T00:00:00Z",
    "FinishedAt": "0001-01-01T00:00:00Z",
    "Health": None,
}

#: What ``docker create`` puts in a container's ``-init`` layer (moby's initlayer): the files are
#: always (re)created; the directories only when the image does not have them already.
_INIT_FILES: tuple[Entry, ...] = (
    Entry(".dockerenv", "file", 0o755),
    Entry("dev", "dir", 0o755),
    Entry("dev/console", "file", 0o755),
    Entry("etc", "dir", 0o755),
    Entry("etc/hostname", "file", 0o755),
    Entry("etc/hosts", "file", 0o755),
    Entry("etc/resolv.conf", "file", 0o755),
    Entry("etc/mtab", "symlink", 0o777, target="/proc/mounts"),
)
_INIT_DIRS = ("dev/pts", "dev/shm", "proc", "sys")


def _init_unlinks_a_file(image_paths: PathSet[str]) -> bool:
    """Whether ``docker create`` deleted something while it filled the init layer.

    moby unlinks each init file's path before creating it; where the image has that path, the
    unlink makes overlayfs create a whiteout, and since Linux 5.8 overlayfs keeps one whiteout
    in ``work/work`` to hard-link from. An image without any of those paths (busybox) leaves
    ``work/work`` empty: the real daemon showed both.
    """
    return any("/" + e.path in image_paths for e in _INIT_FILES if e.kind != "dir")


def _made_whiteouts(entries: Sequence[Entry]) -> bool:
    """Whether a run that left ``entries`` deleted something (see :func:`_init_unlinks_a_file`)."""
    return any(e.kind in ("whiteout", "opaque") for e in entries)


def init_layer(image_paths: PathSet[str] = frozenset()) -> Layer:
    """The ``-init`` layer of a container on an image whose visible paths are ``image_paths``."""
    dirs = [Entry(d, "dir", 0o755) for d in _INIT_DIRS if "/" + d not in image_paths]
    return Layer(_INIT_FILES + tuple(dirs))


def _normalize(name: str) -> str:
    """``nginx`` → ``nginx:latest``; leaves digests and explicit tags alone."""
    last = name.rsplit("/", 1)[-1]
    return name if (":" in last or "@" in last) else name + ":latest"


def make_plan(
    catalogue: Sequence[ImageRecipe],
    containers: Sequence[ContainerRecipe],
    *,
    seed: int = CANONICAL_SEED,
    images: Sequence[str] | None = None,
    host_seed: int | None = None,
    with_containers: bool = True,
) -> Plan:
    """Plan a root holding ``images`` (default: the whole catalogue) for ``seed``.

    ``seed`` decides layer content, and so every content-addressed id. ``host_seed`` (default:
    ``seed``) decides what a daemon draws at random: the same images "pulled on another host"
    keep their layer ids and db ids but get new cache-ids, links and container ids.
    """
    planner = _Planner(catalogue, containers, seed, seed if host_seed is None else host_seed)
    names = [r.name for r in catalogue] if images is None else list(dict.fromkeys(_normalize(n) for n in images))
    for name in names:
        planner._recipe(name)  # fail early, naming the unknown image
    return planner.plan(names, with_containers)

