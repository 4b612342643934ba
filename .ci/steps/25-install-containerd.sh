#!/usr/bin/env bash
# What the containerd half of `tox -e conformance` (step 30, tests/conformance_containerd) needs:
# Debian's containerd 1.6 with runc, busybox-static (a real binary for `ctr run`), Go and bbolt's
# source (bbolt's own check of our databases), and containerd 2.x unpacked from Debian unstable's
# package into the default $DOCKERLAB_CONTAINERD2 (<cache>/containerd2) without touching /etc/apt.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
apt_need containerd runc busybox-static golang-go golang-github-coreos-bbolt-dev
bash "$(dirname "$0")/../../tests/conformance_containerd/get-containerd2.sh"
