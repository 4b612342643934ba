#!/usr/bin/env bash
# bbolt's own consistency check (tests/tools/boltcheck, Go) runs in the README's test command:
# tests/test_bbolt.py fails on CI without it. Built offline from Debian's packages.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
apt_need golang-go golang-github-coreos-bbolt-dev
