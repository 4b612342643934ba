"""``nginx:latest`` (on Debian) and the pieces ``nginx:alpine`` shares with it.

Like the real image: one big ``RUN`` layer installs nginx.org's package, then five ``COPY`` layers
add the entrypoint and its ``/docker-entrypoint.d`` scripts. Those five recipes are used by both
nginx images, so each of their layers has one layer id but sits on two parents (two db ids).

The packaged config files are fixed text, as they are in the real packages, so a container's
copy of ``default.conf`` can be derived from them (see :data:`DEFAULT_CONF_WITH_IPV6`); what varies
with the seed is the welcome page, the binaries and the scripts' provenance comments.
"""

from __future__ import annotations

from ..recipe import ImageRecipe, LayerContext, LayerRecipe, Step
from ._common import GLIBC_LOADER, add_binary, copy_step, nop, run
from .debian import (
    DEBIAN_PATH,
    LIBSSL3,
    DebPackage,
    SystemAccount,
    write_accounts,
    write_dpkg_list,
    write_dpkg_status,
)

__all__ = [
    "DEFAULT_CONF",
    "DEFAULT_CONF_WITH_IPV6",
    "ENTRYPOINT_D_LAYERS",
    "ENTRYPOINT_LAYER",
    "NGINX_DEBIAN_LAYER",
    "NGINX_LABELS",
    "NGINX_LATEST",
    "NGINX_RUNTIME_STEPS",
    "NGINX_VERSION",
    "add_nginx_files",
    "entrypoint_steps",
]

NGINX_VERSION = "1.25.2"
NJS_VERSION = "0.8.0"
NGINX_LABELS = {"maintainer": "NGINX Docker Maintainers <docker-maint@nginx.com>"}
_NGINX_UID = 101

# -- the packaged configuration ------------------------------------------------------------------

NGINX_CONF = """\

user  nginx;
worker_processes  auto;

error_log  /var/log/nginx/error.log notice;
pid        /var/run/nginx.pid;


events {
    worker_connections  1024;
}


http {
    include       /etc/nginx/mime.types;
    default_type  application/octet-stream;

    log_format  main  '$remote_addr - $remote_user [$time_local] "$request" '
                      '$status $body_bytes_sent "$http_referer" '
                      '"$http_user_agent" "$http_x_forwarded_for"';

    access_log  /var/log/nginx/access.log  main;

    sendfile        on;
    #tcp_nopush     on;

    keepalive_timeout  65;

    #gzip  on;

    include /etc/nginx/conf.d/*.conf;
}
"""

DEFAULT_CONF = """\
server {
    listen       80;
    server_name  localhost;

    #access_log  /var/log/nginx/host.access.log  main;

    location / {
        root   /usr/share/nginx/html;
        index  index.html index.htm;
    }

    #error_page  404              /404.html;

    # redirect server error pages to the static page /50x.html
    #
    error_page   500 502 503 504  /50x.html;
    location = /50x.html {
        root   /usr/share/nginx/html;
    }

    # deny access to .htaccess files, if Apache's document root
    # concurs with nginx's one
    #
    #location ~ /\\.ht {
    #    deny  all;
    #}
}
"""

#: ``default.conf`` after ``10-listen-on-ipv6-by-default.sh`` ran in a container (its ``sed``).
DEFAULT_CONF_WITH_IPV6 = DEFAULT_CONF.replace("listen       80;\n", "listen       80;\n    listen  [::]:80;\n", 1)

_MIME_TYPES = """\

types {
    text/html                                        html htm shtml;
    text/css                                         css;
    text/xml                                         xml;
    image/gif                                        gif;
    image/jpeg                                       jpeg jpg;
    application/javascript                           js;
    text/plain                                       txt;
    image/png                                        png;
    image/svg+xml                                    svg svgz;
    image/webp                                       webp;
    image/x-icon                                     ico;
    font/woff2                                       woff2;
    application/json                                 json;
    application/pdf                                  pdf;
    application/zip                                  zip;
    application/octet-stream                         bin exe dll;
    video/mp4                                        mp4;
}
"""


