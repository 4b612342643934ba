"""``redis:7``: Redis built from source on ``debian:bookworm-slim``, as the official image does.

Four layers: the ``redis`` account (uid/gid 999), ``gosu``, the build (binaries, and ``/data``
owned by redis), and the entrypoint script that drops root before starting the server.
"""

from __future__ import annotations

from ..recipe import ImageRecipe, LayerContext, LayerRecipe
from ._common import add_binary, copy_step, nop, run, static_hex, workdir
from .debian import DEBIAN_PATH, LIBSSL3, SystemAccount, write_accounts, write_dpkg_status

__all__ = [
    "REDIS_7",
    "REDIS_ACCOUNT_LAYER",
    "REDIS_BUILD_LAYER",
    "REDIS_ENTRYPOINT_LAYER",
    "REDIS_GOSU_LAYER",
]

REDIS_VERSION = "7.2.1"
GOSU_VERSION = "1.16"
_REDIS_URL = f"http://download.redis.io/releases/redis-{REDIS_VERSION}.tar.gz"
_REDIS_SHA = static_hex(f"redis-{REDIS_VERSION}.tar.gz")
_REDIS_UID = 999

_REDIS_ACCOUNT = SystemAccount("redis:x:999:999::/home/redis:/bin/sh", "redis:x:999:")


def _accounts(ctx: LayerContext) -> None:
    """``groupadd -r -g 999 redis; useradd -r -g redis -u 999 redis``: four rewritten files."""
    write_accounts(ctx, [_REDIS_ACCOUNT])


def _gosu(ctx: LayerContext) -> None:
    """gosu, downloaded and verified; the apt lists it needed are gone again."""
    banners = (f"gosu version {GOSU_VERSION}", "go1.18.2", "github.com/tianon/gosu")
    # a static Go binary: no interpreter
    add_binary(ctx, "usr/local/bin/gosu", *banners, size=ctx.fake.random_int(1200, 1800), interpreter=None)
    ctx.delete("var/lib/apt/lists/auxfiles")
    write_dpkg_status(ctx)  # dpkg rewrote it (install, then purge): same text, new copy in this layer
    ctx.file("var/lib/apt/extended_states", "")


def _build(ctx: LayerContext) -> None:
    """``make install``; the other tools are symlinks to redis-server (same binary, checked by md5)."""
    build_id = ctx.fake.hexify("^" * 16)
    banner = f"Redis server v={REDIS_VERSION} sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build={build_id}"
    add_binary(ctx, "usr/local/bin/redis-server", banner, size=ctx.fake.random_int(2000, 3000))
    add_binary(ctx, "usr/local/bin/redis-cli", f"redis-cli {REDIS_VERSION}")
    add_binary(ctx, "usr/local/bin/redis-benchmark", f"redis-benchmark {REDIS_VERSION}")
    for tool in ("redis-check-aof", "redis-check-rdb", "redis-sentinel"):
        ctx.symlink(f"usr/local/bin/{tool}", "redis-server")
    add_binary(ctx, "usr/lib/x86_64-linux-gnu/libssl.so.3", "OpenSSL 3.0.11 19 Sep 2023", interpreter=None)
    add_binary(ctx, "usr/lib/x86_64-linux-gnu/libcrypto.so.3", "OpenSSL 3.0.11 19 Sep 2023", interpreter=None)
    write_dpkg_status(ctx, [LIBSSL3])  # kept: redis-server links against it
    ctx.file("var/lib/apt/extended_states", "Package: libssl3\nArchitecture: amd64\nAuto-Installed: 0\n\n")
    ctx.dir("data", 0o755, _REDIS_UID, _REDIS_UID)  # mkdir /data && chown redis:redis /data


_ENTRYPOINT = """\
#!/bin/sh
set -e
# @PROVENANCE@

# first arg is `-f` or `--some-option`
# or first arg is `something.conf`
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
\tset -- redis-server "$@"
fi

# allow the container to be started with `--user`
if [ "$1" = 'redis-server' -a "$(id -u)" = '0' ]; then
\tfind . \\! -user redis -exec chown redis '{}' +
\texec gosu redis "$0" "$@"
fi

# set an appropriate umask (if one isn't set already)
# - https://github.com/docker-library/redis/issues/305
um="$(umask)"
if [ "$um" = '0022' ]; then
\tumask 0077
fi

exec "$@"
"""


def _entrypoint(ctx: LayerContext) -> None:
    """``COPY docker-entrypoint.sh /usr/local/bin/``."""
    provenance = f"from https://github.com/docker-library/redis/blob/{ctx.fake.sha1()}/7.2/debian/docker-entrypoint.sh"
    ctx.file("usr/local/bin/docker-entrypoint.sh", _ENTRYPOINT.replace("@PROVENANCE@", provenance), 0o775)


REDIS_ACCOUNT_LAYER = LayerRecipe("redis-7-account", _accounts)
REDIS_GOSU_LAYER = LayerRecipe("redis-7-gosu", _gosu)
REDIS_BUILD_LAYER = LayerRecipe("redis-7-build", _build)
REDIS_ENTRYPOINT_LAYER = LayerRecipe("redis-7-entrypoint", _entrypoint)

_ACCOUNT_RUN = "set -eux; \\\n\tgroupadd -r -g 999 redis; \\\n\tuseradd -r -g redis -u 999 redis"

