#!/usr/bin/env bash
# The main job on the embedded default: no cloud account, no server.
# Generates sample instrument output (a day of 15-minute NetCDF-4 files) in a local
# folder, syncs it into a local Icechunk repository, syncs again (nothing new: the
# repository remembers), then prints the history with its provenance.
#
#   scripts/run.sh [FOLDER] [REPO]      (default: ~/floe-demo/instrument ~/floe-demo/repo)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$here/scripts/setup.sh"

folder="${1:-$HOME/floe-demo/instrument}"
repo="${2:-$HOME/floe-demo/repo}"

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
log "done: open it with  xarray.open_zarr(icechunk.Repository.open(icechunk.local_filesystem_storage('$repo')).readonly_session('main').store)"