def _params(kind: str, names: tuple[str, ...]) -> str:
    """``fastcgi_params`` and friends: one ``<kind>_param NAME $var;`` line each."""
    width = max(len(n) for n in names) + 1
    return "\n" + "".join(f"{kind}_param  {n.ljust(width)}${n.lower()};\n" for n in names)


_PARAM_NAMES = ("QUERY_STRING", "REQUEST_METHOD", "CONTENT_TYPE", "CONTENT_LENGTH", "REQUEST_URI",
                "DOCUMENT_ROOT", "SERVER_PROTOCOL", "REMOTE_ADDR", "REMOTE_PORT", "SERVER_PORT", "SERVER_NAME")

_FIFTY_X_HTML = """\
<!DOCTYPE html>
<html>
<head>
<title>Error</title>
<style>
html { color-scheme: light dark; }
body { width: 35em; margin: 0 auto;
font-family: Tahoma, Verdana, Arial, sans-serif; }
</style>
</head>
<body>
<h1>An error occurred.</h1>
<p>Sorry, the page you are looking for is currently unavailable.<br/>
Please try again later.</p>
<p>If you are the system administrator of this resource then you should check
the error log for details.</p>
<p><em>Faithfully yours, nginx.</em></p>
</body>
</html>
"""


def _index_html(note: str) -> str:
    """nginx's welcome page, with one seeded sentence so the page differs per seed."""
    return f"""\
<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
<style>
html {{ color-scheme: light dark; }}
body {{ width: 35em; margin: 0 auto;
font-family: Tahoma, Verdana, Arial, sans-serif; }}
</style>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and
working. Further configuration is required.</p>

<p>For online documentation and support please refer to
<a href="http://nginx.org/">nginx.org</a>.<br/>
Commercial support is available at
<a href="http://nginx.com/">nginx.com</a>.</p>

<p>{note}</p>
<p><em>Thank you for using nginx.</em></p>
</body>
</html>
"""


_NGINX_MODULES = ("ngx_http_js_module.so", "ngx_stream_js_module.so")


def add_nginx_files(ctx: LayerContext, interpreter: str, compiler: str) -> list[str]:
    """What nginx.org's packages install, on either distribution; returns the paths written.

    ``interpreter`` is the libc's program loader and ``compiler`` the ``built by`` banner.
    """
    written = {
        "etc/nginx/nginx.conf": NGINX_CONF,
        "etc/nginx/conf.d/default.conf": DEFAULT_CONF,
        "etc/nginx/mime.types": _MIME_TYPES,
        "etc/nginx/fastcgi_params": _params("fastcgi", _PARAM_NAMES),
        "etc/nginx/scgi_params": _params("scgi", _PARAM_NAMES),
        "etc/nginx/uwsgi_params": _params("uwsgi", _PARAM_NAMES),
        "usr/share/nginx/html/index.html": _index_html(ctx.fake.sentence(nb_words=10)),
        "usr/share/nginx/html/50x.html": _FIFTY_X_HTML,
    }
    for path, text in written.items():
        ctx.file(path, text)
    ctx.symlink("etc/nginx/modules", "../../usr/lib/nginx/modules")
    banners = (f"nginx version: nginx/{NGINX_VERSION}", f"built by {compiler}", "--prefix=/etc/nginx")
    add_binary(ctx, "usr/sbin/nginx", *banners, size=ctx.fake.random_int(1500, 2500), interpreter=interpreter)
    add_binary(ctx, "usr/sbin/nginx-debug", *banners, "--with-debug", interpreter=interpreter)
    for module in _NGINX_MODULES:
        add_binary(ctx, f"usr/lib/nginx/modules/{module}", f"njs {NJS_VERSION}", interpreter=None)
    ctx.dir("var/cache/nginx", 0o755, _NGINX_UID, _NGINX_UID)
    ctx.symlink("var/log/nginx/access.log", "/dev/stdout")  # `docker logs` shows nginx's logs
    ctx.symlink("var/log/nginx/error.log", "/dev/stderr")
    ctx.dir("docker-entrypoint.d")
    return [*written, "usr/sbin/nginx", "usr/sbin/nginx-debug", "etc/nginx/modules"]


