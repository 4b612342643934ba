"""Regenerate the real-containerd bbolt files of this directory (see README.md). Needs root.

    DOCKERLAB_CONTAINERD2=DIR python tests/data/bbolt/make_fixtures.py BOLTCHECK ALPINE.tar BUSYBOX.tar
"""

import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "conformance_containerd"))

from realcontainerd import Containerd  # noqa: E402


def main(boltcheck: str, *archives: str) -> None:
    for version in ("1.6", "2"):
        out = HERE / f"containerd-{version}"
        out.mkdir(exist_ok=True)
        with Containerd(version) as c:
            for archive in archives:
                c.ctr("images", "import", archive)
            top = c.ctr("snapshots", "ls").split("\n")[1].split()[0]
            c.ctr("snapshots", "prepare", "fixture-active", top)
            c.ctr("containers", "create", "docker.io/library/busybox:latest", "fixture-c1")
            c.ctr("leases", "create", "--id", "fixture-lease")
        shutil.copy(c.root / "io.containerd.metadata.v1.bolt/meta.db", out / "meta.db")
        shutil.copy(c.root / "io.containerd.snapshotter.v1.overlayfs/metadata.db", out / "metadata.db")
        for name in ("meta.db", "metadata.db"):
            walk = subprocess.run([boltcheck, str(out / name)], capture_output=True, text=True, check=True)
            (out / f"{name}.jsonl").write_text(walk.stdout)
        c.cleanup()


if __name__ == "__main__":
    main(*sys.argv[1:])
