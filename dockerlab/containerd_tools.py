"""``inspect``, ``export`` and ``pull-log`` on a containerd root (Docker 29's image store).

As for the classic store (:mod:`dockerlab.export`), ids are never resolved here: the image's
target, manifest, config and layer blobs come from the lab 3 functions of the chosen
implementation. What this module adds is what Docker does with them:

- ``export`` writes the archive ``docker save`` writes since Docker 25: an OCI image layout
  (``oci-layout``, ``index.json``, ``blobs/sha256/<hex>``) plus Docker's ``manifest.json``, the
  blobs copied byte for byte from the content store (each checked against its digest), so the
  digests, DiffIDs and ChainIDs are the root's. ``docker load`` and ``ctr images import`` read
  it. An image whose target is an index is exported for the platform that is present
  (``docker save --platform``): the index's other manifests are not on disk.
- ``pull-log`` prints the transcript of the ``docker pull`` that brought the image: one
  ``<12 hex>: Pull complete`` per compressed layer blob, the ``Digest:`` of the target.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from fakeroot_builder import bbolt
from fakeroot_builder.errors import CorruptJSONError, LayerMismatchError, NotPulledError, UnknownReferenceError

from .export import _Member, _epoch_seconds, _familiar, _split_ref, pull_transcript, write_archive
from .export import _EPOCH
from .impl import Implementation, load

__all__ = ["containerd_stack", "export_containerd", "inspect_containerd", "pull_log_containerd", "render_containerd"]

_META_DB = os.path.join("io.containerd.metadata.v1.bolt", "meta.db")
_DISTRIBUTION_SOURCE = "containerd.io/distribution.source."


def _blob(lab3: Implementation, root: str, digest: str) -> bytes:
    """The bytes of blob ``digest``, checked against it (a blob is named by its own sha256)."""
    path = str(lab3.blob_path(root, digest))
    data = Path(path).read_bytes()
    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        raise LayerMismatchError(path, f"content does not hash to {digest}: the blob is corrupt")
    return data


def _tag_of(name: str, ref: str) -> tuple[str, str | None]:
    """``(familiar repository, tag)`` of an image record's name (``docker.io/library/nginx:latest``)."""
    repo, tag, digest = _split_ref(_familiar(name))
    return repo, None if digest else tag


def _members(root: str, ref: str, lab3: Implementation) -> list[_Member]:
    target = lab3.image_target(root, ref)
    manifest_digest = lab3.image_manifest(root, ref)
    manifest = _blob(lab3, root, manifest_digest)
    config_digest = lab3.image_config(root, ref)
    config = _blob(lab3, root, config_digest)
    layers = [_blob(lab3, root, d) for d in lab3.layer_digests(root, ref)]
    try:
        mtime = _epoch_seconds(json.loads(config).get("created", _EPOCH))
        media_type = json.loads(manifest).get("mediaType") or target["media_type"]
    except ValueError as exc:
        raise CorruptJSONError(str(lab3.blob_path(root, config_digest)), str(exc)) from None
    repo, tag = _tag_of(target["name"], ref)
    annotations = {"io.containerd.image.name": target["name"]}
    if tag:
        annotations["org.opencontainers.image.ref.name"] = tag
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": media_type, "digest": manifest_digest, "size": len(manifest), "annotations": annotations}
        ],
    }
    save_manifest = [
        {
            "Config": f"blobs/sha256/{config_digest[7:]}",
            "RepoTags": [f"{repo}:{tag}"] if tag else [],
            "Layers": [f"blobs/sha256/{d[7:]}" for d in lab3.layer_digests(root, ref)],
        }
    ]
    blobs = {manifest_digest: manifest, config_digest: config}
    blobs.update({d: data for d, data in zip(lab3.layer_digests(root, ref), layers)})
    members = [_Member("blobs/", mtime), _Member("blobs/sha256/", mtime)]
    members += [_Member(f"blobs/sha256/{d[7:]}", mtime, data=data) for d, data in sorted(blobs.items())]
    members += [
        _Member("index.json", mtime, data=json.dumps(index, separators=(",", ":")).encode() + b"\n"),
        _Member("manifest.json", mtime, data=json.dumps(save_manifest, separators=(",", ":")).encode() + b"\n"),
        _Member("oci-layout", mtime, data=b'{"imageLayoutVersion":"1.0.0"}'),
    ]
    return sorted(members, key=lambda m: m.name.rstrip("/").split("/"))


