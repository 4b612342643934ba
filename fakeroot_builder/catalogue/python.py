"""``python:3.12-slim``: CPython built into ``/usr/local`` on ``debian:bookworm-slim``.

Three layers, as the official Dockerfile's ``RUN`` steps leave them: CA certificates and netbase
from apt, the CPython build (with the ``python -> python3`` convenience links), and pip.
"""

from __future__ import annotations

import base64
import hashlib

from ..recipe import ImageRecipe, LayerContext, LayerRecipe
from ._common import add_binary, nop, pem_block, run, static_hex
from .debian import LIBSSL3, DebPackage, write_dpkg_status

__all__ = ["PYTHON_3_12_SLIM", "PYTHON_BUILD_LAYER", "PYTHON_CA_LAYER", "PYTHON_PIP_LAYER"]

PYTHON_VERSION = "3.12.0"
PIP_VERSION = "23.2.1"
_GPG_KEY = "7169605F62C751356D054A26A821E680E5FA6305"
_GET_PIP_COMMIT = static_hex("get-pip commit", 40)
_GET_PIP_URL = f"https://github.com/pypa/get-pip/raw/{_GET_PIP_COMMIT}/public/get-pip.py"
_GET_PIP_SHA256 = static_hex("get-pip.py")
_PYTHON_PATH = "PATH=/usr/local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_OPENSSL_TEAM = "Debian OpenSSL Team <pkg-openssl-devel@alioth-lists.debian.net>"

#: What the first layer's ``apt-get install ca-certificates netbase`` adds to the base.
_CA_PACKAGES = (
    DebPackage("ca-certificates", "20230311", "misc", 384, "Julien Cristau <jcristau@debian.org>",
               "Common CA certificates", priority="optional", architecture="all",
               depends="openssl (>= 1.1.1)"),
    LIBSSL3,
    DebPackage("netbase", "6.4", "admin", 41, "Marco d'Itri <md@linux.it>", "Basic TCP/IP networking system",
               priority="optional", architecture="all"),
    DebPackage("openssl", "3.0.11-1~deb12u1", "utils", 2303, _OPENSSL_TEAM,
               "Secure Sockets Layer toolkit - cryptographic utility", priority="optional"),
)

#: Runtime libraries the build keeps (``apt-mark manual`` of what ``ldd`` finds).
_RUNTIME_PACKAGES = (
    DebPackage("libexpat1", "2.5.0-1", "libs", 403, "Laszlo Boszormenyi (GCS) <gcs@debian.org>",
               "XML parsing C library - runtime library", priority="optional"),
    DebPackage("libffi8", "3.4.4-1", "libs", 68, "Debian GCC Maintainers <debian-gcc@lists.debian.org>",
               "Foreign Function Interface library runtime", priority="optional"),
    DebPackage("libsqlite3-0", "3.40.1-2", "libs", 1660, "Laszlo Boszormenyi (GCS) <gcs@debian.org>",
               "SQLite 3 shared library", priority="optional"),
)

# -- layer 1: ca-certificates and netbase -----------------------------------------------------------

#: (file name under mozilla/, its subject hash) for the few CA certificates we ship.
_CAS = (
    ("ISRG_Root_X1", "4042bcee"),
    ("DigiCert_Global_Root_G2", "607986c7"),
    ("GlobalSign_Root_CA", "5ad8a5d6"),
)

_SERVICES = """\
# Network services, Internet style
tcpmux\t\t1/tcp\t\t\t\t# TCP port service multiplexer
echo\t\t7/tcp
ftp\t\t21/tcp
ssh\t\t22/tcp\t\t\t\t# SSH Remote Login Protocol
smtp\t\t25/tcp\t\tmail
domain\t\t53/tcp\t\t\t\t# Domain Name Server
domain\t\t53/udp
http\t\t80/tcp\t\twww\t\t# WorldWideWeb HTTP
ntp\t\t123/udp\t\t\t\t# Network Time Protocol
https\t\t443/tcp\t\t\t\t# http protocol over TLS/SSL
postgresql\t5432/tcp\t\tpostgres\t# PostgreSQL Database
redis\t\t6379/tcp
"""

_PROTOCOLS = """\
# Internet (IP) protocols
ip\t0\tIP\t\t# internet protocol, pseudo protocol number
icmp\t1\tICMP\t\t# internet control message protocol
tcp\t6\tTCP\t\t# transmission control protocol
udp\t17\tUDP\t\t# user datagram protocol
ipv6\t41\tIPv6\t\t# Internet Protocol, version 6
ipv6-icmp 58\tIPv6-ICMP\t# ICMP for IPv6
"""

