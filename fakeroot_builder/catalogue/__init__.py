"""The images and containers of the fake host, as Dockerfile-like recipes.

Each module here is one image family (``debian``, ``nginx``, ``redis``…): module-level
:class:`~fakeroot_builder.recipe.LayerRecipe` constants for its layers and the
:class:`~fakeroot_builder.recipe.ImageRecipe` values built from them. Layers shared between images
are shared *recipes* (``nginx:latest`` and ``nginx:alpine`` use the same entrypoint COPY layers;
``redis:7`` and ``python:3.12-slim`` the same Debian base), so they get identical bytes.

To add an image: write its layer recipes in a module here and append one ImageRecipe to IMAGES
(after its base). Layer content must come from ``ctx.fake`` only, so a seed always gives the same
bytes and two seeds give different ones.
"""

from __future__ import annotations

from ..recipe import ImageRecipe
from .alpine import ALPINE_3_19
from .busybox import BUSYBOX_LATEST
from .cases import CASES_LATEST
from .containers import CONTAINERS
from .debian import DEBIAN_BOOKWORM_SLIM
from .deep import DEEP_LATEST
from .nginx import NGINX_LATEST
from .nginx_alpine import NGINX_ALPINE
from .python import PYTHON_3_12_SLIM
from .redis import REDIS_7

__all__ = [
    "ALPINE_IMAGE",
    "BUSYBOX_IMAGE",
    "CASES_IMAGE",
    "CONTAINERS",
    "DEBIAN_IMAGE",
    "DEEP_IMAGE",
    "IMAGES",
    "NGINX_ALPINE_IMAGE",
    "NGINX_IMAGE",
    "PYTHON_IMAGE",
    "REDIS_IMAGE",
]

#: Every image on the host, in the order the host pulled (or built) them; bases come first.
IMAGES: tuple[ImageRecipe, ...] = (
    DEBIAN_BOOKWORM_SLIM,
    NGINX_LATEST,
    REDIS_7,
    PYTHON_3_12_SLIM,
    ALPINE_3_19,
    NGINX_ALPINE,
    BUSYBOX_LATEST,
    DEEP_LATEST,
    CASES_LATEST,
)

# Names of the images with a shape tests and labs look for.
#: One layer, no parent.
DEBIAN_IMAGE = DEBIAN_BOOKWORM_SLIM.name
#: Seven layers (one whiteout, one opaque directory) and an extra tag.
NGINX_IMAGE = NGINX_LATEST.name
#: Shares its base layer with nginx:latest and python:3.12-slim.
REDIS_IMAGE = REDIS_7.name
#: Shares its base layer with nginx:latest and redis:7.
PYTHON_IMAGE = PYTHON_3_12_SLIM.name
#: One layer, its tools symlinks to /bin/busybox.
ALPINE_IMAGE = ALPINE_3_19.name
#: The same five COPY layers as nginx:latest, on another parent: one layer id, two db ids each.
NGINX_ALPINE_IMAGE = NGINX_ALPINE.name
#: One layer, its tools hard links to /bin/busybox.
BUSYBOX_IMAGE = BUSYBOX_LATEST.name
#: 41 layers built locally on busybox (not pulled), one whiteout far above its file.
DEEP_IMAGE = "deep:latest"
#: Five layers on busybox where every overlay rule makes a difference (whiteouts and re-adds,
#: opaque directories, a file over a directory and back, links, odd names).
CASES_IMAGE = CASES_LATEST.name