def export_containerd(root: str | os.PathLike[str], ref: str, out: str | os.PathLike[str], impl: str = "solutions",
                      *, force: bool = False) -> Path:
    """Write the ``docker save`` archive (OCI layout + manifest.json) of image ``ref`` of the
    containerd root ``root`` to ``out``; nothing is left behind on error."""
    return write_archive(_members(os.fspath(root), ref, load("lab3", impl)), out, force)


def _pull_source(root: str, digest: str) -> str | None:
    """The repository a blob was pulled from: its ``containerd.io/distribution.source.<host>`` label."""
    path = os.path.join(root, _META_DB)
    try:
        labels = bbolt.read(path).bucket("v1", "moby", "content", "blob", digest, "labels")
    except KeyError:
        return None
    for key, value in sorted(labels.items.items()):
        if key.decode().startswith(_DISTRIBUTION_SOURCE) and isinstance(value, bytes):
            return f"{key.decode()[len(_DISTRIBUTION_SOURCE):]}/{value.decode()}"
    return None


def pull_log_containerd(root: str | os.PathLike[str], ref: str, progress: bool = False, impl: str = "solutions") -> str:
    """What ``docker pull`` printed when it pulled image ``ref`` into this containerd root.

    The layer lines name the first 12 hex of each compressed blob, ``Digest:`` the image
    record's target (the index of a multi-platform image). An image without a
    ``containerd.io/distribution.source`` label was built or loaded, not pulled:
    :class:`NotPulledError`.
    """
    root_s = os.fspath(root)
    lab3 = load("lab3", impl)
    target = lab3.image_target(root_s, ref)
    if _pull_source(root_s, lab3.image_config(root_s, ref)) is None:
        raise NotPulledError(os.path.join(root_s, _META_DB), f"image {ref!r} was built or loaded here, not pulled")
    repo, tag = _tag_of(target["name"], ref)
    shorts = [d[7:19] for d in lab3.layer_digests(root_s, ref)]
    return pull_transcript(repo, tag or target["digest"], shorts, target["digest"], target["name"], progress)


def _short(value: str | None) -> str:
    return "-" if value is None else value.removeprefix("sha256:")[:12]


def _lab3(impl: str, sources: dict[str, str]) -> Any:
    """Lab 3's functions from ``impl``; with ``labs``, the student's where written, else the reference."""
    from .stack import _Mixed, check_impl

    check_impl(impl)
    return _Mixed("lab3", sources) if impl == "labs" else load("lab3", impl)


def _snapshot_keys(root: str) -> list[str]:
    """Every snapshot key of Docker's namespace (a listing of meta.db; nothing resolved)."""
    try:
        return sorted(k.decode() for k in bbolt.read(os.path.join(root, _META_DB)).bucket("v1", "moby", "snapshots", "overlayfs").items)
    except KeyError:
        return []