_OPENSSL_CNF = """\
#
# OpenSSL example configuration file.
# See doc/man5/config.pod for more info.
#

openssl_conf = openssl_init

[openssl_init]
providers = provider_sect

[provider_sect]
default = default_sect

[default_sect]
# activate = 1
"""


def _ca_certificates(ctx: LayerContext) -> None:
    """``apt-get install ca-certificates netbase``, then ``rm -rf /var/lib/apt/lists/*``."""
    bundle = ""
    for name, subject_hash in _CAS:
        pem = pem_block(ctx.fake, length=ctx.fake.random_int(380, 520))
        bundle += pem
        ctx.file(f"usr/share/ca-certificates/mozilla/{name}.crt", pem)
        ctx.symlink(f"etc/ssl/certs/{name}.pem", f"/usr/share/ca-certificates/mozilla/{name}.crt")
        ctx.symlink(f"etc/ssl/certs/{subject_hash}.0", f"{name}.pem")
    ctx.file("etc/ssl/certs/ca-certificates.crt", bundle)
    ctx.file("etc/ca-certificates.conf", "".join(f"mozilla/{name}.crt\n" for name, _ in _CAS))
    ctx.dir("etc/ssl/private", 0o700)
    ctx.file("etc/ssl/openssl.cnf", _OPENSSL_CNF)
    add_binary(ctx, "usr/bin/openssl", "OpenSSL 3.0.11 19 Sep 2023 (Library: OpenSSL 3.0.11 19 Sep 2023)")
    add_binary(ctx, "usr/lib/x86_64-linux-gnu/libssl.so.3", "OpenSSL 3.0.11 19 Sep 2023", interpreter=None)
    add_binary(ctx, "usr/lib/x86_64-linux-gnu/libcrypto.so.3", "OpenSSL 3.0.11 19 Sep 2023", interpreter=None)
    ctx.file("etc/services", _SERVICES)
    ctx.file("etc/protocols", _PROTOCOLS)
    ctx.file("etc/rpc", "portmapper\t100000\tportmap sunrpc rpcbind\nnfs\t\t100003\tnfsprog\n")
    ctx.delete("var/lib/apt/lists/auxfiles")
    write_dpkg_status(ctx, _CA_PACKAGES)


# -- layer 2: CPython ---------------------------------------------------------------------------------

_STDLIB = {
    "os.py": '''\
r"""OS routines for NT or Posix depending on what system we're on.

This exports:
  - all functions from posix or nt, e.g. unlink, stat, etc.
  - os.path is either posixpath or ntpath
  - os.name is either 'posix' or 'nt'
"""

import abc
import sys
import stat as st

from _collections_abc import _check_methods

GenericAlias = type(list[int])

_names = sys.builtin_module_names

__all__ = ["altsep", "curdir", "pardir", "sep", "pathsep", "linesep",
           "defpath", "name", "path", "devnull", "SEEK_SET", "SEEK_CUR",
           "SEEK_END", "fsencode", "fsdecode", "get_exec_path", "fdopen",
           "extsep"]
''',
    "site.py": '''\
"""Append module search paths for third-party packages to sys.path.

This will append site-specific paths to the module search path.  On
Unix (including Mac OSX), it starts with sys.prefix and
sys.exec_prefix (if different) and appends
lib/python<version>/site-packages.
"""

import sys
import os
import builtins
import _sitebuiltins

# Prefixes for site-packages; add additional prefixes like /usr/local here
PREFIXES = [sys.prefix, sys.exec_prefix]
# Enable per user site-packages directory
# set it to False to disable the feature or True to force the feature
ENABLE_USER_SITE = None
''',
    "this.py": '''\
s = """Gur Mra bs Clguba, ol Gvz Crgref

Ornhgvshy vf orggre guna htyl.
Rkcyvpvg vf orggre guna vzcyvpvg.
Fvzcyr vf orggre guna pbzcyrk.
"""

d = {}
for c in (65, 97):
    for i in range(26):
        d[chr(i+c)] = chr((i+13) % 26 + c)

print("".join([d.get(c, c) for c in s]))
''',
    "json/__init__.py": '''\
r"""JSON (JavaScript Object Notation) <https://json.org> is a subset of
JavaScript syntax (ECMA-262 3rd edition) used as a lightweight data
interchange format.
"""
__version__ = '2.0.9'
__all__ = [
    'dump', 'dumps', 'load', 'loads',
    'JSONDecoder', 'JSONDecodeError', 'JSONEncoder',
]

from .decoder import JSONDecoder, JSONDecodeError
from .encoder import JSONEncoder
import codecs
''',
    "json/decoder.py": '''\
"""Implementation of JSONDecoder
"""
import re

from json import scanner
try:
    from _json import scanstring as c_scanstring
except ImportError:
    c_scanstring = None

__all__ = ['JSONDecoder', 'JSONDecodeError']
''',
    "encodings/__init__.py": '''\
""" Standard "encodings" Package

    Standard Python encoding modules are stored in this package
    directory.
"""

import codecs
import sys
from . import aliases

_cache = {}
_unknown = '--unknown--'
''',
    "encodings/utf_8.py": '''\
""" Python 'utf-8' Codec


Written by Marc-Andre Lemburg (mal@lemburg.com).

(c) Copyright CNRI, All Rights Reserved. NO WARRANTY.

"""
import codecs

### Codec APIs

encode = codecs.utf_8_encode

def decode(input, errors='strict'):
    return codecs.utf_8_decode(input, errors, True)
''',
    "collections/__init__.py": '''\
\'\'\'This module implements specialized container datatypes providing
alternatives to Python's general purpose built-in containers, dict,
list, set, and tuple.
\'\'\'

__all__ = [
    'ChainMap',
    'Counter',
    'OrderedDict',
    'UserDict',
    'UserList',
    'UserString',
    'defaultdict',
    'deque',
    'namedtuple',
]
''',
}

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_EXTENSIONS = ("_json", "_ssl", "_sqlite3", "_ctypes", "math", "zlib")


