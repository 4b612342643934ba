"""``deep:latest``: an image built locally on busybox with one small layer per ``RUN``.

Forty steps each write ``/layers/NN.txt`` (one deletes an earlier file too), so the stack is 41
layers deep: long ``lower`` chains, long ``parent`` walks, and a whiteout far from the file it
hides. It was built, not pulled (``pulled=False``): no manifest, no ``distribution/`` entries.
"""

from __future__ import annotations

from collections.abc import Callable

from ..recipe import ImageRecipe, LayerContext, LayerRecipe
from ._common import nop, run

__all__ = ["DEEP_LATEST", "DEEP_LAYERS", "DEEP_STEP_COUNT", "DELETED_STEP", "DELETING_STEP"]

#: How many ``RUN`` layers ``deep:latest`` adds on top of busybox.
DEEP_STEP_COUNT = 40
#: Step :data:`DELETING_STEP` removes the file step :data:`DELETED_STEP` wrote.
DELETED_STEP = 7
DELETING_STEP = 29

_WRITE = "echo \"step {n}: $(hexdump -n 8 -e '8/1 \"%02x\"' /dev/urandom)\" > /layers/{n:02d}.txt"


def _command(n: int) -> str:
    """The shell command of step ``n`` as ``docker history`` shows it."""
    parts = []
    if n == 1:
        parts.append("mkdir /layers")
    if n == DELETING_STEP:
        parts.append(f"rm /layers/{DELETED_STEP:02d}.txt")
    parts.append(_WRITE.format(n=n))
    return " && ".join(parts)


def _step(n: int) -> Callable[[LayerContext], None]:
    def make(ctx: LayerContext) -> None:
        # the random token stands for the /dev/urandom read in the command
        ctx.file(f"layers/{n:02d}.txt", f"step {n}: {ctx.fake.hexify('^' * 16)}\n")
        if n == DELETING_STEP:
            ctx.delete(f"layers/{DELETED_STEP:02d}.txt")

    make.__doc__ = f"RUN {_command(n)}"
    return make


#: The layer recipes, step 1 first.
DEEP_LAYERS: tuple[LayerRecipe, ...] = tuple(
    LayerRecipe(f"deep-step-{n:02d}", _step(n)) for n in range(1, DEEP_STEP_COUNT + 1)
)

DEEP_LATEST = ImageRecipe(
    name="deep:latest",
    base="busybox:latest",
    steps=(
        *(run(_command(n), layer) for n, layer in enumerate(DEEP_LAYERS, start=1)),
        nop("LABEL org.example.lab=deep-lower-chain"),
    ),
    config={"Labels": {"org.example.lab": "deep-lower-chain"}},
    pulled=False,
)