# -- the entrypoint and its scripts (COPY layers shared by nginx:latest and nginx:alpine) -----------

_LOG_FUNCTION = """\
entrypoint_log() {
    if [ -z "${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ]; then
        echo "$@"
    fi
}
"""

_DOCKER_ENTRYPOINT = (
    """\
#!/bin/sh
# vim:sw=4:ts=4:et
# @PROVENANCE@

set -e

"""
    + _LOG_FUNCTION
    + """
if [ "$1" = "nginx" ] || [ "$1" = "nginx-debug" ]; then
    if /usr/bin/find "/docker-entrypoint.d/" -mindepth 1 -maxdepth 1 -type f -print -quit 2>/dev/null | read v; then
        entrypoint_log "$0: /docker-entrypoint.d/ is not empty, will attempt to perform configuration"

        entrypoint_log "$0: Looking for shell scripts in /docker-entrypoint.d/"
        find "/docker-entrypoint.d/" -follow -type f -print | sort -V | while read -r f; do
            case "$f" in
                *.envsh)
                    if [ -x "$f" ]; then
                        entrypoint_log "$0: Sourcing $f";
                        . "$f"
                    else
                        # warn on shell scripts without exec bit
                        entrypoint_log "$0: Ignoring $f, not executable";
                    fi
                    ;;
                *.sh)
                    if [ -x "$f" ]; then
                        entrypoint_log "$0: Launching $f";
                        "$f"
                    else
                        # warn on shell scripts without exec bit
                        entrypoint_log "$0: Ignoring $f, not executable";
                    fi
                    ;;
                *) entrypoint_log "$0: Ignoring $f";;
            esac
        done

        entrypoint_log "$0: Configuration complete; ready for start up"
    else
        entrypoint_log "$0: No files found in /docker-entrypoint.d/, skipping configuration"
    fi
fi

exec "$@"
"""
)

_LISTEN_ON_IPV6 = (
    """\
#!/bin/sh
# vim:sw=4:ts=4:et
# @PROVENANCE@

set -e

"""
    + _LOG_FUNCTION
    + r"""
ME=$(basename "$0")
DEFAULT_CONF_FILE="etc/nginx/conf.d/default.conf"

# check if we have ipv6 available
if [ ! -f "/proc/net/if_inet6" ]; then
    entrypoint_log "$ME: info: ipv6 not available"
    exit 0
fi

if [ ! -f "/$DEFAULT_CONF_FILE" ]; then
    entrypoint_log "$ME: info: /$DEFAULT_CONF_FILE is not a file or does not exist"
    exit 0
fi

# check if the file can be modified, e.g. not on a r/o filesystem
touch /$DEFAULT_CONF_FILE 2>/dev/null || { entrypoint_log "$ME: info: can not modify /$DEFAULT_CONF_FILE (read-only file system?)"; exit 0; }

# check if the file is already modified, e.g. on a container restart
grep -q "listen  \[::]\:80;" /$DEFAULT_CONF_FILE && { entrypoint_log "$ME: info: IPv6 listen already enabled"; exit 0; }

if [ -f "/etc/os-release" ]; then
    . /etc/os-release
else
    entrypoint_log "$ME: info: can not guess the operating system"
    exit 0
fi

entrypoint_log "$ME: info: Getting the checksum of /$DEFAULT_CONF_FILE"

case "$ID" in
    "debian")
        CHECKSUM=$(dpkg-query --show --showformat='${Conffiles}\n' nginx | grep $DEFAULT_CONF_FILE | cut -d' ' -f 3)
        echo "$CHECKSUM  /$DEFAULT_CONF_FILE" | md5sum -c - >/dev/null 2>&1 || {
            entrypoint_log "$ME: info: /$DEFAULT_CONF_FILE differs from the packaged version"
            exit 0
        }
        ;;
    "alpine")
        CHECKSUM=$(apk manifest nginx 2>/dev/null| grep $DEFAULT_CONF_FILE | cut -d' ' -f 1 | cut -d ':' -f 2)
        echo "$CHECKSUM  /$DEFAULT_CONF_FILE" | sha1sum -c - >/dev/null 2>&1 || {
            entrypoint_log "$ME: info: /$DEFAULT_CONF_FILE differs from the packaged version"
            exit 0
        }
        ;;
    *)
        entrypoint_log "$ME: info: Unsupported distribution"
        exit 0
        ;;
esac

# enable ipv6 on default.conf listen sockets
sed -i -E 's,listen       80;,listen       80;\n    listen  [::]:80;,' /$DEFAULT_CONF_FILE

entrypoint_log "$ME: info: Enabled listen on IPv6 in /$DEFAULT_CONF_FILE"

exit 0
"""
)

