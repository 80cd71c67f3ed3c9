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
export FLOE_PYTHON="$FLOE_VENV/bin/python"

# Bystanders: tests assert only about what they made. The whole suite runs next to
# another Floe mount and a `floe daemon` under another runtime directory and config
# (as on a lab desktop, or after scripts/run.sh left its demo mount); a test that
# looks at the machine's mounts or daemons instead of its own fails here.
log "bystanders: a Floe mount and a floe daemon that belong to nobody's test"
bystand="$(mktemp -d /tmp/floe-bystander.XXXXXX)"
floe_bin="$CARGO_TARGET_DIR/debug/floe"
stop_bystanders() {
  "$floe_bin" unmount "$bystand/mnt" >/dev/null 2>&1 || true
  [ -f "$bystand/daemon.pid" ] && kill "$(cat "$bystand/daemon.pid")" 2>/dev/null || true
  rm -rf "$bystand" 2>/dev/null || true
}
trap stop_bystanders EXIT
mkdir -p "$bystand/src" "$bystand/mnt" "$bystand/run" "$bystand/watched"
"$FLOE_PYTHON" tests/python/make_fixtures.py "$bystand/src" --files 2 >/dev/null
"$floe_bin" sync "$bystand/src" "$bystand/repo" --quiet 0 >/dev/null
"$floe_bin" mount "$bystand/repo" "$bystand/mnt" --background >/dev/null
FLOE_CONFIG="$bystand/config.toml" "$floe_bin" add "$bystand/watched" "$bystand/repo2" >/dev/null
XDG_RUNTIME_DIR="$bystand/run" FLOE_CONFIG="$bystand/config.toml" FLOE_KEYRING=off \
  "$floe_bin" daemon --quiet 0 >/dev/null 2>&1 &
echo $! >"$bystand/daemon.pid"
ls "$bystand/mnt/branches/main" >/dev/null

log "cargo nextest (unit + end-to-end)"
cargo nextest run --workspace --no-fail-fast

# The installer where no developer package is: a debootstrap'd Debian 12 (kept in
# ~/.cache/floe/clean-bookworm), apt install of the .deb, sync, the app, purge (~4 min).
log "the .deb on a clean Debian 12"
bash installer/check-clean-install.sh
