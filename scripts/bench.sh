#!/usr/bin/env bash
# Benchmarks, side by side with the reference pipeline (xarray + Python icechunk),
# in one run; prints wall time, files/s, MB/s, peak RSS, repo size and ratios.
#
#   scripts/bench.sh [--files 672] [--big-gib 1]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$here/scripts/setup.sh"
log "building floe (release)"
(cd "$here" && cargo build -q --release -p floe-cli)
"$FLOE_VENV/bin/python" "$here/bench/ingest.py" --floe "$CARGO_TARGET_DIR/release/floe" "$@"
"$FLOE_VENV/bin/python" "$here/bench/daemon.py" --floe "$CARGO_TARGET_DIR/release/floe"