_LOCAL_RESOLVERS = r"""#!/bin/sh
# vim:sw=2:ts=2:sts=2:et
# @PROVENANCE@

set -eu

LC_ALL=C
PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

[ "${NGINX_ENTRYPOINT_LOCAL_RESOLVERS:-}" ] || return 0

NGINX_LOCAL_RESOLVERS=$(awk 'BEGIN{ORS=" "} $1=="nameserver" {if ($2 ~ ":") {print "["$2"]"} else {print $2}}' /etc/resolv.conf)

NGINX_LOCAL_RESOLVERS="${NGINX_LOCAL_RESOLVERS% }"

export NGINX_LOCAL_RESOLVERS
"""

_ENVSUBST_ON_TEMPLATES = r"""#!/bin/sh
# @PROVENANCE@

set -e

ME=$(basename "$0")

entrypoint_log() {
    if [ -z "${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ]; then
        echo "$@"
    fi
}

auto_envsubst() {
  local template_dir="${NGINX_ENVSUBST_TEMPLATE_DIR:-/etc/nginx/templates}"
  local suffix="${NGINX_ENVSUBST_TEMPLATE_SUFFIX:-.template}"
  local output_dir="${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}"
  local filter="${NGINX_ENVSUBST_FILTER:-}"

  local template defined_envs relative_path output_path subdir
  defined_envs=$(printf '${%s} ' $(awk "END { for (name in ENVIRON) { print ( name ~ /${filter}/ ) ? name : \"\" } }" < /dev/null ))
  [ -d "$template_dir" ] || return 0
  if [ ! -w "$output_dir" ]; then
    entrypoint_log "$ME: ERROR: $template_dir exists, but $output_dir is not writable"
    return 0
  fi
  find "$template_dir" -follow -type f -name "*$suffix" -print | while read -r template; do
    relative_path="${template#"$template_dir/"}"
    output_path="$output_dir/${relative_path%"$suffix"}"
    subdir=$(dirname "$relative_path")
    # create a subdirectory where the template file exists
    mkdir -p "$output_dir/$subdir"
    entrypoint_log "$ME: Running envsubst on $template to $output_path"
    envsubst "$defined_envs" < "$template" > "$output_path"
  done
}

auto_envsubst

exit 0
"""

_TUNE_WORKER_PROCESSES = r"""#!/bin/sh
# vim:sw=2:ts=2:sts=2:et
# @PROVENANCE@

set -eu

LC_ALL=C
ME=$(basename "$0")
PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

[ "${NGINX_ENTRYPOINT_WORKER_PROCESSES_AUTOTUNE:-}" ] || exit 0

touch /etc/nginx/nginx.conf 2>/dev/null || { echo >&2 "$ME: error: can not modify /etc/nginx/nginx.conf (read-only file system?)"; exit 0; }

ceildiv() {
  num=$1
  div=$2
  echo $(( (num + div - 1) / div ))
}

get_quota() {
  cpuroot=$1
  [ -f "$cpuroot/cpu.max" ] || return 1
  cfs_quota=$(cut -d' ' -f 1 < "$cpuroot/cpu.max")
  cfs_period=$(cut -d' ' -f 2 < "$cpuroot/cpu.max")
  [ "$cfs_quota" = "max" ] && return 1
  [ "$cfs_period" = "0" ] && return 1
  ceildiv "$cfs_quota" "$cfs_period"
}

ncpu_online=$(getconf _NPROCESSORS_ONLN)
ncpu_quota=$(get_quota /sys/fs/cgroup || echo "$ncpu_online")
ncpu=$(( ncpu_quota < ncpu_online ? ncpu_quota : ncpu_online ))

sed -i.bak -r 's/^(worker_processes)(.*)$/# Commented out by '"$ME"' on '"$(date)"'\n#\1\2\n\1 '"$ncpu"';/' /etc/nginx/nginx.conf
"""


