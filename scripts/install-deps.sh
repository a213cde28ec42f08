#!/usr/bin/env bash
# Installs what building and testing need on a fresh Debian/Ubuntu machine (run as root):
# the system libraries of Tauri/WebKit, Chromium and Xvfb for UI tests, MinGW, Wine and the
# Windows Rust target for the Windows tests, and the pinned
# third-party MCP peers (npm + PyPI) into ignored folders under tests/peers/.
# Idempotent: each step is skipped when already done.
# `--build-only`: only what building and running the app needs (no test peers, no browser).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_ONLY=0; [ "${1:-}" = "--build-only" ] && BUILD_ONLY=1
APT_PACKAGES=(build-essential pkg-config libssl-dev libgtk-3-dev libwebkit2gtk-4.1-dev
  libayatana-appindicator3-dev librsvg2-dev libxdo-dev libsoup-3.0-dev libjavascriptcoregtk-4.1-dev)
((BUILD_ONLY)) || APT_PACKAGES+=(sqlite3 chromium xvfb xauth dbus-x11 imagemagick python3-gi
  gcc-mingw-w64-x86-64 wine wine64)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null; then
    echo "install-deps: missing Debian packages (run as root): ${missing[*]}" >&2
    exit 1
  fi
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  echo "install-deps: apt-get install ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v cargo >/dev/null || { echo "install-deps: Rust (cargo, via rustup) is required" >&2; exit 1; }
((BUILD_ONLY)) && { echo "install-deps: ok" >&2; exit 0; }
# Finds dependencies a crate declares but never uses (scripts/test.sh runs it).
if ! command -v cargo-machete >/dev/null; then
  echo "install-deps: cargo install cargo-machete" >&2
  cargo install cargo-machete --locked --quiet
fi
# Windows binaries, cross-built with MinGW and run under Wine by the tests (windows-check.sh).
WIN_TARGET=x86_64-pc-windows-gnu
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$WIN_TARGET"; then
  echo "install-deps: rustup target add $WIN_TARGET" >&2
  rustup target add "$WIN_TARGET" >/dev/null
fi
command -v node >/dev/null || { echo "install-deps: node (>= 20) and npm are required" >&2; exit 1; }
command -v python3 >/dev/null || { echo "install-deps: python3 (>= 3.10) is required" >&2; exit 1; }

PEERS=tests/peers
if [ ! -f "$PEERS/node_modules/.installed" ] || [ "$PEERS/package.json" -nt "$PEERS/node_modules/.installed" ]; then
  echo "install-deps: npm peers" >&2
  (cd "$PEERS" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
  touch "$PEERS/node_modules/.installed"
fi
install_venv() { # install_venv DIR REQUIREMENTS
  if [ ! -f "$1/.installed" ] || [ "$2" -nt "$1/.installed" ]; then
    echo "install-deps: python peers from $2" >&2
    python3 -m venv "$1"
    "$1/bin/pip" install -q --disable-pip-version-check -r "$2"
    touch "$1/.installed"
  fi
}
install_venv "$PEERS/.venv" "$PEERS/requirements.txt"
install_venv "$PEERS/.venv-fastmcp" "$PEERS/requirements-fastmcp.txt"
install_venv "$PEERS/.venv-mcp-proxy" "$PEERS/requirements-mcp-proxy.txt"
echo "install-deps: ok" >&2
