"""``alpine:3.19``: one layer, a BusyBox root (every small tool a symlink to ``/bin/busybox``).

Images on Alpine rewrite ``/etc/passwd``, ``/etc/apk/world`` and ``/lib/apk/db/installed``;
:func:`write_alpine_accounts` and :func:`write_apk_db` give those files' full text with additions.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..recipe import ImageRecipe, LayerContext, LayerRecipe
from ._common import MUSL_LOADER, add_applets, add_binary, add_rootfs_step, nop, pem_block

__all__ = [
    "ALPINE_3_19",
    "ALPINE_PATH",
    "ALPINE_ROOTFS",
    "BASE_APK_PACKAGES",
    "BUSYBOX_APPLETS",
    "ApkPackage",
    "write_alpine_accounts",
    "write_apk_db",
]

ALPINE_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ALPINE_VERSION = "3.19.1"

#: The applets an Alpine root links to BusyBox, by directory (a sample of the ~300 real ones).
BUSYBOX_APPLETS: dict[str, tuple[str, ...]] = {
    "bin": ("arch", "ash", "base64", "cat", "chgrp", "chmod", "chown", "cp", "date", "dd", "df",
            "dmesg", "echo", "egrep", "false", "fgrep", "grep", "gunzip", "gzip", "hostname", "kill",
            "ln", "login", "ls", "mkdir", "mknod", "mktemp", "more", "mount", "mv", "netstat", "ping",
            "ps", "pwd", "rm", "rmdir", "sed", "sh", "sleep", "stat", "su", "sync", "tar", "touch",
            "true", "umount", "uname", "vi", "watch", "zcat"),
    "sbin": ("adduser", "addgroup", "halt", "ifconfig", "init", "mdev", "poweroff", "reboot", "route",
             "sysctl", "syslogd"),
    "usr/bin": ("[", "[[", "awk", "basename", "cut", "dirname", "du", "env", "expr", "find", "head",
                "id", "less", "nc", "nslookup", "sha1sum", "sha256sum", "sort", "tail", "tee", "tr",
                "uniq", "unzip", "wc", "wget", "which", "xargs", "yes"),
    "usr/sbin": ("chroot", "crond", "ntpd", "rdate"),
}

# -- accounts -----------------------------------------------------------------------------------------

_PASSWD = """\
root:x:0:0:root:/root:/bin/sh
bin:x:1:1:bin:/bin:/sbin/nologin
daemon:x:2:2:daemon:/sbin:/sbin/nologin
lp:x:4:7:lp:/var/spool/lpd:/sbin/nologin
sync:x:5:0:sync:/sbin:/bin/sync
shutdown:x:6:0:shutdown:/sbin:/sbin/shutdown
halt:x:7:0:halt:/sbin:/sbin/halt
mail:x:8:12:mail:/var/mail:/sbin/nologin
news:x:9:13:news:/usr/lib/news:/sbin/nologin
operator:x:11:0:operator:/root:/sbin/nologin
ftp:x:21:21::/var/lib/ftp:/sbin/nologin
sshd:x:22:22:sshd:/dev/null:/sbin/nologin
games:x:35:35:games:/usr/games:/sbin/nologin
ntp:x:123:123:NTP:/var/empty:/sbin/nologin
guest:x:405:100:guest:/dev/null:/sbin/nologin
nobody:x:65534:65534:nobody:/:/sbin/nologin
"""

_GROUP = """\
root:x:0:root
bin:x:1:root,bin,daemon
daemon:x:2:root,bin,daemon
sys:x:3:root,bin
adm:x:4:root,daemon
tty:x:5:
disk:x:6:root
lp:x:7:lp
kmem:x:9:
wheel:x:10:root
floppy:x:11:root
mail:x:12:mail
news:x:13:news
uucp:x:14:uucp
cron:x:16:cron
audio:x:18:
cdrom:x:19:
dialout:x:20:root
ftp:x:21:
sshd:x:22:
input:x:23:
tape:x:26:root
video:x:27:root
netdev:x:28:
kvm:x:34:kvm
games:x:35:
shadow:x:42:
www-data:x:82:
users:x:100:games
ntp:x:123:
abuild:x:300:
utmp:x:406:
ping:x:999:
nogroup:x:65533:
nobody:x:65534:
"""

_SHADOW_DAY = 19755  # 2024-02-01: when the 3.19.1 root was made


def write_alpine_accounts(ctx: LayerContext, users: Sequence[str] = (), groups: Sequence[str] = ()) -> None:
    """Write ``/etc/{passwd,group,shadow}``: Alpine's accounts, then ``users`` and ``groups`` lines.

    ``adduser -S`` locks the new account (``!``) and stamps today's day, drawn from the layer's Faker.
    """
    day = _SHADOW_DAY + ctx.fake.random_int(1, 400)
    shadow = "".join(f"{line.split(':', 1)[0]}:{'*' if line.startswith('root') else '!'}::0:::::\n"
                     for line in _PASSWD.splitlines())
    shadow += "".join(f"{u.split(':', 1)[0]}:!:{day}:0:99999:7:::\n" for u in users)
    ctx.file("etc/passwd", _PASSWD + "".join(u + "\n" for u in users))
    ctx.file("etc/group", _GROUP + "".join(g + "\n" for g in groups))
    ctx.file("etc/shadow", shadow, 0o640, gid=42)


# -- apk ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApkPackage:
    """One record of ``/lib/apk/db/installed`` (the fields ``apk info`` shows)."""

    name: str
    version: str
    description: str
    url: str
    license: str
    size: int
    origin: str = ""

    def record(self) -> str:
        """The package's record; ``C:`` is a stable pseudo checksum (``Q1`` + base64 SHA-1)."""
        digest = base64.b64encode(hashlib.sha1(f"{self.name}-{self.version}".encode()).digest()).decode()
        return (
            f"C:Q1{digest}\nP:{self.name}\nV:{self.version}\nA:x86_64\nS:{self.size // 3}\nI:{self.size}\n"
            f"T:{self.description}\nU:{self.url}\nL:{self.license}\no:{self.origin or self.name}\n"
            "m:Natanael Copa <ncopa@alpinelinux.org>\n"
        )


