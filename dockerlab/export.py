"""``dockerlab export`` and ``dockerlab pull-log``: what a daemon would hand out for an image.

``export`` writes the archive ``docker save`` (Docker ≤ 24 layout) writes for one image of a
root, so a real ``docker load`` can check the root against a daemon; ``pull-log`` prints the
transcript a real ``docker pull`` of that image prints on a fresh host.

Ids are never resolved here: the image id, layer ids, db ids and cache-ids come from the lab 1
functions of the chosen implementation (``solutions`` or the student's ``labs``), so an export
is only as right as the reader it was made with. What this module adds is what a daemon does
with those answers:

- each ``layer.tar`` is reassembled from ``layerdb/sha256/<db id>/tar-split.json.gz`` and the
  files in ``overlay2/<cache-id>/diff`` exactly as Docker's tar-split ``asm`` does (raw segments
  verbatim, file entries read from ``diff/`` and checked against their CRC64), then checked
  against the layer id;
- legacy v1 ids, ``json`` files and the outer tar follow moby's ``image/tarexport/save.go``
  (measured against a real daemon: ``/tmp/notes/daemon-facts.md`` §2).
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import json
import os
import re
import sys
import tempfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

from fakeroot_builder.documents import go_json as _go_json
from fakeroot_builder.errors import (
    CorruptJSONError,
    LayerMismatchError,
    MissingEntryError,
    NotPulledError,
    OutputExistsError,
    UnknownReferenceError,
)
from fakeroot_builder.formats import source_repository as _qualified
from fakeroot_builder.layer import Entry, crc64_iso
from fakeroot_builder.layer import ustar_header as layer_header

from .impl import Implementation, default_impl, load

__all__ = [
    "export_image",
    "legacy_layers",
    "pull_log",
    "register",
    "save_manifest",
    "save_repositories",
    "ustar_header",
]

_BLOCK = 512
_ZERO_V1_CONTAINER_CONFIG: dict[str, Any] = {
    # container.Config's zero value as Go marshals it (omitempty fields left out)
    "Hostname": "",
    "Domainname": "",
    "User": "",
    "AttachStdin": False,
    "AttachStdout": False,
    "AttachStderr": False,
    "Tty": False,
    "OpenStdin": False,
    "StdinOnce": False,
    "Env": None,
    "Cmd": None,
    "Image": "",
    "Volumes": None,
    "WorkingDir": "",
    "Entrypoint": None,
    "OnBuild": None,
    "Labels": None,
}
#: image.V1Image's JSON fields in struct order (``id`` and ``parent`` are set by the exporter).
_V1_FIELDS = (
    "comment",
    "created",
    "container",
    "container_config",
    "docker_version",
    "author",
    "config",
    "architecture",
    "variant",
    "os",
    "Size",
)
_EPOCH = "1970-01-01T00:00:00Z"
#: dockerd's default ``max-concurrent-downloads``: later layers of a pull print ``Waiting``.
_MAX_CONCURRENT_DOWNLOADS = 3


# -- Go spellings ----------------------------------------------------------------------------------


def _epoch_seconds(go_time: str) -> int:
    """Seconds since the epoch of an RFC 3339 time (fraction dropped, as a USTAR mtime keeps it)."""
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", go_time)
    if match is None:
        raise ValueError(f"not an RFC 3339 time: {go_time!r}")
    zone = "+00:00" if match[3] == "Z" else match[3]
    moment = datetime.fromisoformat(match[1] + zone)
    return int(moment.astimezone(timezone.utc).timestamp())


def _familiar(ref: str) -> str:
    """A reference as the docker CLI shows it: no ``docker.io/``, no ``library/``."""
    for prefix in ("docker.io/", "index.docker.io/"):
        ref = ref.removeprefix(prefix)
    return ref.removeprefix("library/")


def _split_ref(ref: str) -> tuple[str, str | None, str | None]:
    """``(repository, tag, digest)`` of a familiar reference; bare names get the tag ``latest``."""
    name, _, digest = ref.partition("@")
    head, _, last = name.rpartition("/")
    tag = None
    if ":" in last:
        last, tag = last.split(":", 1)
    repo = f"{head}/{last}" if head else last
    if tag is None and not digest:
        tag = "latest"
    return repo, tag, digest or None


def _path_in_registry(repo: str) -> str:
    """The repository path without its registry host (``nginx`` → ``library/nginx``)."""
    return _qualified(repo).split("/", 1)[1]


# -- the legacy (v1) parts of a save archive -------------------------------------------------------


def legacy_layers(config_bytes: bytes, chain_ids: Sequence[str]) -> list[tuple[str, bytes]]:
    """The ``(v1 id, json bytes)`` of each layer directory of a save archive, base first.

    As moby's ``saveImage``: a non-top layer's v1 image is empty but for ``created`` (the epoch)
    and a zero ``container_config``; the top layer's is the image's own v1 fields. Its id is the
    sha256 of that image marshalled with sorted keys, ``layer_id`` (the ChainID) and ``parent``
    (``sha256:<parent v1 id>``) added; ``os`` is added to a non-top layer only after hashing.
    ``chain_ids`` are the image's db ids, base first.
    """
    config = json.loads(config_bytes)
    out: list[tuple[str, bytes]] = []
    parent: str | None = None
    for index, chain_id in enumerate(chain_ids):
        top = index == len(chain_ids) - 1
        if top:
            v1 = {key: config[key] for key in _V1_FIELDS if key in config}
            v1.setdefault("created", _EPOCH)
            v1.setdefault("container_config", _ZERO_V1_CONTAINER_CONFIG)
        else:
            v1 = {"created": _EPOCH, "container_config": _ZERO_V1_CONTAINER_CONFIG}
        hashed: dict[str, Any] = {**v1, "layer_id": chain_id}
        if parent is not None:
            hashed["parent"] = "sha256:" + parent
        v1_id = hashlib.sha256(_go_json(dict(sorted(hashed.items())))).hexdigest()
        doc: dict[str, Any] = {"id": v1_id}
        if parent is not None:
            doc["parent"] = parent
        doc.update(v1)
        if not top and config.get("os"):
            doc["os"] = config["os"]
        out.append((v1_id, _go_json(doc)))
        parent = v1_id
    return out


def save_manifest(image_hex: str, repo_tags: Sequence[str], v1_ids: Sequence[str]) -> bytes:
    """``manifest.json`` of a save archive (Go's ``json.Encoder``: a final newline)."""
    item = {
        "Config": f"{image_hex}.json",
        "RepoTags": list(repo_tags) or None,
        "Layers": [f"{v1_id}/layer.tar" for v1_id in v1_ids],
    }
    return _go_json([item]) + b"\n"


def save_repositories(repo_tags: Sequence[str], top_v1_id: str) -> bytes | None:
    """The legacy ``repositories`` file, or None when no tag is saved (moby then writes none)."""
    repos: dict[str, dict[str, str]] = {}
    for ref in repo_tags:
        repo, tag, _ = _split_ref(ref)
        repos.setdefault(repo, {})[tag or "latest"] = top_v1_id
    if not repos:
        return None
    return _go_json({r: dict(sorted(t.items())) for r, t in sorted(repos.items())}) + b"\n"


def ustar_header(name: str, size: int, mtime: int, *, directory: bool = False) -> bytes:
    """One header of the outer save archive, as Go's ``archive/tar`` writes it for moby.

    The same layout as the layers' own headers (:func:`fakeroot_builder.layer.ustar_header`):
    USTAR, file type bits in the mode field, owner ``root``, zero device numbers.
    """
    if len(name.encode()) > 100:
        raise ValueError(f"name too long for the save archive: {name!r}")
    if directory:
        return layer_header(Entry(name.rstrip("/"), "dir", 0o755, mtime=mtime), 0)
    return layer_header(Entry(name, "file", 0o644, mtime=mtime), size)


# -- reassembling a layer tar from tar-split -------------------------------------------------------


@dataclass(frozen=True)
class _Piece:
    """One tar-split entry: raw bytes to copy, or ``size`` bytes of ``name`` in ``diff/``."""

    raw: bytes = b""
    name: str = ""
    size: int = 0
    crc: bytes | None = None


def _read_tar_split(path: str) -> list[_Piece]:
    """The entries of ``tar-split.json.gz``, in order."""
    try:
        with gzip.open(path, "rb") as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        raise MissingEntryError(path, "the layer's tar-split is missing") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise CorruptJSONError(path, f"not a readable gzip file ({exc})") from None
    pieces: list[_Piece] = []
    for number, line in enumerate(lines, 1):
        try:
            entry = json.loads(line)
            pieces.append(_piece(entry))
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptJSONError(path, f"line {number} is not a tar-split entry ({exc})") from None
    return pieces


def _piece(entry: dict[str, Any]) -> _Piece:
    payload = base64.b64decode(entry["payload"]) if entry.get("payload") else b""
    if entry["type"] == 2:
        return _Piece(raw=payload)
    if entry["type"] != 1:
        raise ValueError(f"unknown entry type {entry['type']!r}")
    name = entry["name"] if "name" in entry else base64.b64decode(entry["name_raw"]).decode("utf-8", "surrogateescape")
    return _Piece(name=name, size=int(entry.get("size", 0)), crc=payload or None)


def _file_bytes(diff_dir: str, piece: _Piece) -> bytes:
    """The ``size`` bytes tar-split expects of one file of ``diff/``, checked against its CRC64."""
    path = os.path.join(diff_dir, os.path.normpath("/" + piece.name).lstrip("/"))
    try:
        with open(path, "rb") as fh:
            data = fh.read(piece.size)
    except FileNotFoundError:
        raise MissingEntryError(path, "a file the layer's tar-split lists is missing") from None
    if len(data) != piece.size:
        raise LayerMismatchError(path, f"has {len(data)} bytes, the layer has {piece.size}")
    if piece.crc is not None and crc64_iso(data) != piece.crc:
        raise LayerMismatchError(path, "content differs from the layer's (CRC64 mismatch with tar-split)")
    return data


@dataclass(frozen=True)
class _LayerSource:
    """A layer tar to be rebuilt from tar-split and ``diff/``; its size is known beforehand."""

    tar_split_path: str
    diff_dir: str
    layer_id: str
    pieces: tuple[_Piece, ...]

    @property
    def size(self) -> int:
        return sum(len(p.raw) if not p.name else p.size for p in self.pieces)

    def chunks(self) -> Iterator[bytes]:
        """The tar's bytes; raises once the whole stream is read if its sha256 is not the layer id."""
        digest = hashlib.sha256()
        for piece in self.pieces:
            data = piece.raw if not piece.name else (_file_bytes(self.diff_dir, piece) if piece.size else b"")
            digest.update(data)
            yield data
        got = "sha256:" + digest.hexdigest()
        if got != self.layer_id:
            raise LayerMismatchError(self.diff_dir, f"rebuilt layer tar is {got}, the layer id is {self.layer_id}")


# -- export ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Member:
    """One member of the outer archive: a directory, fixed bytes, or a layer to rebuild."""

    name: str
    mtime: int
    data: bytes | None = None
    layer: _LayerSource | None = None

    @property
    def size(self) -> int:
        if self.layer is not None:
            return self.layer.size
        return len(self.data) if self.data is not None else 0


def _repo_tags(lab1: Implementation, root: str, ref: str, image_id: str) -> list[str]:
    """The tag ``docker save REF`` records: REF's own tag, none for an id or a digest reference."""
    repo, tag, digest = _split_ref(_familiar(ref))
    if digest or tag is None:
        return []
    wanted = f"{repo}:{tag}"
    return [wanted] if wanted in lab1.image_refs(root, image_id) else []


def _members(root: str, ref: str, lab1: Implementation) -> list[_Member]:
    """Every member of the save archive of ``ref``, in the order ``docker save`` writes them."""
    image_id = lab1.resolve_image(root, ref)
    image_hex = image_id.removeprefix("sha256:")
    store = os.path.join(root, "image", "overlay2")
    config_path = os.path.join(store, "imagedb", "content", "sha256", image_hex)
    try:
        config_bytes = Path(config_path).read_bytes()
    except FileNotFoundError:
        raise MissingEntryError(config_path, "the image config is missing") from None
    layer_ids = lab1.image_layer_ids(root, ref)
    if not layer_ids:
        raise UnknownReferenceError(config_path, "image has no layers: docker save refuses an empty export")
    db_ids = lab1.chain_ids(layer_ids)
    try:
        mtime = _epoch_seconds(json.loads(config_bytes).get("created", _EPOCH))
    except ValueError as exc:
        raise CorruptJSONError(config_path, str(exc)) from None
    members = [_Member(f"{image_hex}.json", mtime, data=config_bytes)]
    legacy = legacy_layers(config_bytes, db_ids)
    for (v1_id, v1_json), layer_id, db_id in zip(legacy, layer_ids, db_ids):
        lab1.read_layer(root, db_id)  # validates the entry (cache-id, diff, size) first
        diff_dir = lab1.layer_diff_dir(root, ref, layer_id)
        tar_split = os.path.join(store, "layerdb", "sha256", db_id.removeprefix("sha256:"), "tar-split.json.gz")
        source = _LayerSource(tar_split, str(diff_dir), layer_id, tuple(_read_tar_split(tar_split)))
        members += [
            _Member(f"{v1_id}/", mtime),
            _Member(f"{v1_id}/VERSION", mtime, data=b"1.0"),
            _Member(f"{v1_id}/json", mtime, data=v1_json),
            _Member(f"{v1_id}/layer.tar", mtime, layer=source),
        ]
    tags = _repo_tags(lab1, root, ref, image_id)
    v1_ids = [v1_id for v1_id, _ in legacy]
    members.append(_Member("manifest.json", 0, data=save_manifest(image_hex, tags, v1_ids)))
    repositories = save_repositories(tags, v1_ids[-1])
    if repositories is not None:
        members.append(_Member("repositories", 0, data=repositories))
    return sorted(members, key=lambda m: m.name.rstrip("/").split("/"))  # filepath.Walk's order


def _write_member(out: BinaryIO, member: _Member) -> None:
    out.write(ustar_header(member.name, member.size, member.mtime, directory=member.name.endswith("/")))
    if member.layer is not None:
        for chunk in member.layer.chunks():
            out.write(chunk)
    elif member.data is not None:
        out.write(member.data)
    out.write(b"\0" * (-member.size % _BLOCK))


def _write_atomically(out: Path, force: bool, write: Any) -> None:
    """Call ``write(fh)`` on a temporary sibling of ``out``, then rename it into place."""
    if out.is_dir():
        raise OutputExistsError(f"{out} is a directory; -o names the archive file to write")
    if not out.parent.is_dir():
        raise OutputExistsError(f"{out}: directory {out.parent} does not exist")
    if (out.exists() or out.is_symlink()) and not force:
        raise OutputExistsError(f"{out} exists; use --force to replace it")
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export_image(
    root: str | os.PathLike[str],
    ref: str,
    out: str | os.PathLike[str],
    impl: str = "solutions",
    *,
    force: bool = False,
) -> Path:
    """Write the ``docker save`` archive of image ``ref`` of ``root`` to ``out``; return ``out``.

    The archive has the Docker ≤ 24 layout a real ``docker load`` accepts: ``<image hex>.json``
    (the exact config bytes), one ``<v1 id>/{VERSION,json,layer.tar}`` per layer, ``manifest.json``
    and ``repositories`` (only when ``ref`` names a tag). Every ``layer.tar`` is rebuilt from the
    root's tar-split and ``diff/`` files and verified (CRC64 per file, sha256 == layer id).

    Ids are resolved by the lab 1 functions of ``impl`` (``solutions``, ``labs`` or a folder).
    Raises :class:`~fakeroot_builder.errors.RootError` subclasses naming the faulty path, and
    :class:`OutputExistsError` when ``out`` exists and ``force`` is false. Nothing is left
    behind on error: the archive is written to a temporary file and renamed.
    """
    return write_archive(_members(os.fspath(root), ref, load("lab1", impl)), out, force)


def write_archive(members: list[_Member], out: str | os.PathLike[str], force: bool) -> Path:
    """The tar of ``members`` (and its two end blocks) at ``out``, written to a temporary file
    and renamed; shared by the classic and the containerd export."""
    target = Path(out)

    def write(fh: BinaryIO) -> None:
        for member in members:
            _write_member(fh, member)
        fh.write(b"\0" * (2 * _BLOCK))

    _write_atomically(target, force, write)
    return target


# -- pull transcript ---------------------------------------------------------------------------------


def _pulled_ref(lab1: Implementation, root: str, ref: str, image_id: str) -> tuple[str, str, str]:
    """``(repository, tag-or-digest, manifest digest)`` of the pull that brought the image."""
    refs = lab1.image_refs(root, image_id)
    repo, tag, digest = _split_ref(_familiar(ref))
    if digest is None and f"{repo}:{tag}" not in refs:  # an image id: use the image's first tag
        tags = [r for r in refs if "@" not in r]
        if not tags:
            digests = [r for r in refs if "@" in r]
            if not digests:
                raise NotPulledError(_repositories(root), f"image {ref!r} has no name: it was never pulled")
            repo, _, digest = _split_ref(digests[0])
        else:
            repo, tag, _ = _split_ref(tags[0])
    manifests = [r.split("@", 1)[1] for r in refs if r.startswith(repo + "@")]
    if not manifests:
        raise NotPulledError(
            _repositories(root), f"image {ref!r} has no digest reference for {repo}: it was built or loaded, not pulled"
        )
    return repo, digest or str(tag), digest or manifests[0]


def _repositories(root: str) -> str:
    return os.path.join(root, "image", "overlay2", "repositories.json")


def _compressed_digest(root: str, layer_id: str, source: str) -> str:
    """The blob digest ``distribution/v2metadata-by-diffid`` records for ``layer_id`` from ``source``."""
    path = os.path.join(
        root, "image", "overlay2", "distribution", "v2metadata-by-diffid", "sha256", layer_id.removeprefix("sha256:")
    )
    try:
        entries = json.loads(Path(path).read_bytes())
    except FileNotFoundError:
        raise NotPulledError(path, f"no pull metadata for layer {layer_id}: the image was not pulled") from None
    except ValueError as exc:
        raise CorruptJSONError(path, f"not valid JSON ({exc})") from None
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and entry.get("SourceRepository") == source:
            return str(entry["Digest"])
    raise NotPulledError(path, f"layer {layer_id} was never pulled from {source}")


def pull_log(root: str | os.PathLike[str], ref: str, progress: bool = False, impl: str = "solutions") -> str:
    """The transcript ``docker pull REF`` prints (non-TTY) when it pulls image ``ref`` on a fresh host.

    Without ``progress``: the header, one ``<12 hex>: Pull complete`` per layer (12 hex of the
    compressed blob digest), ``Digest:``, ``Status:`` and the full reference. With ``progress``,
    the full sequence: every ``Pulling fs layer`` first, then ``Verifying Checksum`` and
    ``Download complete`` layer by layer, then every ``Pull complete``. As a real pull, layers
    beyond the daemon's third concurrent download print ``Waiting`` after the ``Pulling fs
    layer`` lines. (A real pull prints the Verifying/Download lines in download-completion order,
    and sometimes leaves a ``Verifying Checksum`` out; the other lines are stable.)

    Blob digests come from ``distribution/v2metadata-by-diffid`` entries of the image's
    repository, the manifest digest from its ``repo@sha256:…`` reference. Raises
    :class:`NotPulledError` for an image that was never pulled.
    """
    root_s = os.fspath(root)
    lab1 = load("lab1", impl)
    image_id = lab1.resolve_image(root_s, ref)
    repo, tag_or_digest, manifest_digest = _pulled_ref(lab1, root_s, ref, image_id)
    source = _qualified(repo)
    shorts = [
        _compressed_digest(root_s, layer_id, source).removeprefix("sha256:")[:12]
        for layer_id in lab1.image_layer_ids(root_s, ref)
    ]
    sep = "@" if tag_or_digest.startswith("sha256:") else ":"
    return pull_transcript(repo, tag_or_digest, shorts, manifest_digest, f"{source}{sep}{tag_or_digest}", progress)


def pull_transcript(repo: str, tag_or_digest: str, shorts: list[str], digest: str, last: str, progress: bool) -> str:
    """The lines ``docker pull`` prints for a pull of ``repo`` by ``tag_or_digest`` whose layers'
    compressed digests start with ``shorts`` (12 hex each), the same for both image stores:
    ``digest`` goes on the ``Digest:`` line, ``last`` (the full reference) closes the transcript."""
    sep = "@" if tag_or_digest.startswith("sha256:") else ":"
    lines = [f"{tag_or_digest}: Pulling from {_path_in_registry(repo)}"]
    if progress:
        lines += [f"{s}: Pulling fs layer" for s in shorts]
        lines += [f"{s}: Waiting" for s in shorts[_MAX_CONCURRENT_DOWNLOADS:]]
        for s in shorts:
            lines += [f"{s}: Verifying Checksum", f"{s}: Download complete"]
    lines += [f"{s}: Pull complete" for s in shorts]
    lines += [
        f"Digest: {digest}",
        f"Status: Downloaded newer image for {repo}{sep}{tag_or_digest}",
        last,
    ]
    return "\n".join(lines) + "\n"


# -- command line ------------------------------------------------------------------------------------


def _cmd_export(args: argparse.Namespace) -> int:
    from .containerd_tools import export_containerd
    from .stores import CONTAINERD, find_store

    store = find_store(args.root, again=["export", args.ref, "-o", args.output])
    export = export_containerd if store.kind == CONTAINERD else export_image
    out = export(store.root, args.ref, Path(args.output).expanduser(), args.impl, force=args.force)
    print(f"wrote {out} (from the {store.kind} image store at {store.root})")
    return 0


def _cmd_pull_log(args: argparse.Namespace) -> int:
    from .containerd_tools import pull_log_containerd
    from .stores import CONTAINERD, find_store

    store = find_store(args.root, again=["pull-log", args.ref])
    log = pull_log_containerd if store.kind == CONTAINERD else pull_log
    text = log(store.root, args.ref, progress=args.progress, impl=args.impl)
    print(f"# {store.describe()}", file=sys.stderr)  # stdout stays exactly docker pull's transcript
    print(text, end="")
    return 0


def register(subparsers: Any) -> None:
    """Add ``export`` and ``pull-log`` to the ``dockerlab`` command's sub-commands."""
    p = subparsers.add_parser("export", help="write an image as `docker save` does (loadable by `docker load`)")
    p.add_argument("ref", help="nginx:latest, an image id, name@sha256:…")
    p.add_argument("--root", default=None, help="a Docker data root or a containerd root (read only; "
                   "default: /var/lib/docker, else /var/lib/containerd)")
    p.add_argument("-o", "--output", required=True, help="the archive to write (FILE.tar)")
    p.add_argument("--impl", default=default_impl(), help="labs (your code) or solutions")
    p.add_argument("--force", action="store_true", help="replace an existing archive")
    p.set_defaults(func=_cmd_export)

    p = subparsers.add_parser("pull-log", help="what `docker pull` prints when it pulls this image on a fresh host")
    p.add_argument("ref", help="nginx:latest, an image id, name@sha256:…")
    p.add_argument("--root", default=None, help="a Docker data root or a containerd root (read only; "
                   "default: /var/lib/docker, else /var/lib/containerd)")
    p.add_argument("--progress", action="store_true", help="every progress line, not only `Pull complete`")
    p.add_argument("--impl", default=default_impl(), help="labs (your code) or solutions")
    p.set_defaults(func=_cmd_pull_log)
