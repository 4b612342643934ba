#!/usr/bin/env bash
# Unpack Debian unstable's containerd 2.x into DIR (DIR/usr/bin/containerd, ctr, shim) with a
# private apt configuration: /etc/apt and the installed packages are untouched.
#   tests/conformance_containerd/get-containerd2.sh DIR
set -euo pipefail
dir=$(realpath -m "${1:?usage: $0 DIR}")
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
