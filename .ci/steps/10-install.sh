#!/usr/bin/env bash
# Debian packages the tests use, and tox. Each later step may install more of its own.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
apt_need docker.io docker-registry busybox-static bubblewrap attr
python3 -m pip install -q --disable-pip-version-check "tox>=4"
