#!/usr/bin/env bash
# The unprivileged user's run. CI runs as root; students and instructors do not. As a user made
# for this run, on a fresh clone that user owns: the README's install exactly as README.md
# writes it, `tox`, every lab of labs/info.toml at full points from solutions/ copied into labs/,
# and `dockerlab grade` on a small class (perfect, blank, half) with the totals checked
# (.ci/unprivileged.py).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
apt_need git python3-venv util-linux passwd bubblewrap
repo=$(pwd)
user=dlci$$

# the README's install line, as written: the first line of a ```sh block that makes the venv
install=$(awk '/^```sh/{code=1;next} /^```/{code=0} code && /python3 -m venv/ {sub(/[[:space:]]+#.*$/,""); print; exit}' README.md)
case "$install" in *"pip install"*) ;; *) echo "40-unprivileged: no install line in README.md" >&2; exit 1 ;; esac

useradd --create-home --shell /bin/bash "$user"
home=$(getent passwd "$user" | cut -d: -f6)
trap 'userdel --remove --force "$user" 2>/dev/null || true' EXIT
git clone -q --no-hardlinks "$repo" "$home/repo"
chown -R "$user:" "$home"

as_user() {  # a login shell of the user, in its clone, without root's environment; its own
  # TMPDIR, so no /tmp/pytest-of-<name> left by an earlier user of the same name or uid is in the way
  runuser -l "$user" -c "set -euo pipefail; export TMPDIR=\$HOME/tmp; mkdir -p \$TMPDIR; cd ~/repo; $1"
}

echo "--- as $user (uid $(id -u "$user")): $install && tox"
as_user "$install && tox"
echo "--- as $user: every lab at full points from solutions/"
as_user ". .venv/bin/activate && python3 .ci/unprivileged.py labs"
echo "--- as $user: dockerlab grade on perfect, blank, half"
as_user ". .venv/bin/activate && python3 .ci/unprivileged.py grade"
echo "--- the unprivileged run passed"