def _python_script(module: str, call: str) -> str:
    """What ``make install`` writes for pydoc3.12 and idle3.12."""
    return f"#!/usr/local/bin/python3.12\n\nimport {module}\nif __name__ == '__main__':\n    {call}\n"


#: Small fixed files ``make install`` leaves, relative to ``/usr/local``.
_CPYTHON_FILES = {
    "bin/python3.12-config": (
        "#!/bin/sh\n\n# Keep this script in sync with python-config.in\n\n"
        'prefix_real=$(installed_prefix "$0")\n'
    ),
    "bin/pydoc3.12": _python_script("pydoc", "pydoc.cli()"),
    "bin/idle3.12": _python_script("idlelib.pyshell", "idlelib.pyshell.main()"),
    "include/python3.12/patchlevel.h": (
        "#define PY_MAJOR_VERSION\t3\n#define PY_MINOR_VERSION\t12\n#define PY_MICRO_VERSION\t0\n"
        f'#define PY_VERSION      \t"{PYTHON_VERSION}"\n'
    ),
    "include/python3.12/Python.h": (
        "// Entry point of the Python C API.\n// C extensions should only #include <Python.h>.\n\n"
        "#ifndef Py_PYTHON_H\n#define Py_PYTHON_H\n"
    ),
    "lib/pkgconfig/python3.pc": (
        "prefix=/usr/local\nName: Python\nDescription: Build a C extension for Python\nVersion: 3.12\n"
        "Libs: -L${libdir} -lpython3.12\n"
    ),
    "lib/python3.12/site-packages/README.txt": (
        "This directory exists so that 3rd party packages can be installed\n"
        "here.  Read the source for site.py for more details.\n"
    ),
    **{f"lib/python3.12/{name}": text for name, text in _STDLIB.items()},
}

#: Symlinks in ``/usr/local``: ``make install``'s, then the Dockerfile's ``ln -svT "$src" "${src%3}"``.
_CPYTHON_LINKS = {
    "bin/python3": "python3.12",
    "bin/python3-config": "python3.12-config",
    "bin/pydoc3": "pydoc3.12",
    "bin/idle3": "idle3.12",
    "lib/libpython3.12.so": "libpython3.12.so.1.0",
    "lib/pkgconfig/python3-embed.pc": "python3.pc",
    **{f"bin/{src.replace('3', '')}": src for src in ("idle3", "pydoc3", "python3", "python3-config")},
}

