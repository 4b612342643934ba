"""Fixtures and reporting shared by every test: built roots, lab implementations, friendly checks.

Graded tests (``test_lab*.py``) run against the implementation chosen with ``--impl``:
``solutions`` (default), ``labs`` (the student's stubs), or a submission folder. They take
expected answers from the builder's ground truth, never from the implementation.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import secrets
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from dockerlab import labinfo
from dockerlab.impl import Implementation, MissingFunction, load
from fakeroot_builder.cache import FIXTURE_KINDS, BuiltRoot, copy_root, graded_root
from fakeroot_builder.safety import remove_tree
from fakeroot_builder.trees import restore_copy, tree_state, wait_past
from fakeroot_builder import CANONICAL_SEED
from fakeroot_builder.seeds import derived_seed

REPO = Path(__file__).resolve().parent.parent
pytest_plugins = ["dockerlab.pytest_report"]


# -- options and seeds ---------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--impl",
        default=os.environ.get("DOCKERLAB_IMPL", "solutions"),
        help="which lab implementation to grade: labs, solutions, or a folder holding labs/",
    )


def student_id() -> str | None:
    """The student id set with ``dockerlab student-id`` (or $DOCKERLAB_STUDENT_ID)."""
    if os.environ.get("DOCKERLAB_STUDENT_ID"):
        return os.environ["DOCKERLAB_STUDENT_ID"]
    marker = REPO / ".dockerlab-student"
    return marker.read_text().strip() or None if marker.exists() else None


def graded_seeds() -> list[tuple[str, int]]:
    """The trees every task is checked on: fixed seeds, the student's own, or the grader's hidden ones."""
    hidden = os.environ.get("DOCKERLAB_HIDDEN_SEEDS")
    if hidden:
        return [(f"hidden-{i + 1}", int(s)) for i, s in enumerate(hidden.split(","))]
    seeds = [("canonical", CANONICAL_SEED), ("seed-7", 7)]
    sid = student_id()
    if sid:
        seeds.append(("your-seed", derived_seed(0, "student", sid) % 1_000_000))
    return seeds


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Let ``-k task3`` (and ``-k lab2_task3``) select a task's tests."""
    for item in items:
        marker = item.get_closest_marker("task")
        if marker is not None:
            lab_id, number = marker.args
            item.extra_keyword_matches.update({f"task{number}", f"{lab_id}_task{number}"})


# -- lab implementations -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def impl_choice(request: pytest.FixtureRequest) -> str:
    return str(request.config.getoption("--impl"))


@pytest.fixture(scope="session")
def lab1(impl_choice: str) -> Implementation:
    return load("lab1", impl_choice)


@pytest.fixture(scope="session")
def lab2(impl_choice: str) -> Implementation:
    return load("lab2", impl_choice)


@pytest.fixture(scope="session")
def lab3(impl_choice: str) -> Implementation:
    return load("lab3", impl_choice)


# -- roots ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session", params=graded_seeds(), ids=lambda p: p[0])
def root(request: pytest.FixtureRequest) -> BuiltRoot:
    """A full root (every catalogue image, containers) for each graded seed."""
    return graded_root("full", request.param[1])


@pytest.fixture(scope="session", params=graded_seeds(), ids=lambda p: p[0])
def croot(request: pytest.FixtureRequest) -> BuiltRoot:
    """The same catalogue as ``root``, as Docker 29 keeps it: a containerd root, for each graded seed."""
    return graded_root("containerd", request.param[1])


@pytest.fixture(scope="session")
def canonical() -> BuiltRoot:
    """The canonical root the handouts show."""
    return graded_root("full", CANONICAL_SEED)


@pytest.fixture(scope="session")
def seed_of_run() -> int:
    """One graded seed for tests that need a single extra tree."""
    return graded_seeds()[-1][1]


@pytest.fixture(scope="session")
def small(seed_of_run: int) -> BuiltRoot:
    """nginx on debian and on alpine, no containers: quick to copy and break."""
    return graded_root("small", seed_of_run)


@pytest.fixture(scope="session")
def small_with_containers(seed_of_run: int) -> BuiltRoot:
    """nginx and alpine with their containers: quick to copy and change."""
    return graded_root("small-with-containers", seed_of_run)


