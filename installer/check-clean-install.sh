#!/usr/bin/env bash
# Release check: the .deb on a Debian 12 that has none of this machine's packages.
# A minimal bookworm is made with debootstrap from the Debian archive in a folder,
# the package is installed there with apt (which must pull in everything it
# declares: no -dev package, nothing of the host), and inside it `floe --version`, a
# `floe sync` of sample NetCDF files, a read of the result and the app's first
# window under Xvfb must work; `apt purge` must leave none of the package's files.
#
#   installer/check-clean-install.sh [installer/out/Floe_*.deb]   (as root, ~10 min)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
deb="$(readlink -f "${1:-$(ls "$here"/installer/out/*.deb)}")"
root="${FLOE_CHROOT:-${FLOE_CACHE:-$HOME/.cache/floe}/clean-bookworm}"
log() { printf '\033[1m==> %s\033[0m\n' "$*"; }
command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
cleanup() {
  # processes the app started in there (D-Bus, the document portal) go first, then
  # every mount under the folder, deepest first (the portal mounts a FUSE of its own)
  for p in /proc/[0-9]*; do
    { [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && kill -9 "${p#/proc/}" 2>/dev/null; } || true
  done
  awk -v r="$root" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
}
trap cleanup EXIT
if [ ! -x "$root/usr/bin/apt-get" ]; then
  log "debootstrap bookworm (minbase) into $root"
  rm -rf "$root"
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >/dev/null
fi
mount -t proc proc "$root/proc"; mount --rbind /sys "$root/sys"; mount --rbind /dev "$root/dev"
in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }
before="$(mktemp)"; in_root dpkg-query -W -f='${Package}\n' | sort >"$before"
log "apt install ./$(basename "$deb") (its Depends only)"
cp "$deb" "$root/tmp/floe.deb"
in_root apt-get update -qq
DEBIAN_FRONTEND=noninteractive in_root apt-get install -y -qq /tmp/floe.deb >/dev/null
if in_root dpkg-query -W -f='${Package}\n' | grep -E -- '-dev$'; then
  echo "a -dev package came with it" >&2; exit 1
fi
log "floe --version"
in_root floe --version
log "floe sync of sample files"
mkdir -p "$root/tmp/x"
"${FLOE_PYTHON:-$HOME/.cache/floe/venv/bin/python}" "$here/tests/python/make_fixtures.py" "$root/tmp/x/src" --files 3 >/dev/null
in_root floe sync /tmp/x/src /tmp/x/repo --quiet 0
in_root floe log /tmp/x/repo
log "the app's first window under Xvfb"
DEBIAN_FRONTEND=noninteractive in_root apt-get install -y -qq xvfb xauth dbus-x11 >/dev/null
in_root sh -c 'xvfb-run -a sh -c "dbus-launch floe-desktop & pid=\$!; sleep 8; kill -0 \$pid && echo the app is running; kill \$pid"' | grep -q "the app is running" \
  || { echo "the app did not start" >&2; exit 1; }
echo "the app started and kept running"
log "apt purge leaves nothing of the package"
files="$(in_root dpkg -L floe | grep -v '^/\.$' || true)"
DEBIAN_FRONTEND=noninteractive in_root apt-get purge -y -qq floe >/dev/null
left=""
for f in $files; do [ -f "$root$f" ] && left="$left $f"; done
[ -z "$left" ] || { echo "left after purge:$left" >&2; exit 1; }
log "clean install, run and purge: OK"
