# Helpers sourced by the steps.
# apt_need PKG...: install the packages that are not installed yet (one apt-get update at most).
apt_need() {
  local need=() pkg
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg"); done
  [ "${#need[@]}" -eq 0 ] && return 0
  if [ ! -e /tmp/.dockerlab-ci-apt-updated ]; then apt-get update -qq && touch /tmp/.dockerlab-ci-apt-updated; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}
