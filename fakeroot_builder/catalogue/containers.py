"""The containers of the fake host: some only created, some that ran and left changes behind.

A container's RW layer (``overlay2/<mount-id>/diff``) holds what it changed, with overlayfs's
rules: a modified file is copied up whole, a deleted one becomes a whiteout, and a directory gets
an entry (with its original owner and mode) when something inside it changes.
"""

from __future__ import annotations

from ..recipe import ContainerRecipe, LayerContext
from .cases import ODD_NAMES, case_paths
from .nginx import DEFAULT_CONF_WITH_IPV6

__all__ = ["CONTAINERS"]

_NGINX_UID = 101
_REDIS_UID = 999


def _nginx_ran(ctx: LayerContext) -> None:
    """nginx served a while: the IPv6 script edited default.conf, a page was added, one script deleted."""
    fake = ctx.fake
    # copied up and edited by 10-listen-on-ipv6-by-default.sh (`sed -i`)
    ctx.file("etc/nginx/conf.d/default.conf", DEFAULT_CONF_WITH_IPV6)
    # `docker cp` / `docker exec … tee` of a page: owner root, default mode
    title = fake.catch_phrase()
    body = "\n".join(f"<p>{fake.paragraph(nb_sentences=3)}</p>" for _ in range(2))
    page = (
        f"<!DOCTYPE html>\n<html>\n<head><title>{title}</title></head>\n"
        f"<body>\n<h1>{title}</h1>\n{body}\n</body>\n</html>\n"
    )
    ctx.file(f"usr/share/nginx/html/{fake.slug()}.html", page)
    # `rm /docker-entrypoint.d/30-tune-worker-processes.sh`: a whiteout hides the image's copy
    ctx.delete("docker-entrypoint.d/30-tune-worker-processes.sh")
    # nginx's temp dirs, made by the workers (user nginx) under the image's var/cache/nginx
    ctx.dir("var/cache/nginx", 0o755, _NGINX_UID, _NGINX_UID)
    for temp in ("client_temp", "fastcgi_temp", "proxy_temp", "scgi_temp", "uwsgi_temp"):
        ctx.dir(f"var/cache/nginx/{temp}", 0o700, _NGINX_UID, 0)


def _redis_ran(ctx: LayerContext) -> None:
    """redis-server saved its dataset on shutdown: /data/dump.rdb, owned by redis, umask 0077."""
    fake = ctx.fake
    ctx.dir("data", 0o755, _REDIS_UID, _REDIS_UID)
    header = b"REDIS0011\xfa\tredis-ver\x057.2.1\xfa\nredis-bits\xc0@"  # RDB v11 and its aux fields
    body = fake.binary(length=fake.random_int(120, 480))
    checksum = fake.binary(length=8)
    ctx.file("data/dump.rdb", header + body + b"\xff" + checksum, 0o600, _REDIS_UID, _REDIS_UID)


def _cases_ran(ctx: LayerContext) -> None:
    """A shell in cases:latest did what the image's layers did, once more, in the RW layer."""
    fake = ctx.fake
    p = case_paths(ctx.shared_random("cases"))
    # `rm -r` of a directory with content several levels down: one whiteout hides it all
    ctx.delete(p.under_deep(1))
    # `rm -rf d && mkdir d`: overlayfs makes the new directory opaque; one old name comes back
    ctx.opaque(p.opaque)
    ctx.file(f"{p.opaque}/old.txt", f"rewritten: {fake.sentence()}\n")
    # a file where the image has a directory, and the other way round
    ctx.file(p.readd, f"a file again: {fake.sentence()}\n")
    ctx.file(f"{p.dir_to_file}/child.txt/{p.words[3]}.txt", f"deeper: {fake.sentence()}\n")
    # one name of a hard-linked pair edited: copied up alone
    ctx.file(f"{p.links}/alias.bin", fake.binary(length=fake.random_int(32, 96)))
    # odd names: a new one, and one the image deleted in layer 2 and re-added in layer 4, deleted
    ctx.file(f"{p.odd}/new ✓ file.txt", f"odd: {fake.sentence()}\n")
    ctx.delete(f"{p.odd}/{ODD_NAMES[0]}")
    # a new directory tree inside the image's brand-new opaque directory
    ctx.file(f"{p.fresh}/{p.words[4]}/{p.words[5]}/leaf.txt", f"new: {fake.sentence()}\n")


#: Every container on the host, in the order they were created.
CONTAINERS: tuple[ContainerRecipe, ...] = (
    ContainerRecipe(image="nginx:latest", state="created"),
    ContainerRecipe(image="alpine:3.19", state="created", cmd=("sh", "-c", "echo hello from alpine")),
    ContainerRecipe(image="nginx:latest", state="exited", changes=_nginx_ran),
    ContainerRecipe(image="redis:7", state="exited", changes=_redis_ran),
    ContainerRecipe(image="cases:latest", state="created"),
    ContainerRecipe(image="cases:latest", state="exited", changes=_cases_ran),
)
