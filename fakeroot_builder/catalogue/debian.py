"""``debian:bookworm-slim``: a one-layer merged-/usr Debian 12 root, and what images on it reuse.

Images built ``FROM debian:bookworm-slim`` change a few of its files (``groupadd`` rewrites
``/etc/passwd``, ``apt-get install`` rewrites ``/var/lib/dpkg/status``). A changed file is copied
whole into the upper layer, so those layers need the base's full text: :func:`write_accounts` and
:func:`write_dpkg_status` produce it, with the image's additions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..recipe import ImageRecipe, LayerContext, LayerRecipe
from ._common import add_binary, add_hardlinks, add_rootfs_step, nop

__all__ = [
    "BASE_PACKAGES",
    "DEBIAN_BOOKWORM_SLIM",
    "DEBIAN_PATH",
    "DEBIAN_ROOTFS",
    "LIBSSL3",
    "DebPackage",
    "SystemAccount",
    "write_accounts",
    "write_dpkg_list",
    "write_dpkg_status",
]

DEBIAN_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: ``chage``'s "last changed" day of the accounts in the base image (2023-07-22).
_BASE_SHADOW_DAY = 19560

# -- accounts ----------------------------------------------------------------------------------------

_PASSWD = """\
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
bin:x:2:2:bin:/bin:/usr/sbin/nologin
sys:x:3:3:sys:/dev:/usr/sbin/nologin
sync:x:4:65534:sync:/bin:/bin/sync
games:x:5:60:games:/usr/games:/usr/sbin/nologin
man:x:6:12:man:/var/cache/man:/usr/sbin/nologin
lp:x:7:7:lp:/var/spool/lpd:/usr/sbin/nologin
mail:x:8:8:mail:/var/mail:/usr/sbin/nologin
news:x:9:9:news:/var/spool/news:/usr/sbin/nologin
uucp:x:10:10:uucp:/var/spool/uucp:/usr/sbin/nologin
proxy:x:13:13:proxy:/bin:/usr/sbin/nologin
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
backup:x:34:34:backup:/var/backups:/usr/sbin/nologin
list:x:38:38:Mailing List Manager:/var/list:/usr/sbin/nologin
irc:x:39:39:ircd:/run/ircd:/usr/sbin/nologin
_apt:x:42:65534::/nonexistent:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
"""

#: base-passwd's groups: (name, gid).
_GROUPS = (
    ("root", 0), ("daemon", 1), ("bin", 2), ("sys", 3), ("adm", 4), ("tty", 5), ("disk", 6), ("lp", 7),
    ("mail", 8), ("news", 9), ("uucp", 10), ("man", 12), ("proxy", 13), ("kmem", 15), ("dialout", 20),
    ("fax", 21), ("voice", 22), ("cdrom", 24), ("floppy", 25), ("tape", 26), ("sudo", 27), ("audio", 29),
    ("dip", 30), ("www-data", 33), ("backup", 34), ("operator", 37), ("list", 38), ("irc", 39), ("src", 40),
    ("shadow", 42), ("utmp", 43), ("video", 44), ("sasl", 45), ("plugdev", 46), ("staff", 50), ("games", 60),
    ("users", 100), ("nogroup", 65534),
)


@dataclass(frozen=True)
class SystemAccount:
    """A user and its group as ``groupadd`` + ``useradd`` add them (``passwd`` line given whole)."""

    passwd: str  # e.g. "nginx:x:101:101:nginx user:/nonexistent:/bin/false"
    group: str  # e.g. "nginx:x:101:"

    @property
    def name(self) -> str:
        """The user name."""
        return self.passwd.split(":", 1)[0]


def _account_files(added: Sequence[SystemAccount], day: int) -> dict[str, str]:
    """The text of the four account files with ``added`` appended (``day``: their shadow date)."""
    users = [line.split(":", 1)[0] for line in _PASSWD.splitlines()]
    return {
        "passwd": _PASSWD + "".join(a.passwd + "\n" for a in added),
        "group": "".join(f"{name}:x:{gid}:\n" for name, gid in _GROUPS) + "".join(a.group + "\n" for a in added),
        "shadow": "".join(f"{user}:*:{_BASE_SHADOW_DAY}:0:99999:7:::\n" for user in users)
        + "".join(f"{a.name}:!:{day}::::::\n" for a in added),
        "gshadow": "".join(f"{name}:*::\n" for name, _ in _GROUPS)
        + "".join(f"{a.group.split(':', 1)[0]}:!::\n" for a in added),
    }


def write_accounts(ctx: LayerContext, added: Sequence[SystemAccount] = ()) -> None:
    """Write ``/etc/{passwd,group,shadow,gshadow}``: the base's accounts, then ``added``.

    With ``added``, this is what ``groupadd`` + ``useradd`` leave: the new files, the previous ones
    kept as ``passwd-`` etc., and the day of the change in ``shadow`` (drawn from the layer's Faker).
    """
    day = _BASE_SHADOW_DAY + ctx.fake.random_int(20, 420)  # some day between Aug 2023 and Sep 2024
    files = {"": _account_files(added, day)}
    if added:
        files["-"] = _account_files(added[:-1], day)
    for suffix, texts in files.items():
        ctx.file(f"etc/passwd{suffix}", texts["passwd"])
        ctx.file(f"etc/group{suffix}", texts["group"])
        ctx.file(f"etc/shadow{suffix}", texts["shadow"], 0o640, gid=42)  # root:shadow, as on Debian
        ctx.file(f"etc/gshadow{suffix}", texts["gshadow"], 0o640, gid=42)


# -- dpkg ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DebPackage:
    """One stanza of ``/var/lib/dpkg/status`` (the fields a reader looks at)."""

    name: str
    version: str
    section: str
    installed_size: int
    maintainer: str
    description: str
    priority: str = "required"
    essential: bool = False
    architecture: str = "amd64"
    depends: str = ""
    conffiles: tuple[tuple[str, str], ...] = ()  # (path, the file's text) -> md5 in the stanza

    def stanza(self) -> str:
        """The package's paragraph, as dpkg writes it."""
        lines = [f"Package: {self.name}"]
        if self.essential:
            lines.append("Essential: yes")
        lines += [
            "Status: install ok installed",
            f"Priority: {self.priority}",
            f"Section: {self.section}",
            f"Installed-Size: {self.installed_size}",
            f"Maintainer: {self.maintainer}",
            f"Architecture: {self.architecture}",
            f"Version: {self.version}",
        ]
        if self.depends:
            lines.append(f"Depends: {self.depends}")
        if self.conffiles:
            lines.append("Conffiles:")
            for path, text in self.conffiles:
                lines.append(f" {path} {hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()}")
        lines.append(f"Description: {self.description}")
        return "\n".join(lines) + "\n"


def write_dpkg_status(ctx: LayerContext, added: Iterable[DebPackage] = ()) -> None:
    """Write ``/var/lib/dpkg/status``: the base's packages plus ``added``, sorted by name as dpkg does."""
    packages = sorted([*BASE_PACKAGES, *added], key=lambda p: p.name)
    ctx.file("var/lib/dpkg/status", "\n".join(p.stanza() for p in packages))


def write_dpkg_list(ctx: LayerContext, package: str, paths: Iterable[str]) -> None:
    """Write ``/var/lib/dpkg/info/<package>.list``: every path the package owns, parents first."""
    owned = {"/."}
    for path in paths:
        parts = path.strip("/").split("/")
        owned.update("/" + "/".join(parts[: i + 1]) for i in range(len(parts)))
    ctx.file(f"var/lib/dpkg/info/{package}.list", "\n".join(sorted(owned)) + "\n")


# -- the base's text files -----------------------------------------------------------------------------

_OS_RELEASE = """\
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
"""

_DEBIAN_VERSION = "12.1\n"
_ISSUE = "Debian GNU/Linux 12 \\n \\l\n\n"
_ISSUE_NET = "Debian GNU/Linux 12\n"

_NSSWITCH = """\
# /etc/nsswitch.conf
#
# Example configuration of GNU Name Service Switch functionality.
# If you have the `glibc-doc-reference' and `info' packages installed, try:
# `info libc "Name Service Switch"' for information about this file.

passwd:         files
group:          files
shadow:         files
gshadow:        files

hosts:          files dns
networks:       files

protocols:      db files
services:       db files
ethers:         db files
rpc:            db files

netgroup:       nis
"""

_PROFILE = """\
# /etc/profile: system-wide .profile file for the Bourne shell (sh(1))
# and Bourne compatible shells (bash(1), ksh(1), ash(1), ...).

if [ "$(id -u)" -eq 0 ]; then
  PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
else
  PATH="/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games"
fi
export PATH

if [ "${PS1-}" ]; then
  if [ "${BASH-}" ] && [ "$BASH" != "/bin/sh" ]; then
    # The file bash.bashrc already sets the default PS1.
    if [ -f /etc/bash.bashrc ]; then
      . /etc/bash.bashrc
    fi
  else
    if [ "$(id -u)" -eq 0 ]; then
      PS1='# '
    else
      PS1='$ '
    fi
  fi
fi

if [ -d /etc/profile.d ]; then
  for i in /etc/profile.d/*.sh; do
    if [ -r $i ]; then
      . $i
    fi
  done
  unset i
fi
"""

_BASH_BASHRC = """\
# System-wide .bashrc file for interactive bash(1) shells.

# To enable the settings / commands in this file for login shells as well,
# this file has to be sourced in /etc/profile.

# If not running interactively, don't do anything
[ -z "$PS1" ] && return

# check the window size after each command and, if necessary,
# update the values of LINES and COLUMNS.
shopt -s checkwinsize

# set variable identifying the chroot you work in (used in the prompt below)
if [ -z "${debian_chroot:-}" ] && [ -r /etc/debian_chroot ]; then
    debian_chroot=$(cat /etc/debian_chroot)
fi

# set a fancy prompt (non-color, overwrite the one in /etc/profile)
# but only if not SUDOing and have SUDO_PS1 set; then assume smart user.
if ! [ -n "${SUDO_USER}" -a -n "${SUDO_PS1}" ]; then
  PS1='${debian_chroot:+($debian_chroot)}\\u@\\h:\\w\\$ '
fi
"""

_ROOT_BASHRC = """\
# ~/.bashrc: executed by bash(1) for non-login shells.

# Note: PS1 and umask are already set in /etc/profile. You should not
# need this unless you want different defaults for root.
# PS1='${debian_chroot:+($debian_chroot)}\\h:\\w\\$ '
# umask 022

# You may uncomment the following lines if you want `ls' to be colorized:
# export LS_OPTIONS='--color=auto'
# eval "$(dircolors)"
# alias ls='ls $LS_OPTIONS'
"""

_ROOT_PROFILE = """\
# ~/.profile: executed by Bourne-compatible login shells.

if [ "$BASH" ]; then
  if [ -f ~/.bashrc ]; then
    . ~/.bashrc
  fi
fi

mesg n 2> /dev/null || true
"""

_APT_DOCKER_CLEAN = """\
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };

Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
"""

_APT_NO_LANGUAGES = 'Acquire::Languages "none";\n'

_SHELLS = """\
# /etc/shells: valid login shells
/bin/sh
/usr/bin/sh
/bin/bash
/usr/bin/bash
/bin/dash
/usr/bin/dash
"""


_DEBCONF_CONFIG = "Name: debconf/frontend\nTemplate: debconf/frontend\nValue: Noninteractive\nOwners: debconf\n\n"
_DEBCONF_TEMPLATES = "Name: debconf/frontend\nDefault: Dialog\nType: select\n\n"


def _debian_sources(snapshot: str) -> str:
    """deb822 sources, pinned in a comment to the snapshot the image was built from."""
    stanza = (
        "Types: deb\n"
        "# http://snapshot.debian.org/archive/{archive}/{snapshot}\n"
        "URIs: http://deb.debian.org/{archive}\n"
        "Suites: {suites}\n"
        "Components: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )
    return (
        stanza.format(archive="debian", snapshot=snapshot, suites="bookworm bookworm-updates")
        + "\n"
        + stanza.format(archive="debian-security", snapshot=snapshot, suites="bookworm-security")
    )


def _copyright(package: str, upstream: str, license_name: str, holder: str) -> str:
    """A short machine-readable ``debian/copyright``."""
    return (
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
        f"Upstream-Name: {upstream}\n"
        f"Source: https://tracker.debian.org/pkg/{package}\n\n"
        "Files: *\n"
        f"Copyright: {holder}\n"
        f"License: {license_name}\n\n"
        f"License: {license_name}\n"
        f" On Debian systems, the complete text of the {license_name} license can be found in\n"
        f" `/usr/share/common-licenses/{license_name.rstrip('+')}'.\n"
    )


# -- packages ----------------------------------------------------------------------------------------

_DOKO = "Matthias Klose <doko@debian.org>"
_GLIBC = "GNU Libc Maintainers <debian-glibc@lists.debian.org>"
_SHADOW = "Shadow package maintainers <pkg-shadow-devel@lists.alioth.debian.org>"
_DPKG = "Dpkg Developers <debian-dpkg@lists.debian.org>"


def _pkg(name: str, version: str, section: str, size: int, maintainer: str, description: str, **kw: Any) -> DebPackage:
    return DebPackage(name, version, section, size, maintainer, description, **kw)


#: OpenSSL's runtime, which several images on Debian install (nginx, redis, python's ca-certificates).
LIBSSL3 = DebPackage("libssl3", "3.0.11-1~deb12u1", "libs", 6229,
                     "Debian OpenSSL Team <pkg-openssl-devel@alioth-lists.debian.net>",
                     "Secure Sockets Layer toolkit - shared libraries", priority="optional")

#: What ``dpkg -l`` lists in the base image (a representative subset of the real ~80).
BASE_PACKAGES: tuple[DebPackage, ...] = (
    _pkg("apt", "2.6.1", "admin", 4248, "APT Development Team <deity@lists.debian.org>",
         "commandline package manager", priority="important", depends="gpgv, libc6 (>= 2.34)"),
    _pkg("base-files", "12.4+deb12u1", "admin", 392, "Santiago Vila <sanvila@debian.org>",
         "Debian base system miscellaneous files", essential=True,
         conffiles=(("/etc/debian_version", _DEBIAN_VERSION), ("/etc/issue", _ISSUE),
                    ("/etc/issue.net", _ISSUE_NET))),
    _pkg("base-passwd", "3.6.1", "admin", 243, "Colin Watson <cjwatson@debian.org>",
         "Debian base system master password and group files", essential=True),
    _pkg("bash", "5.2.15-2+b2", "shells", 7164, _DOKO, "GNU Bourne Again SHell", essential=True,
         depends="base-files (>= 2.1.12), debianutils (>= 5.6-0.1)",
         conffiles=(("/etc/bash.bashrc", _BASH_BASHRC),)),
    _pkg("coreutils", "9.1-1", "utils", 18062, "Michael Stone <mstone@debian.org>",
         "GNU core utilities", essential=True),
    _pkg("dash", "0.5.12-2", "shells", 191, "Andrej Shadura <andrewsh@debian.org>",
         "POSIX-compliant shell", essential=True, depends="debianutils (>= 5.6-0.1)"),
    _pkg("debian-archive-keyring", "2023.3", "misc", 245, "Debian Release Team <packages@release.debian.org>",
         "GnuPG archive keys of the Debian archive", priority="important", architecture="all"),
    _pkg("debianutils", "5.7-0.4", "utils", 224, "Debian Install System Team <debian-boot@lists.debian.org>",
         "Miscellaneous utilities specific to Debian", essential=True),
    _pkg("dpkg", "1.21.22", "admin", 6382, _DPKG, "Debian package management system", essential=True,
         depends="tar (>= 1.28-1)"),
    _pkg("gpgv", "2.2.40-1.1", "utils", 843, "Debian GnuPG Maintainers <pkg-gnupg-maint@lists.alioth.debian.org>",
         "GNU privacy guard - signature verification tool", priority="important"),
    _pkg("grep", "3.8-5", "utils", 1224, "Anibal Monsalve Salazar <anibal@debian.org>",
         "GNU grep, egrep and fgrep", essential=True),
    _pkg("gzip", "1.12-1", "utils", 245, "Milan Kupcevic <milan@debian.org>",
         "GNU compression utilities", essential=True),
    _pkg("hostname", "3.23+nmu1", "admin", 45, "Michael Meskes <meskes@debian.org>",
         "utility to set/show the host name or domain name", essential=True),
    _pkg("libc-bin", "2.36-9+deb12u1", "libs", 2606, _GLIBC, "GNU C Library: Binaries", essential=True),
    _pkg("libc6", "2.36-9+deb12u1", "libs", 12985, _GLIBC, "GNU C Library: Shared libraries"),
    _pkg("login", "1:4.13+dfsg1-1+b1", "admin", 2650, _SHADOW, "system login tools", essential=True),
    _pkg("mawk", "1.3.4.20200120-3.1", "interpreters", 263, "Boyuan Yang <byang@debian.org>",
         "Pattern scanning and text processing language"),
    _pkg("ncurses-base", "6.4-4", "misc", 393, "Craig Small <csmall@debian.org>",
         "basic terminal type definitions", essential=True, architecture="all"),
    _pkg("passwd", "1:4.13+dfsg1-1+b1", "admin", 2985, _SHADOW, "change and administer password and group data"),
    _pkg("perl-base", "5.36.0-7", "perl", 7679, "Niko Tyni <ntyni@debian.org>",
         "minimal Perl system", essential=True),
    _pkg("sed", "4.9-1", "utils", 883, "Clint Adams <clint@debian.org>",
         "GNU stream editor for filtering/transforming text", essential=True),
    _pkg("tar", "1.34+dfsg-1.2", "utils", 3152, "Janos Lenart <ocsi@debian.org>",
         "GNU version of the tar archiving utility", essential=True),
    _pkg("tzdata", "2023c-5", "localization", 3422, "GNU Libc Maintainers <debian-glibc@lists.debian.org>",
         "time zone and daylight-saving time data", architecture="all"),
    _pkg("util-linux", "2.38.1-5+b1", "utils", 4700, "util-linux packagers <util-linux@packages.debian.org>",
         "miscellaneous system utilities", essential=True),
    _pkg("zlib1g", "1:1.2.13.dfsg-1", "libs", 168, "Mark Brown <broonie@debian.org>",
         "compression library - runtime"),
)

#: (package, upstream name, license, copyright holder) for ``/usr/share/doc/<package>/copyright``.
_COPYRIGHTS = (
    ("bash", "bash", "GPL-3+", "1987-2022 Free Software Foundation, Inc."),
    ("coreutils", "GNU coreutils", "GPL-3+", "1984-2022 Free Software Foundation, Inc."),
    ("dash", "dash", "BSD-3-clause", "1989-1994 The Regents of the University of California"),
    ("dpkg", "dpkg", "GPL-2+", "1994-1999 Ian Jackson <ijackson@chiark.greenend.org.uk>"),
    ("grep", "GNU grep", "GPL-3+", "1992-2022 Free Software Foundation, Inc."),
    ("libc6", "GNU C Library", "LGPL-2.1+", "1991-2023 Free Software Foundation, Inc."),
    ("perl-base", "perl", "GPL-1+", "1993-2022 Larry Wall and others"),
    ("tar", "GNU tar", "GPL-3+", "1985-2021 Free Software Foundation, Inc."),
)

#: usr/bin programs: name -> the banner ``strings`` finds in it.
_USR_BIN = {
    "bash": "GNU bash, version 5.2.15(1)-release (x86_64-pc-linux-gnu)",
    "cat": "cat (GNU coreutils) 9.1",
    "chmod": "chmod (GNU coreutils) 9.1",
    "cp": "cp (GNU coreutils) 9.1",
    "dash": "dash 0.5.12",
    "date": "date (GNU coreutils) 9.1",
    "dpkg": "Debian 'dpkg' package management program version 1.21.22 (amd64).",
    "apt": "apt 2.6.1 (amd64)",
    "apt-get": "apt 2.6.1 (amd64)",
    "grep": "grep (GNU grep) 3.8",
    "gzip": "gzip 1.12",
    "hostname": "hostname 3.23",
    "ls": "ls (GNU coreutils) 9.1",
    "mawk": "mawk 1.3.4 20200120",
    "mkdir": "mkdir (GNU coreutils) 9.1",
    "mv": "mv (GNU coreutils) 9.1",
    "perl": "This is perl 5, version 36, subversion 0 (v5.36.0) built for x86_64-linux-gnu-thread-multi",
    "rm": "rm (GNU coreutils) 9.1",
    "sed": "sed (GNU sed) 4.9",
    "tar": "tar (GNU tar) 1.34",
}

_USR_SBIN = {
    "groupadd": "shadow-utils 4.13",
    "useradd": "shadow-utils 4.13",
    "nologin": "This account is currently not available.",
    "ldconfig": "ldconfig (Debian GLIBC 2.36-9+deb12u1) 2.36",
}

_LIBS = {  # usr/lib/x86_64-linux-gnu/<real file> and the soname link pointing at it
    "libc.so.6": None,
    "libm.so.6": None,
    "ld-linux-x86-64.so.2": None,
    "libz.so.1.2.13": "libz.so.1",
    "libtinfo.so.6.4": "libtinfo.so.6",
    "libpcre2-8.so.0.11.2": "libpcre2-8.so.0",
}


def _rootfs(ctx: LayerContext) -> None:
    """A small but faithful bookworm-slim root (the real one has ~4,000 paths, 74 MB)."""
    fake = ctx.fake
    # merged /usr: the top-level directories are symlinks into /usr
    for name in ("bin", "lib", "lib64", "sbin"):
        ctx.symlink(name, f"usr/{name}")
    for name in ("boot", "dev", "home", "media", "mnt", "opt", "proc", "run", "srv", "sys", "usr/games",
                 "usr/include", "usr/src", "var/backups", "var/opt", "var/spool", "var/lib/misc"):
        ctx.dir(name)
    ctx.dir("run/lock", 0o1777)
    ctx.dir("tmp", 0o1777)
    ctx.dir("var/tmp", 0o1777)
    ctx.dir("root", 0o700)
    ctx.dir("var/local", 0o2775, gid=50)  # root:staff, setgid
    ctx.dir("var/mail", 0o2775, gid=8)  # root:mail, setgid
    ctx.symlink("var/lock", "/run/lock")
    ctx.symlink("var/run", "/run")
    for name in ("bin", "etc", "games", "include", "lib", "sbin", "share", "src"):
        ctx.dir(f"usr/local/{name}")

    # /etc
    ctx.symlink("etc/os-release", "../usr/lib/os-release")
    ctx.file("usr/lib/os-release", _OS_RELEASE)
    ctx.file("etc/debian_version", _DEBIAN_VERSION)
    ctx.file("etc/issue", _ISSUE)
    ctx.file("etc/issue.net", _ISSUE_NET)
    ctx.file("etc/hostname", fake.hexify("^" * 12) + "\n")  # the build container's name
    ctx.file("etc/nsswitch.conf", _NSSWITCH)
    ctx.file("etc/profile", _PROFILE)
    ctx.file("etc/bash.bashrc", _BASH_BASHRC)
    ctx.file("etc/shells", _SHELLS)
    ctx.file("etc/timezone", "Etc/UTC\n")
    ctx.symlink("etc/localtime", "/usr/share/zoneinfo/Etc/UTC")
    ctx.file("etc/ld.so.conf", "include /etc/ld.so.conf.d/*.conf\n\n")
    ctx.file("etc/ld.so.conf.d/x86_64-linux-gnu.conf",
             "# Multiarch support\n/usr/local/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n")
    ctx.file("etc/ld.so.cache", b"glibc-ld.so.cache1.1" + fake.binary(length=fake.random_int(200, 400)))
    write_accounts(ctx)
    snapshot = fake.build_date(2023, 2023).strftime("%Y%m%dT000000Z")  # the day debuerreotype pinned
    ctx.file("etc/apt/sources.list.d/debian.sources", _debian_sources(snapshot))
    ctx.file("etc/apt/apt.conf.d/docker-clean", _APT_DOCKER_CLEAN)
    ctx.file("etc/apt/apt.conf.d/docker-no-languages", _APT_NO_LANGUAGES)
    ctx.dir("etc/apt/preferences.d")
    ctx.dir("etc/apt/trusted.gpg.d")
    ctx.dir("etc/profile.d")
    ctx.file("etc/skel/.bashrc", _ROOT_BASHRC)
    ctx.file("etc/skel/.profile", _ROOT_PROFILE)
    ctx.file("etc/skel/.bash_logout", "# ~/.bash_logout: executed by bash(1) when login shell exits.\n")
    ctx.file("root/.bashrc", _ROOT_BASHRC)
    ctx.file("root/.profile", _ROOT_PROFILE)
    ctx.symlink("etc/alternatives/awk", "/usr/bin/mawk")
    ctx.symlink("etc/alternatives/nawk", "/usr/bin/mawk")

    # /usr: programs, libraries, docs, data
    for name, banner in _USR_BIN.items():
        add_binary(ctx, f"usr/bin/{name}", banner)
    add_hardlinks(ctx, "usr/bin/perl", ["usr/bin/perl5.36.0"])  # one inode, two names, as perl-base ships it
    ctx.symlink("usr/bin/sh", "dash")
    ctx.symlink("usr/bin/awk", "/etc/alternatives/awk")
    ctx.symlink("usr/bin/nawk", "/etc/alternatives/nawk")
    ctx.symlink("usr/bin/dpkg-query", "dpkg")
    for name, banner in _USR_SBIN.items():
        add_binary(ctx, f"usr/sbin/{name}", banner)
    for name, soname in _LIBS.items():
        add_binary(ctx, f"usr/lib/x86_64-linux-gnu/{name}", name, interpreter=None)
        if soname:
            ctx.symlink(f"usr/lib/x86_64-linux-gnu/{soname}", name)
    ctx.symlink("usr/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
    ctx.file("usr/share/zoneinfo/Etc/UTC", b"TZif2" + bytes(15) + fake.binary(length=40) + b"\nUTC0\n")
    ctx.file("usr/share/keyrings/debian-archive-keyring.gpg", b"\x99\x02\x0d\x04" + fake.binary(length=500))
    for package, upstream, license_name, holder in _COPYRIGHTS:
        ctx.file(f"usr/share/doc/{package}/copyright", _copyright(package, upstream, license_name, holder))

    # /var: package state, caches, logs
    write_dpkg_status(ctx)
    write_dpkg_list(ctx, "bash", ["/etc/bash.bashrc", "/usr/bin/bash", "/usr/share/doc/bash/copyright"])
    write_dpkg_list(ctx, "dash", ["/usr/bin/dash", "/usr/share/doc/dash/copyright"])
    for name in ("alternatives", "parts", "triggers", "updates"):
        ctx.dir(f"var/lib/dpkg/{name}")
    ctx.file("var/lib/dpkg/alternatives/awk", "auto\n/usr/bin/awk\nnawk\n/usr/bin/nawk\n\n/usr/bin/mawk\n5\n\n")
    ctx.dir("var/lib/apt/lists/auxfiles")
    ctx.dir("var/cache/apt/archives/partial", 0o700, uid=42)  # _apt downloads there
    ctx.file("var/cache/debconf/config.dat", _DEBCONF_CONFIG)
    ctx.file("var/cache/debconf/templates.dat", _DEBCONF_TEMPLATES)
    ctx.dir("var/log/apt")
    ctx.file("var/log/lastlog", b"", 0o664, gid=43)  # root:utmp


#: The one layer of ``debian:bookworm-slim``.
DEBIAN_ROOTFS = LayerRecipe("debian-bookworm-slim-rootfs", _rootfs)

DEBIAN_BOOKWORM_SLIM = ImageRecipe(
    name="debian:bookworm-slim",
    steps=(add_rootfs_step(DEBIAN_ROOTFS), nop('CMD ["bash"]')),
    config={"Env": [DEBIAN_PATH], "Cmd": ["bash"]},
)
