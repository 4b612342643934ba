#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (written by
# `dockerlab gradescope-bundle`). Base image: Ubuntu 22.04 or newer (dockerlab needs Python >= 3.10).
set -euo pipefail
source=/autograder/source
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends python3 python3-venv python3-pip bubblewrap
if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  echo "dockerlab needs Python >= 3.10; this image has $(python3 --version 2>&1)." >&2
  echo "Choose Gradescope's Ubuntu 22.04 (or newer) base image in the autograder settings." >&2
  exit 1
fi
python3 -m venv /autograder/venv
/autograder/venv/bin/python -m pip install -q --upgrade pip
/autograder/venv/bin/python -m pip install -q -e "${source}[test]"
chmod 600 "$source/.dockerlab-secret"
chmod 755 "$source/run_autograder"
# Fail the build now, not on every submission, if the grader cannot start.
/autograder/venv/bin/python -m dockerlab.grading.platforms gradescope --check