def _planned_copies(items: list[pytest.Item]) -> dict[tuple[str, int], int]:
    """How many copies of which root (kind, seed) one test at most asks ``broken_copy`` for, read
    from the selected tests' source (``broken_copy(small)``); a copy missed here is made when asked."""
    planned: dict[tuple[str, int], int] = {}
    for item in items:
        if "broken_copy" not in getattr(item, "fixturenames", ()):
            continue
        try:
            source = inspect.getsource(item.obj)
        except (OSError, TypeError):
            continue
        params = getattr(getattr(item, "callspec", None), "params", {})
        wanted: dict[tuple[str, int], int] = {}
        for name in re.findall(r"broken_copy\((\w+)\)", source):
            if name in FIXTURE_KINDS:
                seed = params[name][1] if name in params else CANONICAL_SEED if name == "canonical" else graded_seeds()[-1][1]
                key = (FIXTURE_KINDS[name], seed)
                wanted[key] = wanted.get(key, 0) + 1
        for key, count in wanted.items():
            planned[key] = max(planned.get(key, 0), count)
    return planned


def _state(path: Path) -> dict[str, tuple] | None:
    try:
        return tree_state(path)
    except OSError:  # e.g. a mode-0000 work/work an ordinary user cannot list: copies are not reused
        return None


class _Spares:
    """When grading on hidden seeds: the copies the tests damage, beside the intact roots under
    random names of the same shape, made before any student code runs (so the sandboxed worker
    sees them from its start and no damaged root appears later than an intact one), and put back
    as they were copied after each test (:func:`~fakeroot_builder.trees.restore_copy`): one copy
    of a root serves every test that damages it. One that cannot be put back is removed, and the
    next test gets a fresh copy."""

    def __init__(self) -> None:
        self.free: dict[Path, list[tuple[BuiltRoot, dict[str, tuple] | None]]] = {}
        self.sources: dict[Path, dict[str, tuple] | None] = {}

    def make(self, source: BuiltRoot, count: int) -> None:
        for _ in range(count):
            spare = _copy_beside(source)
            self.free.setdefault(source.path, []).append((spare, _state(spare.path)))

    def take(self, source: BuiltRoot) -> tuple[BuiltRoot, dict[str, tuple] | None]:
        free = self.free.setdefault(source.path, [])
        if not free:
            self.make(source, 1)
        spare, state = free.pop()
        if state is not None:
            wait_past(state)  # so that whatever the test does shows in the next state
        return spare, state

    def give_back(self, source: BuiltRoot, spare: BuiltRoot, state: dict[str, tuple] | None) -> None:
        if source.path not in self.sources:  # taken late: a worker may have adjusted the source first
            self.sources[source.path] = _state(source.path)
        original = self.sources[source.path]
        restored = restore_copy(source.path, spare.path, state, original) if state and original else None
        if restored is None:
            remove_tree(spare.path.parent)
        else:
            self.free[source.path].append((spare, restored))

    def close(self) -> None:
        for free in self.free.values():
            for spare, _ in free:
                remove_tree(spare.path.parent)
        self.free.clear()


def _copy_beside(source: BuiltRoot) -> BuiltRoot:
    """A copy of ``source`` beside the intact roots, under a random name of the same shape."""
    folder = source.path.parent.parent / secrets.token_hex(10)
    folder.mkdir()
    return copy_root(source, folder / "root")


@pytest.fixture(scope="session", autouse=True)
def _spare_copies(request: pytest.FixtureRequest) -> Iterator[_Spares]:
    """When grading on hidden seeds: the copies to damage, made before any student code runs."""
    spares = _Spares()
    if os.environ.get("DOCKERLAB_HIDDEN_SEEDS"):
        for (kind, seed), count in _planned_copies(request.session.items).items():
            spares.make(graded_root(kind, seed), count)
    yield spares
    spares.close()


@pytest.fixture
def broken_copy(tmp_path: Path, _spare_copies: _Spares) -> Iterator[Callable[[BuiltRoot], BuiltRoot]]:
    """Copy a cached root so a test may damage it: into ``tmp_path``, or when grading on hidden
    seeds, one of the copies made ahead (``_spare_copies``), put back after the test."""
    taken: list[tuple[BuiltRoot, BuiltRoot, dict[str, tuple] | None]] = []

    def copy(source: BuiltRoot) -> BuiltRoot:
        if not os.environ.get("DOCKERLAB_HIDDEN_SEEDS"):
            return copy_root(source, tmp_path / "root")
        spare, state = _spare_copies.take(source)
        taken.append((source, spare, state))
        return spare

    yield copy
    for source, spare, state in taken:
        _spare_copies.give_back(source, spare, state)


