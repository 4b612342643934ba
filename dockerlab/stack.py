"""An image's layer stack as rows of labelled fields: what ``inspect`` and ``draw`` show.

The model is store-neutral on purpose: a :class:`Stack` is a list of :class:`Row` (base first),
each a kind (``layer``, ``init``, ``container``), ordered ``(label, value)`` fields and the other
images sharing it. :func:`overlay2_stack` fills it from an overlay2 root by composing the lab
functions (the reference reader in ``solutions/``, or the student's ``labs/``); a reader of
another store (containerd's snapshots) only has to produce the same rows for ``draw`` to work.

With ``impl="labs"`` each lab function is the student's where it is written and the reference
where it still raises ``NotImplementedError``; :attr:`Stack.sources` says which is which.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from fakeroot_builder.errors import DockerLabError, UnknownReferenceError
from fakeroot_builder.formats import read_json

from .impl import Implementation, MissingFunction, load
from .labinfo import labs as all_labs
from .labinfo import repo_root

__all__ = ["Row", "Stack", "check_impl", "overlay2_stack"]


@dataclass
class Row:
    """One layer of a stack: ``kind`` is ``layer``, ``init`` or ``container``."""

    kind: str
    title: str
    fields: list[tuple[str, str]]
    shared_with: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)  # the raw values (full ids, ints), for JSON


@dataclass
class Stack:
    """An image (and maybe one container on it): rows base first, and where each answer came from."""

    ref: str
    image_id: str
    refs: list[str]
    store: str
    rows: list[Row]
    containers: list[str] = field(default_factory=list)  # every container of the image, by name
    sources: dict[str, str] = field(default_factory=dict)  # function -> "yours" | "reference"


def check_impl(impl: str) -> None:
    """A clear error for an ``--impl`` that names nothing, listing what exists."""
    if impl == "labs" or (impl == "solutions" and (repo_root() / "solutions").is_dir()):
        return
    if impl == "solutions":
        raise DockerLabError("--impl solutions: this repository has no solutions/ (a student copy); use --impl labs")
    folder = Path(impl).expanduser()
    if folder.is_dir() and (folder / "labs").is_dir():
        return
    known = "labs (your code in labs/)"
    if (repo_root() / "solutions").is_dir():
        known += ", solutions (the reference reader)"
    hint = " (did you mean --impl labs?)" if impl.rstrip("0123456789") in ("lab", "labs", "lab_") else ""
    raise DockerLabError(f"--impl {impl!r} is not a known implementation{hint}: use {known} or a folder holding labs/")


class _Mixed:
    """A lab's functions: the student's where written, the reference's where not (recorded)."""

    def __init__(self, lab_id: str, sources: dict[str, str]) -> None:
        self.mine = load(lab_id, "labs")
        self.reference: Implementation | None = load(lab_id, "solutions") if (repo_root() / "solutions").is_dir() else None
        self.sources = sources

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("__"):
            raise AttributeError(name)
        mine, reference, sources = getattr(self.mine, name), self.reference, self.sources

        def call(*args: Any) -> Any:
            if sources.get(name) != "reference":
                try:
                    result = mine(*args)
                    sources.setdefault(name, "yours")
                    return result
                except (NotImplementedError, MissingFunction):
                    if reference is None:
                        raise DockerLabError(f"your {name}() ({lab_of(name)}) is not written yet, and this copy of the"
                                             " course has no reference reader to stand in for it") from None
                except DockerLabError:
                    raise
                except Exception as exc:
                    raise DockerLabError(f"your {name}() ({lab_of(name)}) raised {type(exc).__name__}: {exc}") from None
            sources[name] = "reference"
            return getattr(reference, name)(*args)

        return call


def _readers(impl: str, sources: dict[str, str]) -> tuple[Any, Any]:
    check_impl(impl)
    if impl == "labs":
        return _Mixed("lab1", sources), _Mixed("lab2", sources)
    return load("lab1", impl), load("lab2", impl)


def _short(value: str | None) -> str:
    return "-" if value is None else value.removeprefix("sha256:")[:12]


def _images(root: str, lab1: Any) -> dict[str, list[str]]:
    """Every image id of the root and its references (through the reader's own functions)."""
    content = os.path.join(root, "image", "overlay2", "imagedb", "content", "sha256")
    out = {}
    for name in sorted(os.listdir(content)) if os.path.isdir(content) else []:
        image_id = f"sha256:{name}"
        out[image_id] = lab1.image_refs(root, image_id)
    return out