_BUSYBOX = ("https://busybox.net/", "GPL-2.0-only")
_OPENSSL = ("https://www.openssl.org/", "Apache-2.0")
_MUSL = "https://musl.libc.org/"
_BASELAYOUT = ("https://git.alpinelinux.org/cgit/aports/tree/main/alpine-baselayout", "GPL-2.0-only")
_MOZILLA = "https://www.mozilla.org/en-US/about/governance/policies/security-group/certs/"

#: The 15 packages of the alpine:3.19 image, in install order.
BASE_APK_PACKAGES: tuple[ApkPackage, ...] = (
    ApkPackage("musl", "1.2.4_git20230717-r4", "the musl c library (libc) implementation", _MUSL, "MIT", 647168),
    ApkPackage("busybox", "1.36.1-r15", "Size optimized toolbox of many common UNIX utilities", *_BUSYBOX,
               950272),
    ApkPackage("busybox-binsh", "1.36.1-r15", "busybox ash /bin/sh", *_BUSYBOX, 4096, "busybox"),
    ApkPackage("alpine-baselayout-data", "3.4.3-r2", "Alpine base dir structure and init scripts", *_BASELAYOUT,
               77824, "alpine-baselayout"),
    ApkPackage("alpine-baselayout", "3.4.3-r2", "Alpine base dir structure and init scripts", *_BASELAYOUT, 8192),
    ApkPackage("alpine-keys", "2.4-r1", "Public keys for Alpine Linux packages", "https://alpinelinux.org", "MIT",
               163840),
    ApkPackage("ca-certificates-bundle", "20230506-r0", "Pre generated bundle of Mozilla certificates", _MOZILLA,
               "MPL-2.0 AND MIT", 233472, "ca-certificates"),
    ApkPackage("libcrypto3", "3.1.4-r5", "Crypto library from openssl", *_OPENSSL, 4448256, "openssl"),
    ApkPackage("libssl3", "3.1.4-r5", "SSL shared libraries", *_OPENSSL, 593920, "openssl"),
    ApkPackage("ssl_client", "1.36.1-r15", "EXTERNAL ssl_client for busybox wget", *_BUSYBOX, 28672, "busybox"),
    ApkPackage("zlib", "1.3.1-r0", "A compression/decompression Library", "https://zlib.net/", "Zlib", 98304),
    ApkPackage("apk-tools", "2.14.0-r5", "Alpine Package Keeper - package manager for alpine",
               "https://gitlab.alpinelinux.org/alpine/apk-tools", "GPL-2.0-only", 315392),
    ApkPackage("scanelf", "1.3.7-r2", "Scan ELF binaries for stuff",
               "https://wiki.gentoo.org/wiki/Hardened/PaX_Utilities", "GPL-2.0-only", 86016, "pax-utils"),
    ApkPackage("musl-utils", "1.2.4_git20230717-r4", "the musl c library (libc) implementation", _MUSL,
               "MIT AND BSD-2-Clause AND GPL-2.0-or-later", 135168, "musl"),
    ApkPackage("libc-utils", "0.7.2-r5", "Meta package to pull in correct libc", "https://alpinelinux.org",
               "BSD-2-Clause AND BSD-3-Clause", 4096, "libc-dev"),
)

