#!/usr/bin/env bash
# Idempotent set-up for Floe on Debian 12: Debian packages, the Rust build, and a
# Python >= 3.12 virtual environment with the reference readers (tests only).
# Safe to run again: each step checks before it installs.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export FLOE_CACHE="${FLOE_CACHE:-$HOME/.cache/floe}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$FLOE_CACHE/target}"
export FLOE_VENV="${FLOE_VENV:-$FLOE_CACHE/venv}"
mkdir -p "$FLOE_CACHE"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# 1. Debian packages (only what is missing)
need=()
# gnome-keyring + dbus + libsecret-tools: a real Secret Service (the OS keychain) for tests;
# iproute2: the network namespace behind the slow-link test; fuse3: /dev/fuse,
# fusermount3 and umount for `floe mount`
# the desktop app (Tauri 2 on WebKitGTK): its -dev libraries, and for its tests a
# virtual display (xvfb, xauth) and WebKitWebDriver (webkit2gtk-driver); the .deb's
# finishing (dpkg-dev for dpkg-shlibdeps, help2man for the manual page) and its check
# (lintian)
for p in build-essential pkg-config gnome-keyring dbus libsecret-tools iproute2 fuse3 \
         libssl-dev libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev libxdo-dev \
         file xvfb xauth webkit2gtk-driver dpkg-dev help2man lintian strace; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
# Node.js and npm (for Azurite, the Azure test server) unless the machine has its own
command -v npm >/dev/null || need+=(nodejs npm)
if ((${#need[@]})); then
  log "installing Debian packages: ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# 2. Rust toolchain and cargo-nextest
command -v cargo >/dev/null || { echo "cargo not found: install Rust 1.95+ with rustup (https://rustup.rs) and run again" >&2; exit 1; }
if ! cargo nextest --version >/dev/null 2>&1; then
  log "installing cargo-nextest"
  cargo install --locked cargo-nextest
fi

# tauri-driver: the WebDriver front of the desktop app's end-to-end tests
if [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/tauri-driver" ]; then
  log "installing tauri-driver"
  cargo install --locked tauri-driver --version 2.1.0
fi

# 3. Python >= 3.12 (icechunk 2.x needs it; on 3.11 pip silently installs 1.x)
ok_python() { "$1" -c 'import sys, venv; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; }
find_python() {
  local roots=()
  command -v pyenv >/dev/null && roots+=("$(pyenv root)/versions")
  roots+=("$HOME/.pyenv/versions" /root/.pyenv/versions)
  local c
  for c in "${FLOE_PYTHON_BASE:-}" \
           $(for r in "${roots[@]}"; do ls -d "$r"/3.1[2-9]*/bin/python3 2>/dev/null | sort -V; done) \
           python3.12 python3.13 python3; do
    [ -n "$c" ] || continue
    c="$(command -v "$c" 2>/dev/null || true)"
    [ -n "$c" ] && ok_python "$c" && { echo "$c"; return 0; }
  done
  return 1
}
if [ ! -x "$FLOE_VENV/bin/python" ]; then
  base="$(find_python)" || { echo "Python >= 3.12 not found: install python3.12 (or set FLOE_PYTHON_BASE) and run again" >&2; exit 1; }
  log "creating the test venv with $base"
  "$base" -m venv "$FLOE_VENV"
fi
stamp="$FLOE_VENV/.requirements.sha"
want="$(sha256sum "$here/tests/python/requirements.txt" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing the Python reference readers"
  "$FLOE_VENV/bin/pip" install -q --disable-pip-version-check -r "$here/tests/python/requirements.txt"
  echo "$want" > "$stamp"
fi

# 4. Azurite (Azure Blob emulator) from the npm registry, for the storage tests
export FLOE_NODE="${FLOE_NODE:-$FLOE_CACHE/node}"
if [ ! -x "$FLOE_NODE/node_modules/.bin/azurite-blob" ]; then
  log "installing Azurite"
  mkdir -p "$FLOE_NODE"
  npm install --silent --no-audit --no-fund --prefix "$FLOE_NODE" azurite@3.37.0 >/dev/null
fi

# 5. The desktop app's interface (ui/: Vite + TypeScript), built into ui/dist, which
# the app embeds at compile time. Vite 7 needs Node.js 20.19 or newer.
node_ok="$(node -e 'const [a,b]=process.versions.node.split(".").map(Number); console.log(a>20||(a==20&&b>=19)?1:0)' 2>/dev/null || echo 0)"
if [ "$node_ok" != 1 ]; then
  echo "Node.js $(node --version 2>/dev/null || echo none) is too old for the app's UI build: install Node.js 20.19+ (or 22.12+) and run again" >&2
  exit 1
fi
stamp="$here/ui/node_modules/.floe-lock.sha"
want="$(sha256sum "$here/ui/package-lock.json" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing the UI's npm packages"
  # (npm install, not npm ci: npm 11 rejects a lock file without the other platforms'
  # optional binaries of @tauri-apps/cli and esbuild; the lock still pins every version)
  npm install --silent --no-audit --no-fund --prefix "$here/ui" >/dev/null
  echo "$want" > "$stamp"
fi
log "building the UI (ui/dist)"
npm run --silent --prefix "$here/ui" build >/dev/null