#: Runtime libraries of the packages in ``_RUNTIME_PACKAGES``: (soname link, real file).
_RUNTIME_LIBS = (
    ("libexpat.so.1", "libexpat.so.1.8.10"),
    ("libffi.so.8", "libffi.so.8.1.2"),
    ("libsqlite3.so.0", "libsqlite3.so.0.8.6"),
)


def _cpython(ctx: LayerContext) -> None:
    """``./configure --enable-shared … && make install``, ``ldconfig``, and the convenience links."""
    fake = ctx.fake
    for path, text in _CPYTHON_FILES.items():
        ctx.file(f"usr/local/{path}", text, 0o755 if path.startswith("bin/") else 0o644)
    for path, target in _CPYTHON_LINKS.items():
        ctx.symlink(f"usr/local/{path}", target)
    add_binary(ctx, "usr/local/bin/python3.12", f"Python {PYTHON_VERSION}", "libpython3.12.so.1.0")
    built = fake.build_date(2023, 2023)  # sys.version's build date; month names spelled here, not by the locale
    month = _MONTHS[built.month - 1]
    build = f"{PYTHON_VERSION} (main, {month} {built.day:2d} {built.year}, {built:%H:%M:%S}) [GCC 12.2.0]"
    libpython = "usr/local/lib/libpython3.12.so.1.0"
    add_binary(ctx, libpython, build, size=fake.random_int(2500, 4000), interpreter=None)
    add_binary(ctx, "usr/local/lib/libpython3.so", "libpython3.12.so.1.0", interpreter=None)
    for ext in _EXTENSIONS:
        so = f"usr/local/lib/python3.12/lib-dynload/{ext}.cpython-312-x86_64-linux-gnu.so"
        add_binary(ctx, so, f"PyInit_{ext}", interpreter=None)

    for soname, real in _RUNTIME_LIBS:
        add_binary(ctx, f"usr/lib/x86_64-linux-gnu/{real}", real, interpreter=None)
        ctx.symlink(f"usr/lib/x86_64-linux-gnu/{soname}", real)
    # ldconfig rewrote the cache
    ctx.file("etc/ld.so.cache", b"glibc-ld.so.cache1.1" + fake.binary(length=fake.random_int(300, 500)))
    write_dpkg_status(ctx, [*_CA_PACKAGES, *_RUNTIME_PACKAGES])
    marks = [f"Package: {p.name}\nArchitecture: amd64\nAuto-Installed: 0\n\n" for p in _RUNTIME_PACKAGES]
    ctx.file("var/lib/apt/extended_states", "".join(marks))


# -- layer 3: pip -------------------------------------------------------------------------------------

_PIP_INIT = f'''\
from typing import List, Optional

__version__ = "{PIP_VERSION}"


def main(args: Optional[List[str]] = None) -> int:
    """This is an internal API only meant for use by pip's own console scripts.

    For additional details, see https://github.com/pypa/pip/issues/7498.
    """
    from pip._internal.utils.entrypoints import _wrapper

    return _wrapper(args)
'''

_PIP_MAIN = '''\
import os
import sys

# Remove '' and current working directory from the first entry
# of sys.path, if present to avoid using current directory
# in pip commands check, freeze, install, list and show,
# when invoked as python -m pip <command>
if sys.path[0] in ("", os.getcwd()):
    sys.path.pop(0)

if __name__ == "__main__":
    from pip._internal.cli.main import main as _main

    sys.exit(_main())
'''

_CERTIFI_CORE = '''\
"""
certifi.py
~~~~~~~~~~

This module returns the installation location of cacert.pem or its contents.
"""
import sys
from importlib.resources import as_file, files

_CACERT_CTX = None
_CACERT_PATH = None


def where() -> str:
    return str(files("pip._vendor.certifi").joinpath("cacert.pem"))
'''

_VENDOR_INIT = '''\
"""
pip._vendor is for vendoring dependencies of pip to prevent needing pip to
depend on something external.
"""
'''

_CERTIFI_INIT = '''\
from .core import contents, where

__all__ = ["contents", "where"]
__version__ = "2023.07.22"
'''

_WHEEL = "Wheel-Version: 1.0\nGenerator: bdist_wheel (0.41.0)\nRoot-Is-Purelib: true\nTag: py3-none-any\n\n"
_ENTRY_POINTS = "[console_scripts]\npip = pip._internal.cli.main:main\npip3 = pip._internal.cli.main:main\n"

_CONSOLE_SCRIPT = """\
#!/usr/local/bin/python3.12
# -*- coding: utf-8 -*-
import re
import sys
from pip._internal.cli.main import main
if __name__ == '__main__':
    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])
    sys.exit(main())
"""

