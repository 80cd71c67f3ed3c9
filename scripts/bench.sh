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
# Azurite on a free loopback port for the week-into-Azure comparison; stopped on exit
az_dir="$(mktemp -d)"
az_port="$("$FLOE_VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$FLOE_CACHE/node/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort "$az_port" \
  --location "$az_dir" --skipApiVersionCheck --loose --disableTelemetry >/dev/null 2>&1 &
az_pid=$!
trap 'kill $az_pid 2>/dev/null; wait $az_pid 2>/dev/null; rm -rf "$az_dir"' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$az_port") 2>/dev/null && break; sleep 0.1; done
"$FLOE_VENV/bin/python" "$here/bench/ingest.py" --floe "$CARGO_TARGET_DIR/release/floe" \
  --azurite "http://127.0.0.1:$az_port" "$@"
# verify against its own sync and the reference way
"$FLOE_VENV/bin/python" "$here/bench/verify.py" --floe "$CARGO_TARGET_DIR/release/floe" "$@"
"$FLOE_VENV/bin/python" "$here/bench/daemon.py" --floe "$CARGO_TARGET_DIR/release/floe"
# a backlog after an outage: the daemon catching up vs floe sync of it, local and Azurite
"$FLOE_VENV/bin/python" "$here/bench/catchup.py" --floe "$CARGO_TARGET_DIR/release/floe" \
  --azurite "http://127.0.0.1:$az_port"
# The mount: through FUSE vs the icechunk crate in process vs Python icechunk
(cd "$here" && cargo build -q --release -p floe-mount --example read_chunks)
"$FLOE_VENV/bin/python" "$here/bench/mount.py" --floe "$CARGO_TARGET_DIR/release/floe" \
  --reader "$CARGO_TARGET_DIR/release/examples/read_chunks" "$@"
# The desktop app: cold start to the first folder list, idle RSS with 5 folders
(cd "$here" && cargo build -q --release -p floe-desktop)
"$FLOE_VENV/bin/python" "$here/bench/app.py" --app "$CARGO_TARGET_DIR/release/floe-desktop" \
  --floe "$CARGO_TARGET_DIR/release/floe"
# The daemon unattended for 30 minutes (5 folders, a file every 5 s each): RSS,
# descriptors and latency per minute. Half an hour, so only when asked:
#   FLOE_BENCH_SOAK=1 scripts/bench.sh
if [ "${FLOE_BENCH_SOAK:-0}" = 1 ]; then
  "$FLOE_VENV/bin/python" "$here/bench/soak.py" --floe "$CARGO_TARGET_DIR/release/floe"
fi