# -- friendly checks -----------------------------------------------------------------------------


def _task_of(node: pytest.Item) -> labinfo.Task | None:
    marker = node.get_closest_marker("task")
    if marker is None:
        return None
    return labinfo.lab(marker.args[0]).task(marker.args[1])


def _show(value: Any) -> str:
    if isinstance(value, BuiltRoot):
        return f"<root seed={value.truth.seed}>"
    return repr(value)


def _plain(value: Any) -> Any:
    """The answer as plain JSON data: no objects that compare equal to anything."""
    return json.loads(json.dumps(value, default=lambda o: os.fspath(o) if isinstance(o, os.PathLike) else _bad(o)))


def _bad(obj: Any) -> Any:
    raise TypeError(f"returned a {type(obj).__name__}, which is not plain data (str, int, list, dict, None)")


def _lists_diff(got: Any, expected: dict[str, list[Any]], limit: int = 4) -> list[str]:
    """A short account of how two ``{key: [paths]}`` answers differ: missing, extra, wrong key."""
    if not isinstance(got, dict) or not all(isinstance(v, list) for v in got.values()):
        return []
    where = {p: k for k, paths in expected.items() for p in paths}
    said = {p: k for k, paths in got.items() for p in paths if isinstance(p, str)}
    lines = []
    wrong = sorted(p for p in set(where) & set(said) if where[p] != said[p])
    for p in wrong[:limit]:
        lines.append(f"{p}: you say {said[p]!r}, it is {where[p]!r}")
    for key in expected:
        if key not in got:
            lines.append(f"the key {key!r} is missing")
            continue
        missing = sorted(p for p in expected[key] if p not in said)
        extra = sorted(p for p in got[key] if p not in where)
        for what, paths in (("missing from", missing), ("should not be in", extra)):
            if paths:
                shown = ", ".join(paths[:limit]) + (f" (+{len(paths) - limit} more)" if len(paths) > limit else "")
                lines.append(f"{what} {key!r}: {shown}")
    for key in got:
        if key not in expected:
            lines.append(f"unexpected key {key!r}")
    return lines


def _options_diff(got: Any, expected: Any, width: int = 150) -> list[str]:
    """For ``key=value,key=value`` answers (mount options): the options that differ, one a line."""
    if not (isinstance(got, str) and isinstance(expected, str) and "=" in expected and "," in expected):
        return []
    mine = dict(part.partition("=")[::2] for part in got.split(","))
    want = dict(part.partition("=")[::2] for part in expected.split(","))
    lines = []
    for key in list(want) + [k for k in mine if k not in want]:
        if mine.get(key) != want.get(key):
            a, b = mine.get(key), want.get(key)
            if a is not None and b is not None and ":" in b:  # a ':'-joined list: the first entry that differs
                pa, pb = a.split(":"), b.split(":")
                i = next((i for i, (x, y) in enumerate(zip(pa, pb)) if x != y), min(len(pa), len(pb)))
                lines.append(f"{key}: entry {i + 1} of {len(pb)} differs: got {pa[i] if i < len(pa) else None!r}, "
                             f"expected {pb[i] if i < len(pb) else None!r} (you have {len(pa)} entries)")
            else:
                lines.append(f"{key}: got {str(a)[:width]!r}, expected {str(b)[:width]!r}")
    return lines


