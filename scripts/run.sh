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
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
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
