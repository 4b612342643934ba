#!/usr/bin/env bash
# The student's loop in a real terminal, as an ordinary user: tmux runs `tox -e lab1` and
# `dockerlab watch` and tests/test_terminal.py reads the screen (it skips where tmux is missing,
# so this step installs it). Run by a user made for it, on a clone that user owns.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
apt_need tmux git python3-venv util-linux passwd
repo=$(pwd)
user=dlterm$$
useradd --create-home --shell /bin/bash "$user"
home=$(getent passwd "$user" | cut -d: -f6)
trap 'userdel --remove --force "$user" 2>/dev/null || true' EXIT
git clone -q --no-hardlinks "$repo" "$home/repo"
chown -R "$user:" "$home"
runuser -l "$user" -c "set -euo pipefail; export TMPDIR=\$HOME/tmp; mkdir -p \$TMPDIR; cd ~/repo
  python3 -m venv .venv && . .venv/bin/activate && pip install -q tox -e '.[test]'
  python -m pytest tests/test_terminal.py -p no:cacheprovider -v -rs | tee ~/terminal.txt
  grep -q ' 2 passed' ~/terminal.txt  # both ran: a skip (tmux or tox missing) is a failure here"
