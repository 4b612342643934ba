"""Every error this project raises on purpose, in one tree.

    DockerLabError                  base: catch this to catch everything below
    ├── RootError                   a Docker root on disk is not what a daemon writes (has .path)
    │   ├── MissingEntryError       a file or directory the format requires is absent
    │   ├── MalformedIdError        an id file holds something that is not a valid id
    │   ├── CorruptFileError        a file cannot be read as text (not UTF-8)
    │   │   └── CorruptJSONError    a JSON file is truncated, not JSON, or of the wrong shape
    │   ├── ParentCycleError        `parent` pointers loop back on themselves
    │   ├── DanglingLinkError       an `l/<link>` symlink points nowhere, or no link names a layer
    │   ├── TooManyLowersError      a `lower` chain is longer than overlay2's limit of 128
    │   ├── UnknownReferenceError   no image or container answers to the reference given
    │   ├── LayerMismatchError      a layer's diff/ does not rebuild its tar (export)
    │   ├── NotPulledError          the image has no pull record (pull-log)
    │   └── BoltError               a bbolt file (containerd's meta.db, metadata.db) is malformed
    └── BuildError                  the builder refuses to write, or cannot write faithfully
        ├── TargetNotEmptyError     --out names a non-empty directory and --force was not given
        │   └── OutputExistsError   export's -o file exists and --force was not given
        ├── LiveDockerRootError     --out names a real daemon's data root
        └── UnknownImageError       --images names something the catalogue does not have

This module has no imports beyond the standard library, so a lab solution (and the sandbox
that runs student code) can import it on its own.
"""

from __future__ import annotations

__all__ = [
    "BoltError",
    "BuildError",
    "CorruptFileError",
    "CorruptJSONError",
    "DanglingLinkError",
    "DockerLabError",
    "LayerMismatchError",
    "LiveDockerRootError",
    "MalformedIdError",
    "MissingEntryError",
    "NotPulledError",
    "OutputExistsError",
    "ParentCycleError",
    "RootError",
    "TargetNotEmptyError",
    "TooManyLowersError",
    "UnknownImageError",
    "UnknownReferenceError",
]


class DockerLabError(Exception):
    """Base of every error raised on purpose by dockerlab."""


class RootError(DockerLabError):
    """A Docker data root is not laid out as a daemon writes it; ``path`` names the culprit."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class MissingEntryError(RootError):
    """Raised when a file or directory the format requires does not exist."""


class MalformedIdError(RootError):
    """Raised when an id (db id, cache-id, link, mount id…) has the wrong shape."""


class CorruptFileError(RootError):
    """Raised when a file of the root cannot be read as text."""


class CorruptJSONError(CorruptFileError):
    """Raised when a JSON file of the root is truncated, is not JSON, or has the wrong shape."""


class ParentCycleError(RootError):
    """Raised when following `parent` files visits the same db id twice."""


class DanglingLinkError(RootError):
    """Raised when an `l/` short link points at a missing directory, or a layer's link is absent."""


class TooManyLowersError(RootError):
    """Raised when a `lower` file lists more layers than overlay2 allows (128)."""


class UnknownReferenceError(RootError):
    """Raised when no image (or container) in the root answers to the given reference."""


class LayerMismatchError(RootError):
    """Raised when a layer's files in ``diff/`` do not rebuild the tar its tar-split and id describe."""


class NotPulledError(RootError):
    """Raised when an image has no pull record (digest reference, ``distribution/``) in the root."""


class BoltError(RootError):
    """Raised when a bbolt file is malformed: ``problem`` names the meta page, page or bucket."""

    def __init__(self, problem: str, path: object = "<bbolt data>") -> None:
        super().__init__(path, problem)


class BuildError(DockerLabError):
    """Base of the builder's refusals."""


class TargetNotEmptyError(BuildError):
    """Raised when the output directory exists and is not empty, and --force was not given."""


class LiveDockerRootError(BuildError):
    """Raised when the output directory is (or looks like) a running daemon's data root."""


class UnknownImageError(BuildError):
    """Raised when an image reference is not in the catalogue."""


class OutputExistsError(TargetNotEmptyError):
    """Raised when an archive to write already exists and ``--force`` was not given."""
