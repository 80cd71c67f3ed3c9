#!/usr/bin/env bash
# The main job on the embedded default: no cloud account, no server.
# Generates sample instrument output (a day of 15-minute NetCDF-4 files) in a local
# folder, syncs it into a local Icechunk repository, syncs again (nothing new: the
# repository remembers), prints the history with its provenance, then mounts the
# repository read-only (branches/, tags/, snapshots/, by-time/ as plain Zarr folders)
# and reads it back through the mount with xarray.
#
#   scripts/run.sh [FOLDER] [REPO] [MOUNTPOINT]
#   (default: ~/floe-demo/instrument ~/floe-demo/repo ~/floe-demo/mnt)
#
#   scripts/run.sh --app [FOLDER] [REPO]
#   the same sample data, registered as a sync folder, and the desktop app started
#   on it (tray, Folders, History, Mounts); without a display it runs under xvfb-run.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
app=0
if [ "${1:-}" = "--app" ]; then app=1; shift; fi
source "$here/scripts/setup.sh"

folder="${1:-$HOME/floe-demo/instrument}"
repo="${2:-$HOME/floe-demo/repo}"
mnt="${3:-$HOME/floe-demo/mnt}"

log "building floe"
(cd "$here" && cargo build -q -p floe-cli)
floe="$CARGO_TARGET_DIR/debug/floe"

if [ ! -e "$folder/.floe-demo" ]; then
  log "writing a day of sample instrument output to $folder"
  "$FLOE_VENV/bin/python" "$here/tests/python/make_fixtures.py" "$folder" --files 96
  touch "$folder/.floe-demo"
fi

if [ "$app" = 1 ]; then
  log "building floe and the desktop app"
  (cd "$here" && cargo build -q -p floe-cli -p floe-desktop)
  folder="$(cd "$folder" && pwd)"
  if ! "$floe" list --json | grep -q "\"$folder\""; then
    "$floe" add "$folder" "$repo"
  fi
  log "starting the desktop app: $folder syncs into $repo (close the window: it keeps syncing in the tray)"
  if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
    exec "$CARGO_TARGET_DIR/debug/floe-desktop"
  else
    log "no display here: running the app under xvfb-run (Ctrl-C stops it)"
    exec xvfb-run -a dbus-run-session -- "$CARGO_TARGET_DIR/debug/floe-desktop"
  fi
fi

log "floe sync $folder $repo"
"$floe" sync "$folder" "$repo" --quiet 0
log "floe sync again: nothing new is written"
"$floe" sync "$folder" "$repo" --quiet 0
log "floe log $repo -n 3"
"$floe" log "$repo" -n 3
log "floe mount $repo $mnt"
mkdir -p "$mnt"
# a mount left by an earlier run is replaced (a dead one is detached by floe mount)
if mountpoint -q "$mnt" 2>/dev/null && ls "$mnt" >/dev/null 2>&1; then "$floe" unmount "$mnt"; fi
"$floe" mount "$repo" "$mnt" --background
ls "$mnt" "$mnt/branches" "$mnt/by-time" | head -20
"$FLOE_VENV/bin/python" - "$mnt" <<'PY'
import sys, xarray as xr
ds = xr.open_zarr(sys.argv[1] + "/branches/main", consolidated=False)
print(f"xarray through the mount: {dict(ds.sizes)}; last time {ds.time.values[-1]}")
PY
log "done: $mnt holds the repository as plain Zarr (xr.open_zarr('$mnt/branches/main', consolidated=False)); floe unmount $mnt when finished"