def _script_layer(name: str, path: str, script: str) -> LayerRecipe:
    """A COPY layer holding one script (mode 0775, as in docker-nginx's repository)."""
    source = f"https://github.com/nginx/docker-nginx/blob/{{commit}}/entrypoint/{path.rsplit('/', 1)[-1]}"

    def make(ctx: LayerContext) -> None:
        # the provenance comment names the commit the file was last changed in: seeded
        provenance = "from " + source.format(commit=ctx.fake.sha1())
        ctx.file(path, script.replace("@PROVENANCE@", provenance), 0o775)

    return LayerRecipe(name, make)


#: ``COPY docker-entrypoint.sh /``
ENTRYPOINT_LAYER = _script_layer("nginx-docker-entrypoint", "docker-entrypoint.sh", _DOCKER_ENTRYPOINT)

#: The four ``COPY <script> /docker-entrypoint.d`` layers, in Dockerfile order.
ENTRYPOINT_D_LAYERS: tuple[LayerRecipe, ...] = tuple(
    _script_layer(f"nginx-entrypoint-{name.split('.')[0]}", f"docker-entrypoint.d/{name}", script)
    for name, script in (
        ("10-listen-on-ipv6-by-default.sh", _LISTEN_ON_IPV6),
        ("15-local-resolvers.envsh", _LOCAL_RESOLVERS),
        ("20-envsubst-on-templates.sh", _ENVSUBST_ON_TEMPLATES),
        ("30-tune-worker-processes.sh", _TUNE_WORKER_PROCESSES),
    )
)


def entrypoint_steps() -> tuple[Step, ...]:
    """The five COPY steps, identical (same recipes, same history lines) in both nginx images."""
    scripts = (copy_step(layer, "/docker-entrypoint.d") for layer in ENTRYPOINT_D_LAYERS)
    return (copy_step(ENTRYPOINT_LAYER, "/"), *scripts)


#: The config-only steps that end both nginx Dockerfiles.
NGINX_RUNTIME_STEPS: tuple[Step, ...] = (
    nop('ENTRYPOINT ["/docker-entrypoint.sh"]'),
    nop("EXPOSE map[80/tcp:{}]"),
    nop("STOPSIGNAL SIGQUIT"),
    nop('CMD ["nginx" "-g" "daemon off;"]'),
)


def nginx_image(
    *, name: str, base: str, path_env: str, pkg_release: str, run_text: str, layer: LayerRecipe,
    tags: tuple[str, ...] = (),
) -> ImageRecipe:
    """An official nginx image: both Dockerfiles differ only in base, install step and release."""
    return ImageRecipe(
        name=name,
        base=base,
        steps=(
            nop(f"LABEL maintainer={NGINX_LABELS['maintainer']}"),
            nop(f"ENV NGINX_VERSION={NGINX_VERSION}"),
            nop(f"ENV NJS_VERSION={NJS_VERSION}"),
            nop(f"ENV PKG_RELEASE={pkg_release}"),
            run(run_text, layer),
            *entrypoint_steps(),
            *NGINX_RUNTIME_STEPS,
        ),
        config={
            "Env": [path_env, f"NGINX_VERSION={NGINX_VERSION}", f"NJS_VERSION={NJS_VERSION}", f"PKG_RELEASE={pkg_release}"],
            "Entrypoint": ["/docker-entrypoint.sh"],
            "Cmd": ["nginx", "-g", "daemon off;"],
            "ExposedPorts": {"80/tcp": {}},
            "Labels": dict(NGINX_LABELS),
            "StopSignal": "SIGQUIT",
        },
        tags=tags,
    )

