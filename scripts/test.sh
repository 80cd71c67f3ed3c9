#!/usr/bin/env bash
# Every test: formatting, lints, unit tests, and the end-to-end tests against the
# Python reference readers, real FUSE mounts, S3 (moto) and Azure (Azurite) servers,
# the desktop app under Xvfb, and the .deb. Installs what it needs first (idempotent).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$here/scripts/setup.sh"
cd "$here"

log "cargo fmt --check"
cargo fmt --all -- --check
log "UI type check"
npm run --silent --prefix ui typecheck
log "cargo clippy -D warnings"
cargo clippy -q --workspace --all-targets -- -D warnings
log "cargo build (the floe binary and the app the end-to-end tests run)"
cargo build -q --workspace --bins
log "the .deb (release build; installed and removed by tests/tests/installer.rs)"
bash installer/build-deb.sh
log "cargo nextest (unit + end-to-end)"
export FLOE_PYTHON="$FLOE_VENV/bin/python"
cargo nextest run --workspace --no-fail-fast