_WORLD = ("alpine-baselayout", "alpine-keys", "apk-tools", "busybox", "ca-certificates-bundle", "libc-utils",
          "libcrypto3", "libssl3", "musl", "musl-utils", "scanelf", "ssl_client", "zlib")


def write_apk_db(ctx: LayerContext, added: Iterable[ApkPackage] = (), world: Iterable[str] = ()) -> None:
    """Write ``/lib/apk/db/installed`` (install order) and ``/etc/apk/world`` (sorted) with additions."""
    records = [p.record() for p in (*BASE_APK_PACKAGES, *added)]
    ctx.file("lib/apk/db/installed", "\n".join(records) + "\n")
    ctx.file("etc/apk/world", "\n".join(sorted({*_WORLD, *world})) + "\n")


# -- the root -----------------------------------------------------------------------------------------

_OS_RELEASE = f"""\
NAME="Alpine Linux"
ID=alpine
VERSION_ID={ALPINE_VERSION}
PRETTY_NAME="Alpine Linux v3.19"
HOME_URL="https://alpinelinux.org/"
BUG_REPORT_URL="https://gitlab.alpinelinux.org/alpine/aports/-/issues"
"""

_PROFILE = """\
export CHARSET=UTF-8
export LANG=C.UTF-8
export LC_COLLATE=C
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
export PAGER=less
umask 022

# use nicer PS1 for bash and busybox ash
if [ -n "$BASH_VERSION" -o "$BB_ASH_VERSION" ]; then
\tPS1='\\h:\\w\\$ '
# use nicer PS1 for zsh
elif [ -n "$ZSH_VERSION" ]; then
\tPS1='%m:%~%# '
# set up fallback default PS1
else
\t: "${HOSTNAME:=$(hostname)}"
\tPS1='${HOSTNAME%%.*}:$PWD'
\t[ "$(id -u)" -eq 0 ] && PS1="${PS1}# " || PS1="${PS1}\\$ "
fi

for script in /etc/profile.d/*.sh ; do
\tif [ -r "$script" ] ; then
\t\t. "$script"
\tfi
done
unset script
"""

_MOTD = """\
Welcome to Alpine!

The Alpine Wiki contains a large amount of how-to guides and general
information about administrating Alpine systems.
See <https://wiki.alpinelinux.org/>.

You can setup the system with the command: setup-alpine

You may change this message by editing /etc/motd.

"""

_APK_KEYS = (
    "alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub",
    "alpine-devel@lists.alpinelinux.org-61666e3f.rsa.pub",
)

#: Small fixed files of the root, by path.
_FIXED_FILES = {
    "etc/alpine-release": ALPINE_VERSION + "\n",
    "etc/os-release": _OS_RELEASE,
    "etc/issue": "Welcome to Alpine Linux 3.19\nKernel \\r on an \\m (\\l)\n\n",
    "etc/hostname": "localhost\n",
    "etc/motd": _MOTD,
    "etc/profile": _PROFILE,
    "etc/shells": "# valid login shells\n/bin/sh\n/bin/ash\n",
    "etc/securetty": "console\ntty1\ntty2\n",
    "etc/fstab": "/dev/cdrom\t/media/cdrom\tiso9660\tnoauto,ro 0 0\n/dev/usbdisk\t/media/usb\tvfat\tnoauto,ro 0 0\n",
    "etc/inittab": (
        "::sysinit:/sbin/openrc sysinit\n::wait:/sbin/openrc default\n"
        "::ctrlaltdel:/sbin/reboot\n::shutdown:/sbin/openrc shutdown\n"
    ),
    "etc/profile.d/color_prompt.sh.disabled": "# Setup a red prompt for root and a green one for users.\n",
    "etc/apk/arch": "x86_64\n",
    "etc/apk/repositories": (
        "https://dl-cdn.alpinelinux.org/alpine/v3.19/main\nhttps://dl-cdn.alpinelinux.org/alpine/v3.19/community\n"
    ),
    "lib/apk/db/triggers": "",
    "sbin/ldconfig": "#!/bin/sh\nscanelf -qS \"$@\"\n",
}