_METADATA = f"""\
Metadata-Version: 2.1
Name: pip
Version: {PIP_VERSION}
Summary: The PyPA recommended tool for installing Python packages.
Home-page: https://pip.pypa.io/
Author: The pip developers
Author-email: distutils-sig@python.org
License: MIT
Requires-Python: >=3.7
License-File: LICENSE.txt
"""


def _record_line(path: str, data: bytes) -> str:
    """A wheel ``RECORD`` row: path, urlsafe-base64 sha256 without padding, size."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}\n"


def _pip(ctx: LayerContext) -> None:
    """``python get-pip.py "pip==$PYTHON_PIP_VERSION"``: the package, its dist-info and scripts."""
    site = "usr/local/lib/python3.12/site-packages"
    dist = f"pip-{PIP_VERSION}.dist-info"
    package = {
        "pip/__init__.py": _PIP_INIT,
        "pip/__main__.py": _PIP_MAIN,
        "pip/py.typed": "",
        "pip/_internal/__init__.py": "",
        "pip/_vendor/__init__.py": _VENDOR_INIT,
        "pip/_vendor/certifi/__init__.py": _CERTIFI_INIT,
        "pip/_vendor/certifi/core.py": _CERTIFI_CORE,
        # the vendored CA bundle: seeded certificates
        "pip/_vendor/certifi/cacert.pem": "".join(pem_block(ctx.fake) for _ in range(3)),
        f"{dist}/INSTALLER": "pip\n",
        f"{dist}/LICENSE.txt": "Copyright (c) 2008-present The pip developers (see AUTHORS.txt file)\n",
        f"{dist}/METADATA": _METADATA,
        f"{dist}/REQUESTED": "",
        f"{dist}/WHEEL": _WHEEL,
        f"{dist}/entry_points.txt": _ENTRY_POINTS,
        f"{dist}/top_level.txt": "pip\n",
    }
    record = ""
    for path, text in package.items():
        ctx.file(f"{site}/{path}", text)
        record += _record_line(path, text.encode())
    for script in ("pip", "pip3", "pip3.12"):
        ctx.file(f"usr/local/bin/{script}", _CONSOLE_SCRIPT, 0o755)
        record += _record_line(f"../../../bin/{script}", _CONSOLE_SCRIPT.encode())
    ctx.file(f"{site}/{dist}/RECORD", record + f"{dist}/RECORD,,\n")


PYTHON_CA_LAYER = LayerRecipe("python-3.12-slim-ca-certificates", _ca_certificates)
PYTHON_BUILD_LAYER = LayerRecipe("python-3.12-slim-build", _cpython)
PYTHON_PIP_LAYER = LayerRecipe("python-3.12-slim-pip", _pip)

_APT_RUN = r"""\
set -eux; \
	apt-get update; \
	apt-get install -y --no-install-recommends \
		ca-certificates \
		netbase \
		tzdata \
	; \
	rm -rf /var/lib/apt/lists/*
"""

_BUILD_RUN = r"""\
set -eux; \
	\
	savedAptMark="$(apt-mark showmanual)"; \
	apt-get update; \
	apt-get install -y --no-install-recommends \
		dpkg-dev gcc gnupg libbz2-dev libc6-dev libexpat1-dev libffi-dev libncursesw5-dev \
		libreadline-dev libsqlite3-dev libssl-dev make xz-utils zlib1g-dev wget \
	; \
	\
	wget -O python.tar.xz "https://www.python.org/ftp/python/${PYTHON_VERSION%%[a-z]*}/Python-$PYTHON_VERSION.tar.xz"; \
	wget -O python.tar.xz.asc \
"https://www.python.org/ftp/python/${PYTHON_VERSION%%[a-z]*}/Python-$PYTHON_VERSION.tar.xz.asc"; \
	GNUPGHOME="$(mktemp -d)"; export GNUPGHOME; \
	gpg --batch --keyserver hkps://keys.openpgp.org --recv-keys "$GPG_KEY"; \
	gpg --batch --verify python.tar.xz.asc python.tar.xz; \
	gpgconf --kill all; \
	rm -rf "$GNUPGHOME" python.tar.xz.asc; \
	mkdir -p /usr/src/python; \
	tar --extract --directory /usr/src/python --strip-components=1 --file python.tar.xz; \
	rm python.tar.xz; \
	\
	cd /usr/src/python; \
	gnuArch="$(dpkg-architecture --query DEB_BUILD_GNU_TYPE)"; \
	./configure \
		--build="$gnuArch" \
		--enable-loadable-sqlite-extensions \
		--enable-optimizations \
		--enable-option-checking=fatal \
		--enable-shared \
		--with-lto \
		--with-system-expat \
		--without-ensurepip \
	; \
	nproc="$(nproc)"; \
	make -j "$nproc"; \
	make install; \
	\
	cd /; \
	rm -rf /usr/src/python; \
	\
	find /usr/local -depth \
		\( \
			\( -type d -a \( -name test -o -name tests -o -name idle_test \) \) \
			-o \( -type f -a \( -name '*.pyc' -o -name '*.pyo' -o -name 'libpython*.a' \) \) \
		\) -exec rm -rf '{}' + \
	; \
	\
	ldconfig; \
	\
	apt-mark auto '.*' > /dev/null; \
	apt-mark manual $savedAptMark; \
	find /usr/local -type f -executable -not \( -name '*tkinter*' \) -exec ldd '{}' ';' \
		| awk '/=>/ { so = $(NF-1); if (index(so, "/usr/local/") == 1) { next }; gsub("^/(usr/)?", "", so); print so }' \
		| sort -u \
		| xargs -r dpkg-query --search \
		| cut -d: -f1 \
		| sort -u \
		| xargs -r apt-mark manual \
	; \
	apt-get purge -y --auto-remove -o APT::AutoRemove::RecommendsImportant=false; \
	rm -rf /var/lib/apt/lists/*; \
	\
	python3 --version; \
	\
	for src in idle3 pydoc3 python3 python3-config; do \
		dst="$(echo "$src" | tr -d 3)"; \
		[ -s "/usr/local/bin/$src" ]; \
		[ ! -e "/usr/local/bin/$dst" ]; \
		ln -svT "$src" "/usr/local/bin/$dst"; \
	done
"""

_PIP_RUN = r"""\
set -eux; \
	\
	savedAptMark="$(apt-mark showmanual)"; \
	apt-get update; \
	apt-get install -y --no-install-recommends wget; \
	\
	wget -O get-pip.py "$PYTHON_GET_PIP_URL"; \
	echo "$PYTHON_GET_PIP_SHA256 *get-pip.py" | sha256sum -c -; \
	\
	apt-mark auto '.*' > /dev/null; \
	[ -z "$savedAptMark" ] || apt-mark manual $savedAptMark > /dev/null; \
	apt-get purge -y --auto-remove -o APT::AutoRemove::RecommendsImportant=false; \
	rm -rf /var/lib/apt/lists/*; \
	\
	export PYTHONDONTWRITEBYTECODE=1; \
	\
	python get-pip.py \
		--disable-pip-version-check \
		--no-cache-dir \
		--no-compile \
		"pip==$PYTHON_PIP_VERSION" \
	; \
	rm -f get-pip.py; \
	\
	pip --version
"""

PYTHON_3_12_SLIM = ImageRecipe(
    name="python:3.12-slim",
    base="debian:bookworm-slim",
    steps=(
        nop("ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
        nop("ENV LANG=C.UTF-8"),
        run(_APT_RUN, PYTHON_CA_LAYER),
        nop(f"ENV GPG_KEY={_GPG_KEY}"),
        nop(f"ENV PYTHON_VERSION={PYTHON_VERSION}"),
        run(_BUILD_RUN, PYTHON_BUILD_LAYER),
        nop(f"ENV PYTHON_PIP_VERSION={PIP_VERSION}"),
        nop(f"ENV PYTHON_GET_PIP_URL={_GET_PIP_URL}"),
        nop(f"ENV PYTHON_GET_PIP_SHA256={_GET_PIP_SHA256}"),
        run(_PIP_RUN, PYTHON_PIP_LAYER),
        nop('CMD ["python3"]'),
    ),
    config={
        "Env": [_PYTHON_PATH, "LANG=C.UTF-8", f"GPG_KEY={_GPG_KEY}", f"PYTHON_VERSION={PYTHON_VERSION}",
                f"PYTHON_PIP_VERSION={PIP_VERSION}", f"PYTHON_GET_PIP_URL={_GET_PIP_URL}",
                f"PYTHON_GET_PIP_SHA256={_GET_PIP_SHA256}"],
        "Cmd": ["python3"],
    },
)