def containerd_stack(root: str, ref: str, impl: str = "solutions", container: str | None = None,
                     with_containers: bool = True) -> Any:
    """The stack of image ``ref`` in a containerd root as a :class:`dockerlab.stack.Stack`, base
    first, plus one container's ``-init`` and writable snapshots on top (``container``, or the
    image's first container by id). Every id comes from lab 3's functions of ``impl``."""
    from .stack import Row, Stack

    sources: dict[str, str] = {}
    lab3 = _lab3(impl, sources)
    try:
        target = lab3.image_target(root, ref)
    except UnknownReferenceError as exc:  # say what there is, as `docker images` would
        raise UnknownReferenceError(exc.path, f"{exc.problem}; its images are: {', '.join(lab3.image_names(root)) or '(none)'}") from None
    names = lab3.image_names(root)
    by_target: dict[str, list[str]] = {}
    for name in names:
        by_target.setdefault(lab3.image_target(root, name)["digest"], []).append(name)
    keys = lab3.image_snapshot_keys(root, ref)
    shared: dict[str, list[str]] = {}
    for digest, others in by_target.items():
        if digest != target["digest"]:
            for key in lab3.image_snapshot_keys(root, others[0]):
                shared.setdefault(key, []).append(_familiar(others[0]))
    rows = []
    layer_ids, digests = lab3.image_diff_ids(root, ref), lab3.layer_digests(root, ref)
    for n, (layer_id, digest, key) in enumerate(zip(layer_ids, digests, keys), 1):
        snap = lab3.read_snapshot(root, key)
        values = {"layer_id": layer_id, "digest": digest, "snapshot_key": key, "snapshot_id": snap["id"],
                  "kind": snap["kind"], "parent": snap["parent"], "fs_dir": str(lab3.snapshot_dir(root, key))}
        fields = [("DiffID", _short(layer_id)),
                  ("snapshot key", _short(key) + (" (= DiffID)" if key == layer_id else "")),
                  ("dir", f"snapshots/{snap['id']}"), ("blob", _short(digest))]
        rows.append(Row("layer", f"layer {n}" + (" (base)" if n == 1 else ""), fields, sorted(set(shared.get(key, []))), values))
    all_keys = _snapshot_keys(root)
    containers = sorted(k[: -len("-init")] for k in all_keys if k.endswith("-init") and k[: -len("-init")] in all_keys
                        and keys and lab3.read_snapshot(root, k)["parent"] == keys[-1]) if with_containers else []
    chosen = None
    if container is not None:
        matches = [c for c in containers if c.startswith(container)]
        if len(matches) != 1:
            raise UnknownReferenceError(os.path.join(root, _META_DB), f"no single container {container!r} of {ref}; "
                                        f"its containers are: {', '.join(c[:12] for c in containers) or '(none)'}")
        chosen = matches[0]
    elif containers:
        chosen = containers[0]
    if chosen is not None:
        mount = lab3.container_mount(root, chosen)
        for kind, key, title in (("init", f"{chosen}-init", f"{chosen[:12]}-init"),
                                 ("container", chosen, f"{chosen[:12]} (container, read-write)")):
            snap = lab3.read_snapshot(root, key)
            fields = [("snapshot key", key[:12] + ("-init" if kind == "init" else "")), ("dir", f"snapshots/{snap['id']}")]
            values = {"snapshot_key": key, "snapshot_id": snap["id"], "container_id": chosen}
            if kind == "container":
                values["mount"] = mount
            rows.append(Row(kind, title, fields, [], values))
    return Stack(ref, target["digest"], [_familiar(n) for n in by_target.get(target["digest"], [])], "containerd", rows,
                 [c[:12] for c in containers], sources)


def inspect_containerd(root: str, ref: str, impl: str = "solutions") -> dict[str, Any]:
    """``{"store", "image_id", "names", "config", "layers": [{layer_id, digest, snapshot_key,
    snapshot_id, kind, parent, fs_dir}]}`` of an image in a containerd root (Docker 29)."""
    stack = containerd_stack(root, ref, impl, with_containers=False)
    lab3 = _lab3(impl, stack.sources)
    names = [n for n in lab3.image_names(root) if lab3.image_target(root, n)["digest"] == stack.image_id]
    keys = ("layer_id", "digest", "snapshot_key", "snapshot_id", "kind", "parent", "fs_dir")
    info: dict[str, Any] = {
        "store": "containerd", "image_id": stack.image_id, "names": names, "config": lab3.image_config(root, ref),
        "layers": [{k: row.values[k] for k in keys} for row in stack.rows if row.kind == "layer"],
    }
    if stack.sources:
        info["sources"] = dict(stack.sources)
    return info


def render_containerd(info: dict[str, Any]) -> str:
    """``dockerlab inspect`` on a containerd root: the stack base first, each snapshot's directory."""
    lines = [
        f"image {info['image_id']}  {' '.join(info['names'])}",
        f"config {info['config']}  (the classic store's image id)",
        f"{len(info['layers'])} layers, base first; snapshot key = ChainID (lab 1's db id)",
        "",
        f"{'#':>3}  {'DiffID':<12}  {'blob':<12}  {'snapshot key':<12}  {'parent':<12}  {'id':>4}",
    ]
    for i, layer in enumerate(info["layers"], 1):
        lines.append(
            f"{i:>3}  {_short(layer['layer_id'])}  {_short(layer['digest'])}  {_short(layer['snapshot_key'])}  "
            f"{_short(layer['parent']):<12}  {layer['snapshot_id']:>4}"
        )
        lines.append(f"     {layer['fs_dir']}")
    from .inspect import render_sources

    lines += render_sources(info.get("sources", {}))
    return "\n".join(lines)
