"""``nginx:alpine``: nginx on ``alpine:3.19``, sharing its five COPY layers with ``nginx:latest``.

Only the ``RUN`` layer differs (apk instead of apt, musl binaries). The entrypoint layers are the
very same :class:`LayerRecipe` objects as in :mod:`.nginx`: same bytes, same layer id, but on a
different parent, so the layer store holds them under two different db ids.
"""

from __future__ import annotations

from ..recipe import LayerContext, LayerRecipe
from ._common import MUSL_LOADER, add_binary
from .alpine import ALPINE_PATH, ApkPackage, write_alpine_accounts, write_apk_db
from .nginx import NGINX_VERSION, NJS_VERSION, add_nginx_files, nginx_image

__all__ = ["NGINX_ALPINE", "NGINX_ALPINE_LAYER"]

_NGINX_ORG = ("https://nginx.org/", "2-clause BSD-like license")
_GETTEXT = "https://www.gnu.org/software/gettext/gettext.html"

#: What the ``RUN`` adds to the base's packages, in install order.
_PACKAGES = (
    ApkPackage("pcre2", "10.42-r2", "Perl-compatible regular expression library", "https://pcre.org/",
               "BSD-3-Clause", 770048),
    ApkPackage("nginx", f"{NGINX_VERSION}-r1", "High performance web server", *_NGINX_ORG, 1249280),
    ApkPackage("nginx-module-njs", f"{NGINX_VERSION}.{NJS_VERSION}-r1", "nginx njs dynamic modules", *_NGINX_ORG,
               2895872),
    ApkPackage("libintl", "0.22.3-r0", "GNU gettext runtime library", _GETTEXT, "LGPL-2.1-or-later", 57344, "gettext"),
    ApkPackage("gettext-envsubst", "0.22.3-r0", "GNU gettext envsubst binary", _GETTEXT, "GPL-3.0-or-later", 36864,
               "gettext"),
    ApkPackage("tzdata", "2024a-r0", "Timezone data", "https://www.iana.org/time-zones", "Public-Domain", 1560576),
)

_RUN = r"""\
set -x \
    && addgroup -g 101 -S nginx \
    && adduser -S -D -H -u 101 -h /var/cache/nginx -s /sbin/nologin -G nginx -g nginx nginx \
    && apkArch="$(cat /etc/apk/arch)" \
    && nginxPackages=" \
        nginx=${NGINX_VERSION}-r${PKG_RELEASE} \
        nginx-module-njs=${NGINX_VERSION}.${NJS_VERSION}-r${PKG_RELEASE} \
    " \
    && apk add --no-cache --virtual .checksum-deps openssl \
    && wget -O /tmp/nginx_signing.rsa.pub https://nginx.org/keys/nginx_signing.rsa.pub \
    && mv /tmp/nginx_signing.rsa.pub /etc/apk/keys/ \
    && apk add -X "https://nginx.org/packages/mainline/alpine/v$(egrep -o '^[0-9]+\.[0-9]+' \
/etc/alpine-release)/main" --no-cache $nginxPackages \
    && apk del --no-network .checksum-deps \
    && if [ -f "/etc/apk/keys/nginx_signing.rsa.pub" ]; then rm -f /etc/apk/keys/nginx_signing.rsa.pub; fi \
    && apk add --no-cache gettext-envsubst \
    && apk add --no-cache tzdata \
    && mkdir /docker-entrypoint.d \
    && ln -sf /dev/stdout /var/log/nginx/access.log \
    && ln -sf /dev/stderr /var/log/nginx/error.log
"""


def _nginx_alpine(ctx: LayerContext) -> None:
    """What the ``RUN`` of nginx's Alpine Dockerfile leaves."""
    write_alpine_accounts(
        ctx,
        users=["nginx:x:101:101:nginx:/var/cache/nginx:/sbin/nologin"],
        groups=["nginx:x:101:nginx"],
    )
    add_nginx_files(ctx, MUSL_LOADER, "gcc 13.2.1 20231014 (Alpine 13.2.1_git20231014)")
    add_binary(ctx, "usr/bin/envsubst", "envsubst (GNU gettext-runtime) 0.22.3", interpreter=MUSL_LOADER)
    add_binary(ctx, "usr/lib/libintl.so.8.4.0", "libintl.so.8", interpreter=None)
    ctx.symlink("usr/lib/libintl.so.8", "libintl.so.8.4.0")
    add_binary(ctx, "usr/lib/libpcre2-8.so.0.11.2", "PCRE2 10.42", interpreter=None)
    ctx.symlink("usr/lib/libpcre2-8.so.0", "libpcre2-8.so.0.11.2")
    ctx.file("usr/share/zoneinfo/UTC", b"TZif2" + bytes(15) + ctx.fake.binary(length=40) + b"\nUTC0\n")
    ctx.symlink("etc/localtime", "/usr/share/zoneinfo/UTC")
    write_apk_db(ctx, _PACKAGES, world=("gettext-envsubst", "nginx", "nginx-module-njs", "tzdata"))
    ctx.file("lib/apk/db/triggers", "")


#: The ``RUN`` layer of ``nginx:alpine``.
NGINX_ALPINE_LAYER = LayerRecipe("nginx-1.25-alpine-install", _nginx_alpine)

NGINX_ALPINE = nginx_image(
    name="nginx:alpine",
    base="alpine:3.19",
    path_env=ALPINE_PATH,
    pkg_release="1",
    run_text=_RUN,
    layer=NGINX_ALPINE_LAYER,
)
