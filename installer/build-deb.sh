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
cp "$target"/release/bundle/deb/*.deb installer/out/
deb="$(ls installer/out/*.deb)"
log "built $deb ($(du -h "$deb" | cut -f1))"
