#!/usr/bin/env bash
# The builder against a real Docker daemon. CI=true makes a missing daemon a failure.
set -euo pipefail
tox -e conformance