_EMPTY_DIRS = (
    "dev", "etc/apk/protected_paths.d", "home", "lib/apk/exec", "media/cdrom", "media/floppy", "media/usb", "mnt",
    "opt", "proc", "run", "srv", "sys", "usr/local/bin", "usr/local/lib", "usr/local/share", "usr/share/apk",
    "var/cache/apk", "var/empty", "var/lib/misc", "var/local", "var/log", "var/opt", "var/spool/cron",
)


def _rootfs(ctx: LayerContext) -> None:
    """Alpine's minirootfs, trimmed: about 180 paths instead of ~520."""
    fake = ctx.fake
    for name in _EMPTY_DIRS:
        ctx.dir(name)
    ctx.dir("root", 0o700)
    ctx.dir("tmp", 0o1777)
    ctx.dir("var/tmp", 0o1777)
    ctx.dir("var/mail", 0o775, gid=12)
    ctx.symlink("var/run", "/run")
    ctx.symlink("var/lock", "/run/lock")
    ctx.symlink("var/spool/mail", "/var/mail")
    for path, text in _FIXED_FILES.items():
        ctx.file(path, text, 0o755 if path.startswith("sbin/") else 0o644)
    write_alpine_accounts(ctx)
    for key in _APK_KEYS:
        ctx.file(f"etc/apk/keys/{key}", pem_block(fake, "PUBLIC KEY", 294))
    ctx.file("etc/ssl/certs/ca-certificates.crt", "".join(pem_block(fake) for _ in range(3)))
    ctx.symlink("etc/ssl/cert.pem", "certs/ca-certificates.crt")
    write_apk_db(ctx)
    ctx.file("lib/apk/db/lock", b"", 0o600)

    add_binary(ctx, "bin/busybox", "BusyBox v1.36.1 (2024-01-16 09:42:32 UTC) multi-call binary.",
               size=fake.random_int(2000, 3000), interpreter=MUSL_LOADER)
    add_applets(ctx, BUSYBOX_APPLETS)
    add_binary(ctx, "sbin/apk", "apk-tools 2.14.0, compiled for x86_64.", interpreter=MUSL_LOADER)
    add_binary(ctx, "usr/bin/scanelf", "scanelf 1.3.7", interpreter=MUSL_LOADER)
    add_binary(ctx, "usr/bin/ssl_client", "ssl_client for busybox wget", interpreter=MUSL_LOADER)
    add_binary(ctx, "lib/ld-musl-x86_64.so.1", "musl libc (x86_64)", "Version 1.2.4_git20230717",
               size=fake.random_int(1000, 1600), interpreter=None)
    ctx.symlink("lib/libc.musl-x86_64.so.1", "ld-musl-x86_64.so.1")
    ctx.symlink("usr/bin/ldd", "/lib/ld-musl-x86_64.so.1")
    for real, soname in (("libz.so.1.3.1", "libz.so.1"), ("libcrypto.so.3", None), ("libssl.so.3", None),
                         ("libapk.so.2.14.0", None)):
        add_binary(ctx, f"lib/{real}", real, interpreter=None)
        if soname:
            ctx.symlink(f"lib/{soname}", real)


#: The one layer of ``alpine:3.19``.
ALPINE_ROOTFS = LayerRecipe("alpine-3.19-minirootfs", _rootfs)

ALPINE_3_19 = ImageRecipe(
    name="alpine:3.19",
    steps=(add_rootfs_step(ALPINE_ROOTFS), nop('CMD ["/bin/sh"]')),
    config={"Env": [ALPINE_PATH], "Cmd": ["/bin/sh"]},
)