class Checker:
    """Calls a student's function and fails with the task, the input, got, expected and the hint."""

    def __init__(self, task: labinfo.Task | None) -> None:
        self.task = task
        self.damage: list[str] = []

    def damaged(self, what: str) -> None:
        """Say how a test damaged its root; failures then show it."""
        self.damage.append(what)

    def _damage(self) -> str:
        return "".join(f"\n  damaged:  {d}" for d in self.damage)

    @staticmethod
    def _roots(args: tuple[Any, ...], text: str) -> str:
        """``text`` with every root's absolute path shown as ``<root>``."""
        for a in args:
            if isinstance(a, BuiltRoot):
                text = text.replace(str(a.path), "<root>")
        return text

    def _header(self) -> str:
        return f"Task {self.task.number} ({self.task.title})" if self.task else "This check"

    def _hint(self) -> str:
        return f"\n  hint: {self.task.hint}" if self.task else ""

    def _failure(self, exc: BaseException, shown: str) -> str:
        if isinstance(exc, NotImplementedError):
            return f"{self._header()} is not done yet: {shown} raised NotImplementedError.{self._hint()}"
        if isinstance(exc, MissingFunction):
            return f"{self._header()}: {exc}. Did you define it?{self._hint()}"
        return f"{self._header()}: {shown} raised {type(exc).__name__}: {exc}{self._hint()}"

    def call(self, func: Callable[..., Any], *args: Any) -> Any:
        name = getattr(func, "__name__", "function")
        shown = f"{name}({', '.join(_show(a) for a in args)})"
        real = [str(a.path) if isinstance(a, BuiltRoot) else a for a in args]
        message = None
        try:
            return _plain(func(*real))
        except Exception as exc:  # reported below, outside the handler, without a chained traceback
            message = self._failure(exc, shown)
        pytest.fail(self._roots(args, message + self._damage()), pytrace=False)

    def __call__(self, func: Callable[..., Any], *args: Any, expect: Any, normalize: Callable[[Any], Any] | None = None) -> None:
        got = self.call(func, *args)
        expected = _plain(expect)
        if normalize is not None:
            try:
                got = normalize(got)
            except Exception:
                pass
            expected = normalize(expected)
        if got != expected:
            name = getattr(func, "__name__", "function")
            shown = f"{name}({', '.join(_show(a) for a in args)})"
            lines = _lists_diff(got, expected) if isinstance(expected, dict) and all(
                isinstance(v, list) for v in expected.values()) else _options_diff(
                self._roots(args, got) if isinstance(got, str) else got,
                self._roots(args, expected) if isinstance(expected, str) else expected)
            if lines:
                detail = "".join(f"\n    {line}" for line in lines)
                answer = f"\n  differs:{detail}"
            else:
                answer = f"\n  got:      {got!r}\n  expected: {expected!r}"
            pytest.fail(
                self._roots(args, f"{self._header()}: wrong answer{self._damage()}\n  call:     {shown}{answer}{self._hint()}"),
                pytrace=False,
            )

    def raises(self, func: Callable[..., Any], *args: Any, error: type[BaseException], mentions: str | re.Pattern[str] = "") -> None:
        name = getattr(func, "__name__", "function")
        shown = f"{name}({', '.join(_show(a) for a in args)})"
        real = [str(a.path) if isinstance(a, BuiltRoot) else a for a in args]
        message = None
        try:
            result = func(*real)
            message = f"{self._header()}: {shown} returned {result!r}; expected it to raise {error.__name__}{self._hint()}"
        except error as exc:
            text = str(exc)  # "<path>: <problem>" (only the text crosses the grader's sandbox)
            if not text.strip() or text.startswith("None:") or text.endswith(": None"):
                message = (f"{self._header()}: {shown} raised {type(exc).__name__}({text!r}) without saying where"
                           f" and what (give both: {error.__name__}(path, problem)){self._hint()}")
            elif mentions and not (mentions.search(text) if isinstance(mentions, re.Pattern) else mentions in text):
                message = f"{self._header()}: {shown} raised {type(exc).__name__} without naming {getattr(mentions, 'pattern', mentions)!r}: {exc}{self._hint()}"
        except Exception as exc:
            message = self._failure(exc, shown)
            if not isinstance(exc, (NotImplementedError, MissingFunction)):
                message += f"\n  expected: {error.__name__}"
        if message:
            pytest.fail(self._roots(args, message + self._damage()), pytrace=False)


@pytest.fixture
def check(request: pytest.FixtureRequest) -> Checker:
    """``check(lab1.func, root, arg, expect=value)``: one graded comparison, explained on failure."""
    return Checker(_task_of(request.node))


# -- progress summary: dockerlab.pytest_report (calm failures, the progress table last) -------------


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if student_id() is None and not os.environ.get("DOCKERLAB_HIDDEN_SEEDS") and terminalreporter.config.getoption("--impl") == "labs":
        terminalreporter.write_line("Tip: `dockerlab student-id <your id>` also tests you on a tree of your own.")
