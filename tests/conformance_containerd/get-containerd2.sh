#!/usr/bin/env bash
# Unpack Debian unstable's containerd 2.x into DIR (DIR/usr/bin/containerd, ctr, shim) with a
# private apt configuration: /etc/apt and the installed packages are untouched.
#   tests/conformance_containerd/get-containerd2.sh [DIR]
# DIR defaults to where the conformance tests look when DOCKERLAB_CONTAINERD2 is unset:
# ${DOCKERLAB_CACHE:-${XDG_CACHE_HOME:-~/.cache}/dockerlab}/containerd2.
set -euo pipefail
default="${DOCKERLAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dockerlab}/containerd2"
dir=$(realpath -m "${1:-${DOCKERLAB_CONTAINERD2:-$default}}")
if [ -x "$dir/usr/bin/containerd" ] && "$dir/usr/bin/containerd" --version | grep -q ' 2\.'; then
  exit 0
fi
apt=$(mktemp -d /tmp/containerd2-apt.XXXXXX)
trap 'rm -rf "$apt"' EXIT
mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/parts" "$apt/prefs"
echo "deb http://deb.debian.org/debian sid main" >"$apt/sources.list"
cat >"$apt/apt.conf" <<CONF
Dir::Etc::SourceList "$apt/sources.list";
Dir::Etc::SourceParts "$apt/parts";
Dir::Etc::Parts "$apt/parts";
Dir::Etc::PreferencesParts "$apt/prefs";
Dir::State::Lists "$apt/lists";
Dir::Cache "$apt/cache";
Acquire::Check-Valid-Until "false";
APT::Sandbox::User "root";
CONF
export APT_CONFIG="$apt/apt.conf"
apt-get update -qq
(cd "$apt" && apt-get download -qq containerd/sid)
mkdir -p "$dir"
dpkg-deb -x "$apt"/containerd_*.deb "$dir"
"$dir/usr/bin/containerd" --version
