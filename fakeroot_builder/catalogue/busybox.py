"""``busybox:latest``: one binary and a bin/ full of hard links to it, plus a handful of files.

Unlike Alpine, the official busybox image installs the applets with ``busybox --install`` (no
``-s``): every ``/bin/<applet>`` is a hard link to ``/bin/busybox``, one inode with many names,
which the layer tar records as hard-link entries and ``size`` counts once.
"""

from __future__ import annotations

from ..recipe import ImageRecipe, LayerContext, LayerRecipe
from ._common import GLIBC_LOADER, add_applets, add_binary, add_rootfs_step, nop
from .alpine import BUSYBOX_APPLETS

__all__ = ["BUSYBOX_LATEST", "BUSYBOX_PATH", "BUSYBOX_ROOTFS"]

BUSYBOX_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_PASSWD = """\
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
"""

_GROUP = """\
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
lp:x:7:
mail:x:8:
kmem:x:9:
wheel:x:10:root
cdrom:x:11:
dialout:x:18:
floppy:x:19:
video:x:28:
audio:x:29:
tape:x:32:
www-data:x:33:
operator:x:37:
utmp:x:43:
plugdev:x:46:
staff:x:50:
lock:x:54:
netdev:x:82:
users:x:100:
nobody:x:65534:
"""

_NSSWITCH = "hosts:\tfiles dns\nnetworks:\tfiles\npasswd:\tfiles\ngroup:\tfiles\nshadow:\tfiles\n"


def _rootfs(ctx: LayerContext) -> None:
    """The glibc flavour of the busybox image: bin/, a few libraries, accounts, empty dirs."""
    fake = ctx.fake
    add_binary(ctx, "bin/busybox", "BusyBox v1.36.1 (2023-05-18 22:34:17 UTC) multi-call binary.",
               size=fake.random_int(2500, 3500), interpreter=GLIBC_LOADER)
    # everything in bin/, hard-linked (the image has ~400; a few dozen are enough here)
    applets = sorted({name for names in BUSYBOX_APPLETS.values() for name in names})
    add_applets(ctx, {"bin": applets}, hardlink=True)
    for lib in ("ld-linux-x86-64.so.2", "libc.so.6", "libm.so.6", "libresolv.so.2", "libnss_files.so.2"):
        add_binary(ctx, f"lib/{lib}", lib, interpreter=None)
    ctx.symlink("lib64", "lib")
    ctx.file("etc/passwd", _PASSWD)
    ctx.file("etc/group", _GROUP)
    shadow = [f"{line.split(':', 1)[0]}:*::0:::::\n" for line in _PASSWD.splitlines()]
    ctx.file("etc/shadow", "".join(shadow), 0o600)
    ctx.file("etc/nsswitch.conf", _NSSWITCH)
    for hook in ("if-down.d", "if-post-down.d", "if-pre-up.d", "if-up.d"):
        ctx.dir(f"etc/network/{hook}")
    ctx.dir("home")
    ctx.dir("root", 0o700)
    ctx.dir("tmp", 0o1777)
    ctx.dir("usr/sbin")
    ctx.dir("var/spool/mail")
    ctx.dir("var/www")


#: The one layer of ``busybox:latest``.
BUSYBOX_ROOTFS = LayerRecipe("busybox-1.36-glibc-rootfs", _rootfs)

BUSYBOX_LATEST = ImageRecipe(
    name="busybox:latest",
    steps=(add_rootfs_step(BUSYBOX_ROOTFS), nop('CMD ["sh"]')),
    config={"Env": [BUSYBOX_PATH], "Cmd": ["sh"]},
)
