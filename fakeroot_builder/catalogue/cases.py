"""``cases:latest``: an image built on busybox whose five layers do every hard thing overlay allows.

Each rule of the union view makes a difference somewhere in this stack (and in the container run
on it, see ``containers.py``), so an implementation that gets one rule wrong gets some layer
wrong:

1. *layout* — a directory with deep content, one to become opaque, a file to be deleted and
   re-added, a file to become a directory and a directory to become a file, a file with a hard
   link, a relative and an absolute symlink, and odd names (spaces, unicode, names that look like
   whiteouts but are not: ``notes.wh.txt``, ``.wh``, ``wh..wh..opq``…);
2. *prune* — whites out the deep directory and the file, makes the directory opaque (re-adding
   one of its names and adding its own), adds a brand-new opaque directory, puts a directory over
   the file and a file over the directory, edits the hard-linked file (the other name keeps the
   old bytes), deletes an odd name;
3. *re-add* — re-adds the deep directory (not opaque: the whiteout below must still hide the old
   content), re-adds the file, deletes inside the opaque directory, deletes the symlinks' target;
4. *again* — deletes the file again, adds back a name the opaque directory hid, puts a directory
   over the file that replaced a directory (what the farthest layer had there stays hidden),
   replaces the deleted target by a symlink;
5. *last* — re-adds the file as a directory, and adds back deep names only the oldest layer had.

Which names, and how deep the deep directory goes, depend on the seed (``ctx.shared_random``).
It was built locally (``pulled=False``), like ``deep:latest``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..recipe import ImageRecipe, LayerContext, LayerRecipe
from ._common import nop, run

__all__ = ["CASES_LATEST", "CASES_LAYERS", "CasePaths", "case_paths"]

_APPS = ("ledger", "atlas", "harbor", "quill", "orbit", "lumen", "cobalt", "fern", "tundra", "mosaic")
_WORDS = (
    "alpha", "bravo", "cedar", "delta", "ember", "fjord", "grove", "heron", "iris", "jade",
    "kelp", "lotus", "maple", "nova", "onyx", "pearl", "quartz", "raven", "sage", "thistle",
)


@dataclass(frozen=True)
class CasePaths:
    """The paths the layers of ``cases:latest`` (and its container) agree on, for one seed."""

    base: str  #: ``srv/<app>``
    deep: str  #: a directory with content several levels down, whited out then re-added
    chain: tuple[str, ...]  #: the directory names below ``deep``, 2 to 5 of them
    opaque: str  #: a directory made opaque in layer 2
    fresh: str  #: an opaque directory that nothing below had
    readd: str  #: deleted and re-added, twice
    file_to_dir: str  #: a file, then a directory
    dir_to_file: str  #: a directory, then a file, then a directory again
    links: str  #: a hard link, symlinks
    odd: str  #: odd names
    top: str  #: a top-level directory made opaque in layer 2, one name re-added in it
    words: tuple[str, ...]  #: more names to use

    def under_deep(self, depth: int) -> str:
        """``deep`` and the first ``depth`` names of the chain."""
        return "/".join((self.deep, *self.chain[:depth]))


def case_paths(rng: random.Random) -> CasePaths:
    """Draw the paths for one seed (``ctx.shared_random("cases")``)."""
    words = rng.sample(_WORDS, len(_WORDS))
    base = f"srv/{rng.choice(_APPS)}"
    chain = tuple(f"{w}{i}" for i, w in enumerate(words[6 : 6 + rng.randint(2, 5)], start=1))
    return CasePaths(
        base=base,
        deep=f"{base}/{words[0]}",
        chain=chain,
        opaque=f"{base}/{words[1]}.d",
        fresh=f"{base}/{words[2]}-new.d",
        readd=f"{base}/{words[3]}.conf",
        file_to_dir=f"{base}/{words[4]}",
        dir_to_file=f"{base}/{words[5]}",
        links=f"{base}/{rng.choice(('links', 'lib', 'share'))}",
        odd=f"{base}/odd names {rng.choice(('α', 'ü', '✓'))}",
        top=rng.choice(("opt", "data", "var-lib")),
        words=tuple(words[11:]),
    )


def _paths(ctx: LayerContext) -> CasePaths:
    return case_paths(ctx.shared_random("cases"))


def _text(ctx: LayerContext, what: str) -> str:
    return f"{what}: {ctx.fake.sentence()}\n"


# Odd names: each one a plain file; the last four look like overlay's markers but are not.
ODD_NAMES = (
    "with space.txt",
    " leading space",
    "café crème.txt",
    "한글 파일.txt",
    "notes.wh.txt",
    ".wh",
    "wh..wh..opq",
    "..wh..x",
)


def _layout(ctx: LayerContext) -> None:
    p = _paths(ctx)
    for depth in range(len(p.chain) + 1):
        ctx.file(f"{p.under_deep(depth)}/level{depth}.txt", _text(ctx, f"level {depth}"))
    ctx.file(f"{p.opaque}/keep.txt", _text(ctx, "kept name"))
    ctx.file(f"{p.opaque}/old.txt", _text(ctx, "old"))
    ctx.file(f"{p.opaque}/sub/nested.txt", _text(ctx, "nested"))
    ctx.file(p.readd, _text(ctx, "first"))
    ctx.file(p.file_to_dir, _text(ctx, "a file for now"))
    ctx.file(f"{p.dir_to_file}/child.txt", _text(ctx, "child"))
    ctx.file(f"{p.dir_to_file}/sub/grandchild.txt", _text(ctx, "grandchild"))
    ctx.file(f"{p.links}/data.bin", ctx.fake.binary(length=ctx.fake.random_int(64, 256)))
    ctx.hardlink(f"{p.links}/alias.bin", f"{p.links}/data.bin")
    ctx.symlink(f"{p.links}/current", "data.bin")
    ctx.symlink(f"{p.links}/deep-dir", "/" + p.under_deep(1))
    for name in ODD_NAMES:
        ctx.file(f"{p.odd}/{name}", _text(ctx, "odd"))
    ctx.file(f"{p.top}/{p.words[3]}/state.txt", _text(ctx, "state"))
    ctx.file(f"{p.top}/cache.bin", ctx.fake.binary(length=32))


def _prune(ctx: LayerContext) -> None:
    p = _paths(ctx)
    ctx.delete(p.deep)
    ctx.delete(p.readd)
    ctx.opaque(p.opaque)
    ctx.file(f"{p.opaque}/keep.txt", _text(ctx, "kept name, new bytes"))
    ctx.file(f"{p.opaque}/{p.words[0]}.txt", _text(ctx, "own"))
    ctx.opaque(p.top)
    ctx.file(f"{p.top}/{p.words[3]}/state.txt", _text(ctx, "state, anew"))
    ctx.opaque(p.fresh)
    ctx.file(f"{p.fresh}/{p.words[1]}.txt", _text(ctx, "fresh"))
    ctx.dir(p.file_to_dir)
    ctx.file(f"{p.file_to_dir}/inside.txt", _text(ctx, "inside"))
    ctx.file(p.dir_to_file, _text(ctx, "a file over a directory"))
    ctx.file(f"{p.links}/data.bin", ctx.fake.binary(length=ctx.fake.random_int(64, 256)))
    ctx.delete(f"{p.odd}/{ODD_NAMES[0]}")


def _readd(ctx: LayerContext) -> None:
    p = _paths(ctx)
    ctx.file(f"{p.under_deep(1)}/again.txt", _text(ctx, "again"))
    ctx.file(p.readd, _text(ctx, "second"))
    ctx.delete(f"{p.opaque}/keep.txt")
    ctx.delete(f"{p.links}/data.bin")
    ctx.file(f"{p.odd}/{ODD_NAMES[3]}", _text(ctx, "edited"))


def _again(ctx: LayerContext) -> None:
    p = _paths(ctx)
    ctx.delete(p.readd)
    ctx.file(f"{p.opaque}/old.txt", _text(ctx, "back"))
    ctx.file(f"{p.dir_to_file}/child.txt", _text(ctx, "a new child"))
    ctx.file(f"{p.file_to_dir}/inside.txt", _text(ctx, "edited inside"))
    ctx.symlink(f"{p.links}/data.bin", "alias.bin")
    ctx.file(f"{p.odd}/{ODD_NAMES[0]}", _text(ctx, "back again"))


def _last(ctx: LayerContext) -> None:
    p = _paths(ctx)
    ctx.file(f"{p.readd}/{p.words[2]}.txt", _text(ctx, "third time, a directory"))
    ctx.file(f"{p.under_deep(len(p.chain))}/level{len(p.chain)}.txt", _text(ctx, "deepest, back"))
    ctx.file(f"{p.opaque}/sub/nested.txt", _text(ctx, "nested, back"))
    ctx.file(f"{p.under_deep(1)}/again.txt", _text(ctx, "again, edited"))


#: The five layers, bottom first.
CASES_LAYERS: tuple[LayerRecipe, ...] = (
    LayerRecipe("cases-1-layout", _layout),
    LayerRecipe("cases-2-prune", _prune),
    LayerRecipe("cases-3-readd", _readd),
    LayerRecipe("cases-4-again", _again),
    LayerRecipe("cases-5-last", _last),
)

_COMMANDS = (
    "sh /build/layout.sh",
    "sh /build/prune.sh",
    "sh /build/readd.sh",
    "sh /build/again.sh",
    "sh /build/last.sh",
)

CASES_LATEST = ImageRecipe(
    name="cases:latest",
    base="busybox:latest",
    steps=(
        *(run(command, layer) for command, layer in zip(_COMMANDS, CASES_LAYERS)),
        nop("LABEL org.example.lab=overlay-cases"),
    ),
    config={"Labels": {"org.example.lab": "overlay-cases"}},
    pulled=False,
)
