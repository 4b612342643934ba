#!/usr/bin/env bash
# The student's loop in a real terminal: tmux runs `tox -e lab1` and `dockerlab watch`, the tests
# read the screen (tests/test_terminal.py; skipped where tmux is missing, so installed here).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
apt_need tmux git
tox -e py -- tests/test_terminal.py -p no:cacheprovider -v