# -- nginx:latest -------------------------------------------------------------------------------------

_NGINX_ACCOUNT = SystemAccount("nginx:x:101:101:nginx user:/nonexistent:/bin/false", "nginx:x:101:")
_NGINX_ORG = "NGINX Packaging <nginx-packaging@f5.com>"

_NGINX_PACKAGES = (
    DebPackage("nginx", f"{NGINX_VERSION}-1~bookworm", "httpd", 3286, _NGINX_ORG,
               "high performance web server", priority="optional",
               depends="libc6 (>= 2.34), libcrypt1 (>= 1:4.1.0), libpcre2-8-0 (>= 10.22), libssl3 (>= 3.0.0), lsb-base",
               conffiles=(("/etc/nginx/conf.d/default.conf", DEFAULT_CONF), ("/etc/nginx/nginx.conf", NGINX_CONF),
                          ("/etc/nginx/mime.types", _MIME_TYPES))),
    DebPackage("nginx-module-njs", f"{NGINX_VERSION}+{NJS_VERSION}-1~bookworm", "httpd", 5122, _NGINX_ORG,
               "nginx njs dynamic modules", priority="optional", depends=f"nginx (= {NGINX_VERSION}-1~bookworm)"),
    DebPackage("gettext-base", "0.21-12", "utils", 463, "Santiago Vila <sanvila@debian.org>",
               "GNU Internationalization utilities for the base system", priority="standard"),
    LIBSSL3,
)

_PIN_NGINX_ORG = "Package: *\nPin: origin nginx.org\nPin: release o=nginx\nPin-Priority: 900\n"

_NGINX_RUN = r"""\
set -x \
    && groupadd --system --gid 101 nginx \
    && useradd --system --gid nginx --no-create-home --home /nonexistent --comment "nginx user" \
--shell /bin/false --uid 101 nginx \
    && apt-get update \
    && apt-get install --no-install-recommends --no-install-suggests -y gnupg1 ca-certificates \
    && \
    NGINX_GPGKEY=573BFD6B3D8FBC641079A6ABABF5BD827BD9BF62; \
    NGINX_GPGKEY_PATH=/usr/share/keyrings/nginx-archive-keyring.gpg; \
    export GNUPGHOME="$(mktemp -d)"; \
    gpg1 --batch --keyserver hkp://keyserver.ubuntu.com:80 --recv-keys "$NGINX_GPGKEY"; \
    gpg1 --batch --export "$NGINX_GPGKEY" > "$NGINX_GPGKEY_PATH" ; \
    rm -rf "$GNUPGHOME"; \
    apt-get remove --purge --auto-remove -y gnupg1 && rm -rf /var/lib/apt/lists/* \
    && echo "deb [signed-by=$NGINX_GPGKEY_PATH] https://nginx.org/packages/mainline/debian/ bookworm nginx" \
> /etc/apt/sources.list.d/nginx.list \
    && rm -rf /etc/apt/preferences.d && mkdir /etc/apt/preferences.d \
    && printf 'Package: *\nPin: origin nginx.org\nPin: release o=nginx\nPin-Priority: 900\n' \
> /etc/apt/preferences.d/99nginx \
    && apt-get update \
    && apt-get install --no-install-recommends --no-install-suggests -y \
                        nginx=${NGINX_VERSION}-${PKG_RELEASE} \
                        nginx-module-njs=${NGINX_VERSION}+${NJS_VERSION}-${PKG_RELEASE} \
                        gettext-base \
    && apt-get remove --purge --auto-remove -y \
    && rm -rf /var/lib/apt/lists/* /etc/apt/sources.list.d/nginx.list \
    && ln -sf /dev/stdout /var/log/nginx/access.log \
    && ln -sf /dev/stderr /var/log/nginx/error.log \
    && mkdir /docker-entrypoint.d
"""


