"""Load one implementation of a lab: the student's ``labs/``, the ``solutions/``, or a folder.

Tests, ``dockerlab inspect`` and the grader all get lab functions through :func:`load`, so the
same graded tests run against any implementation. A missing function does not fail the import:
calling it raises :class:`MissingFunction`, which the tests turn into "did you define …?".
"""

from __future__ import annotations

import hashlib
import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from .labinfo import lab as lab_info
from .labinfo import repo_root

__all__ = ["Implementation", "MissingFunction", "default_impl", "load"]


class MissingFunction(Exception):
    """Raised when a task function is called that the implementation does not define."""


class Implementation:
    """The task functions of one lab from one source, looked up by name."""

    def __init__(self, lab_id: str, source: str, module: ModuleType | None, error: str | None = None) -> None:
        self.lab_id = lab_id
        self.source = source
        self.module = module
        self.error = error  # why the module could not be imported, if it could not

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("__"):
            raise AttributeError(name)
        if self.module is None:
            def broken(*_: Any, **__: Any) -> Any:
                raise MissingFunction(f"{self.source} could not be imported: {self.error}")
            return broken
        func = getattr(self.module, name, None)
        if not callable(func):
            def missing(*_: Any, **__: Any) -> Any:
                raise MissingFunction(f"{self.source} defines no function {name}()")
            return missing
        return func


def default_impl() -> str:
    """``solutions`` in the course repository, ``labs`` in a student release (which has none)."""
    return "solutions" if (repo_root() / "solutions").is_dir() else "labs"


def _package(base: Path) -> str:
    """A package named after ``base`` (a ``labs/`` or ``solutions/`` folder), registered once.

    Each tree gets its own package name, so the student's ``labs/``, ``solutions/`` and a
    submission never share modules, and a lab may import another lab of the same tree
    relatively (lab 3 uses lab 1's ``chain_ids`` with ``from ..lab1.layerdb import …``).
    """
    name = f"_dockerlab_impl_{hashlib.sha256(str(base.resolve()).encode()).hexdigest()[:16]}"
    if name not in sys.modules:
        package = ModuleType(name)
        package.__path__ = [str(base)]  # type: ignore[attr-defined]
        package.__package__ = name
        sys.modules[name] = package
    return name


def load(lab_id: str, impl: str = "solutions") -> Implementation:
    """The functions of ``lab_id`` from ``impl``: ``labs``, ``solutions``, a folder holding ``labs/``,
    or ``sandbox:<folder>`` (that folder's code in an isolated worker, see dockerlab.grading)."""
    if impl.startswith("sandbox:"):  # run the submission's code in a sandboxed worker process
        from .grading.worker import RemoteImplementation

        return RemoteImplementation(lab_id, impl.removeprefix("sandbox:"))  # type: ignore[return-value]
    info = lab_info(lab_id)
    if impl in ("labs", "solutions"):
        base = repo_root() / impl
    else:
        base = Path(impl) / "labs"
    path = base / info.module
    if impl == "solutions" and path.exists():
        # the reference reader is a package: imported under its own name where that name finds
        # this very file (mutation testing tools and tracebacks then see solutions.lab1.layerdb)
        try:
            module = importlib.import_module("solutions." + info.module.removesuffix(".py").replace("/", "."))
        except ImportError:
            module = None
        if module is not None and Path(module.__file__ or "").resolve() == path.resolve():
            return Implementation(lab_id, str(path), module)
    if not path.exists():
        return Implementation(lab_id, str(path), None, "file not found")
    module_name = _package(base) + "." + info.module.removesuffix(".py").replace("/", ".")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # a syntax error in a student's file must not stop the run
        return Implementation(lab_id, str(path), None, f"{type(exc).__name__}: {exc}")
    return Implementation(lab_id, str(path), module)