_GOSU_RUN = r"""\
set -eux; \
	savedAptMark="$(apt-mark showmanual)"; \
	apt-get update; \
	apt-get install -y --no-install-recommends ca-certificates gnupg wget; \
	rm -rf /var/lib/apt/lists/*; \
	dpkgArch="$(dpkg --print-architecture | awk -F- '{ print $NF }')"; \
	wget -O /usr/local/bin/gosu "https://github.com/tianon/gosu/releases/download/$GOSU_VERSION/gosu-$dpkgArch"; \
	wget -O /usr/local/bin/gosu.asc \
"https://github.com/tianon/gosu/releases/download/$GOSU_VERSION/gosu-$dpkgArch.asc"; \
	export GNUPGHOME="$(mktemp -d)"; \
	gpg --batch --keyserver hkps://keys.openpgp.org --recv-keys B42F6819007F00F88E364FD4036A9C25BF357DD4; \
	gpg --batch --verify /usr/local/bin/gosu.asc /usr/local/bin/gosu; \
	gpgconf --kill all; \
	rm -rf "$GNUPGHOME" /usr/local/bin/gosu.asc; \
	apt-mark auto '.*' > /dev/null; \
	[ -z "$savedAptMark" ] || apt-mark manual $savedAptMark > /dev/null; \
	apt-get purge -y --auto-remove -o APT::AutoRemove::RecommendsImportant=false; \
	chmod +x /usr/local/bin/gosu; \
	gosu --version; \
	gosu nobody true
"""

_BUILD_RUN = r"""\
set -eux; \
	\
	savedAptMark="$(apt-mark showmanual)"; \
	apt-get update; \
	apt-get install -y --no-install-recommends ca-certificates wget dpkg-dev gcc libc6-dev libssl-dev make; \
	rm -rf /var/lib/apt/lists/*; \
	\
	wget -O redis.tar.gz "$REDIS_DOWNLOAD_URL"; \
	echo "$REDIS_DOWNLOAD_SHA *redis.tar.gz" | sha256sum -c -; \
	mkdir -p /usr/src/redis; \
	tar -xzf redis.tar.gz -C /usr/src/redis --strip-components=1; \
	rm redis.tar.gz; \
	\
	grep -E '^ *createBoolConfig[(]"protected-mode",.*, *1 *,.*[)],$' /usr/src/redis/src/config.c; \
	sed -ri 's!^( *createBoolConfig[(]"protected-mode",.*, *)1( *,.*[)],)$!\10\2!' /usr/src/redis/src/config.c; \
	\
	export BUILD_TLS=yes; \
	make -C /usr/src/redis -j "$(nproc)" all; \
	make -C /usr/src/redis install; \
	\
	serverMd5="$(md5sum /usr/local/bin/redis-server | cut -d' ' -f1)"; export serverMd5; \
	find /usr/local/bin/redis* -maxdepth 0 \
		-type f -not -name redis-server \
		-exec sh -eux -c ' \
			md5="$(md5sum "$1" | cut -d" " -f1)"; \
			test "$md5" = "$serverMd5"; \
		' -- '{}' ';' \
		-exec ln -svfT 'redis-server' '{}' ';' \
	; \
	\
	rm -r /usr/src/redis; \
	\
	apt-mark auto '.*' > /dev/null; \
	[ -z "$savedAptMark" ] || apt-mark manual $savedAptMark > /dev/null; \
	apt-get purge -y --auto-remove -o APT::AutoRemove::RecommendsImportant=false; \
	\
	redis-cli --version; \
	redis-server --version; \
	\
	mkdir /data && chown redis:redis /data
"""

REDIS_7 = ImageRecipe(
    name="redis:7",
    base="debian:bookworm-slim",
    steps=(
        run(_ACCOUNT_RUN, REDIS_ACCOUNT_LAYER),
        nop(f"ENV GOSU_VERSION={GOSU_VERSION}"),
        run(_GOSU_RUN, REDIS_GOSU_LAYER),
        nop(f"ENV REDIS_VERSION={REDIS_VERSION}"),
        nop(f"ENV REDIS_DOWNLOAD_URL={_REDIS_URL}"),
        nop(f"ENV REDIS_DOWNLOAD_SHA={_REDIS_SHA}"),
        run(_BUILD_RUN, REDIS_BUILD_LAYER),
        nop("VOLUME [/data]"),
        workdir("/data"),
        copy_step(REDIS_ENTRYPOINT_LAYER, "/usr/local/bin/"),
        nop('ENTRYPOINT ["docker-entrypoint.sh"]'),
        nop("EXPOSE map[6379/tcp:{}]"),
        nop('CMD ["redis-server"]'),
    ),
    config={
        "Env": [DEBIAN_PATH, f"GOSU_VERSION={GOSU_VERSION}", f"REDIS_VERSION={REDIS_VERSION}",
                f"REDIS_DOWNLOAD_URL={_REDIS_URL}", f"REDIS_DOWNLOAD_SHA={_REDIS_SHA}"],
        "Volumes": {"/data": {}},
        "WorkingDir": "/data",
        "Entrypoint": ["docker-entrypoint.sh"],
        "ExposedPorts": {"6379/tcp": {}},
        "Cmd": ["redis-server"],
    },
)