def _nginx_debian(ctx: LayerContext) -> None:
    """What the ``RUN`` of nginx's Dockerfile leaves on Debian."""
    write_accounts(ctx, [_NGINX_ACCOUNT])
    written = add_nginx_files(ctx, GLIBC_LOADER, "gcc 12.2.0 (Debian 12.2.0-14)")
    add_binary(ctx, "usr/bin/envsubst", "envsubst (GNU gettext-runtime) 0.21")
    add_binary(ctx, "usr/lib/x86_64-linux-gnu/libssl.so.3", "OpenSSL 3.0.11 19 Sep 2023", interpreter=None)
    add_binary(ctx, "usr/lib/x86_64-linux-gnu/libcrypto.so.3", "OpenSSL 3.0.11 19 Sep 2023", interpreter=None)
    ctx.file("usr/share/keyrings/nginx-archive-keyring.gpg", b"\x99\x01\x0d\x04" + ctx.fake.binary(length=300))
    ctx.file("etc/logrotate.d/nginx", _LOGROTATE)
    ctx.file("usr/share/doc/nginx/copyright", _NGINX_COPYRIGHT)
    # `rm -rf /etc/apt/preferences.d && mkdir …`: overlayfs marks the new directory opaque
    ctx.opaque("etc/apt/preferences.d")
    ctx.file("etc/apt/preferences.d/99nginx", _PIN_NGINX_ORG)
    # `rm -rf /var/lib/apt/lists/*` removed what the base image had there: a whiteout
    ctx.delete("var/lib/apt/lists/auxfiles")
    write_dpkg_status(ctx, _NGINX_PACKAGES)
    write_dpkg_list(ctx, "nginx", ["/" + p for p in written])
    ctx.file("var/lib/dpkg/info/nginx.conffiles", "".join(f"{p}\n" for p, _ in _NGINX_PACKAGES[0].conffiles))
    ctx.file("var/lib/dpkg/info/nginx.postinst", _NGINX_POSTINST, 0o755)


_LOGROTATE = """\
/var/log/nginx/*.log {
        daily
        missingok
        rotate 52
        compress
        delaycompress
        notifempty
        create 640 nginx adm
        sharedscripts
        postrotate
                if [ -f /var/run/nginx.pid ]; then
                        kill -USR1 `cat /var/run/nginx.pid`
                fi
        endscript
}
"""

_NGINX_COPYRIGHT = """\
/*
 * Copyright (C) 2002-2021 Igor Sysoev
 * Copyright (C) 2011-2023 Nginx, Inc.
 * All rights reserved.
 *
 * Redistribution and use in source and binary forms, with or without
 * modification, are permitted provided that the following conditions
 * are met:
 * 1. Redistributions of source code must retain the above copyright
 *    notice, this list of conditions and the following disclaimer.
 * 2. Redistributions in binary form must reproduce the above copyright
 *    notice, this list of conditions and the following disclaimer in the
 *    documentation and/or other materials provided with the distribution.
 */
"""

_NGINX_POSTINST = """\
#!/bin/sh
set -e

case "$1" in
    configure)
        if [ -z "$2" ]; then
            if [ ! -e "/var/log/nginx/access.log" ]; then
                touch /var/log/nginx/access.log
                chmod 640 /var/log/nginx/access.log
                chown nginx:adm /var/log/nginx/access.log
            fi
        fi
        ;;
esac

exit 0
"""

#: The ``RUN`` layer of ``nginx:latest``: package install, accounts, one whiteout, one opaque dir.
NGINX_DEBIAN_LAYER = LayerRecipe("nginx-1.25-bookworm-install", _nginx_debian)

NGINX_LATEST = nginx_image(
    name="nginx:latest",
    base="debian:bookworm-slim",
    path_env=DEBIAN_PATH,
    pkg_release="1~bookworm",
    run_text=_NGINX_RUN,
    layer=NGINX_DEBIAN_LAYER,
    tags=("nginx:1.25",),
)
