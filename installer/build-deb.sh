#!/usr/bin/env bash
# Build Floe's .deb offline with the Tauri bundler: the app (floe-desktop), the
# `floe` CLI in /usr/bin, a desktop entry and icons, and a systemd user unit for the
# headless `floe daemon`; dependencies declared (fuse3, the WebKitGTK runtime).
#
#   installer/build-deb.sh        -> installer/out/<name>_<version>_<arch>.deb
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$here/scripts/setup.sh"
cd "$here"
# Tauri's bundler lays out the files; the package's metadata is finished here, as a
# Debian package has it: Depends computed by dpkg-shlibdeps from what the binaries
# link (Tauri's own list names three packages twice and no libc), a Maintainer with
# an address, the copyright file and changelog, manual pages (help2man from
# `floe --help`), the description wrapped, and lintian's overrides; tests/installer.rs
# runs lintian on the result.
finish_deb() {
  local from="$1" to="$2" work
  work="$(mktemp -d)"
  dpkg-deb -R "$from" "$work/pkg"
  local pkg="$work/pkg" doc="$work/pkg/usr/share/doc/floe"
  mkdir -p "$work/debian" "$doc" "$pkg/usr/share/man/man1" "$pkg/usr/share/lintian/overrides"
  printf 'Source: floe\n\nPackage: floe\nArchitecture: any\n' >"$work/debian/control"
  local shlibs
  shlibs="$(cd "$work" && dpkg-shlibdeps -O -e pkg/usr/bin/floe -e pkg/usr/bin/floe-desktop 2>/dev/null |
    sed -n 's/^shlibs:Depends=//p')"
  # fuse3: fusermount3 for `floe mount`; the tray icon's library is loaded at run time
  local depends="fuse3, libayatana-appindicator3-1, $shlibs"
  install -m 644 installer/debian/copyright "$doc/copyright"
  gzip -9n <installer/debian/changelog >"$doc/changelog.gz"
  chmod 644 "$doc/changelog.gz"
  install -m 644 installer/debian/lintian-overrides "$pkg/usr/share/lintian/overrides/floe"
  help2man --no-info --name "sync instrument folders into Icechunk repositories, and mount them" \
    --version-string "$(grep -m1 '^version' Cargo.toml | cut -d'"' -f2)" \
    "$pkg/usr/bin/floe" | gzip -9n >"$pkg/usr/share/man/man1/floe.1.gz"
  gzip -9n <installer/debian/floe-desktop.1 >"$pkg/usr/share/man/man1/floe-desktop.1.gz"
  chmod 644 "$pkg"/usr/share/man/man1/*.gz
  "$FLOE_VENV/bin/python" - "$pkg/DEBIAN/control" "$depends" <<'PY'
import sys, textwrap
path, depends = sys.argv[1], sys.argv[2]
out, lines = [], open(path).read().splitlines()
for line in lines:
    if line.startswith("Depends:"):
        out.append(f"Depends: {depends}")
    elif line.startswith("Maintainer:"):
        out.append("Maintainer: Floe developers <floe@example.invalid>")
    elif line.startswith(" ") and out and (out[-1].startswith("Description:") or out[-1].startswith(" ")):
        out.extend(" " + w for w in textwrap.wrap(line.strip(), 79))
    else:
        out.append(line)
open(path, "w").write("\n".join(out) + "\n")
PY
  (cd "$pkg" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) \
    >"$pkg/DEBIAN/md5sums"
  sed -i "s/^Installed-Size: .*/Installed-Size: $(du -sk --exclude=DEBIAN "$pkg" | cut -f1)/" \
    "$pkg/DEBIAN/control"
  dpkg-deb --root-owner-group -Zxz --build "$pkg" "$to" >/dev/null
  rm -rf "$work"
}

log "building the floe CLI (release)"
cargo build -q --release -p floe-cli
target="$(cargo metadata --format-version 1 --no-deps | "$FLOE_VENV/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
# The CLI's place in the package is only known here (the target folder may be
# anywhere): merge it into the bundle settings of src-tauri/tauri.conf.json.
extra="$(mktemp --suffix=.json)"
trap 'rm -f "$extra"' EXIT
cat > "$extra" <<JSON
{"bundle": {"linux": {"deb": {"files": {
  "/usr/bin/floe": "$target/release/floe",
  "/usr/lib/systemd/user/floe.service": "$here/installer/floe.service"
}}}}}
JSON
log "building the app and the .deb (release)"
rm -rf "$target/release/bundle/deb"
(cd src-tauri && "$here/ui/node_modules/.bin/tauri" build --ci --bundles deb --config "$extra")
mkdir -p installer/out
rm -f installer/out/*.deb
built="$(ls "$target"/release/bundle/deb/*.deb)"
deb="installer/out/$(basename "$built")"
finish_deb "$built" "$deb"
log "built $deb ($(du -h "$deb" | cut -f1))"