def _containers_of(root: str, image_id: str) -> list[tuple[str, str]]:
    """(name, id) of the containers made from ``image_id``, by name."""
    base = os.path.join(root, "containers")
    found = []
    for cid in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        config = os.path.join(base, cid, "config.v2.json")
        try:
            data = read_json(config)
        except (DockerLabError, OSError):
            continue
        if data.get("Image") == image_id:
            found.append((str(data.get("Name", "")).lstrip("/") or cid[:12], cid))
    return sorted(found)


def overlay2_stack(root: str, ref: str, impl: str = "solutions", container: str | None = None,
                   with_containers: bool = True) -> Stack:
    """The stack of image ``ref`` in an overlay2 root, base first, plus one container's
    ``-init`` and RW layers on top (``container``, or the image's first container by name)."""
    sources: dict[str, str] = {}
    lab1, lab2 = _readers(impl, sources)
    try:
        image_id = lab1.resolve_image(root, ref)
    except UnknownReferenceError:
        images = _images(root, load("lab1", "solutions") if (repo_root() / "solutions").is_dir() and impl == "labs" else lab1)
        names = sorted({r for refs in images.values() for r in refs if "@" not in r})
        raise DockerLabError(f"no image {ref!r} in {root}; its images are: {', '.join(names) or '(none)'}") from None
    layer_ids = lab1.image_layer_ids(root, ref)
    others: dict[str, list[str]] = {}  # db id -> other images having it
    for other_id, refs in _images(root, lab1).items():
        if other_id == image_id:
            continue
        tag = next((r for r in refs if "@" not in r), other_id[7:19])
        for db_id in lab1.chain_ids(lab1.image_layer_ids(root, other_id)):
            others.setdefault(db_id, []).append(tag)
    rows = []
    for n, (layer_id, db_id) in enumerate(zip(layer_ids, lab1.chain_ids(layer_ids)), 1):
        entry = lab1.read_layer(root, db_id)
        link = lab2.read_link(root, entry["cache_id"])
        values = {"layer_id": layer_id, "db_id": db_id, "cache_id": entry["cache_id"], "parent": entry["parent"],
                  "size": entry["size"], "link": link, "diff_dir": str(lab1.layer_diff_dir(root, ref, layer_id))}
        fields = [("layer id", _short(layer_id)),
                  ("db id", _short(db_id) + (" (= layer id)" if db_id == layer_id else "")),
                  ("cache-id", _short(entry["cache_id"])), ("link", f"l/{link}"), ("size", f"{entry['size']} B")]
        rows.append(Row("layer", f"layer {n}" + (" (base)" if n == 1 else ""), fields, sorted(set(others.get(db_id, []))), values))
    refs = lab1.image_refs(root, image_id)
    containers = _containers_of(root, image_id) if with_containers else []
    chosen = None
    if container is not None:
        matches = [c for c in containers if container in (c[0], c[1]) or c[1].startswith(container)]
        if len(matches) != 1:
            names = ", ".join(name for name, _ in containers) or "(none)"
            raise DockerLabError(f"no single container {container!r} of {ref}; its containers are: {names}")
        chosen = matches[0]
    elif containers:
        chosen = containers[0]
    if chosen is not None:
        rows += _container_rows(root, chosen, lab2)
    return Stack(ref, image_id, [r for r in refs if "@" not in r], "overlay2", rows,
                 [name for name, _ in containers], sources)


def _container_rows(root: str, chosen: tuple[str, str], lab2: Any) -> list[Row]:
    name, cid = chosen
    options = dict(part.split("=", 1) for part in lab2.mount_options(root, cid).split(","))
    upper = Path(options["upperdir"]).parent.name  # <root>/overlay2/<mount-id>/diff
    init_link = os.path.basename(options["lowerdir"].split(":")[0])
    init = lab2.resolve_link(root, init_link)
    rows = []
    for kind, title, cache_id in (("init", f"{name}-init", init), ("container", f"{name} (container, read-write)", upper)):
        link = lab2.read_link(root, cache_id)
        fields = [("cache-id", _short(cache_id) + ("-init" if cache_id.endswith("-init") else "")), ("link", f"l/{link}")]
        if kind == "container":
            fields.insert(0, ("container", cid[:12]))
        rows.append(Row(kind, title, fields, [], {"cache_id": cache_id, "link": link, "container_id": cid}))
    return rows


def lab_of(function: str) -> str:
    """``lab1`` for a function of lab 1's tasks (for "yours / reference" notes)."""
    for lab in all_labs():
        for task in lab.tasks:
            if function in task.functions:
                return f"{lab.id} task {task.number}"
    return "?"
