#!/usr/bin/env bash
# Cross-checks the Windows code paths (console Ctrl-C/Ctrl-Break handling, `.cmd`/`.exe`
# resolution of npx/uvx, new process groups for children, %APPDATA% paths) from Linux:
# `cargo clippy` of the libraries and the headless binaries for x86_64-pc-windows-gnu.
# Not part of scripts/test.sh: it downloads the Windows standard library and needs MinGW's C
# compiler for the bundled SQLite. The tests themselves are Unix-only (they send signals).
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add x86_64-pc-windows-gnu
if ! command -v x86_64-w64-mingw32-gcc >/dev/null; then
  apt-get install -y -q gcc-mingw-w64-x86-64
fi
cargo clippy --target x86_64-pc-windows-gnu \
  -p msm-core -p msm-memory -p msm-host -p msm-proxy -p msm-client-config -p msm-cli \
  -- -D warnings
cargo clippy --target x86_64-pc-windows-gnu -p mcp-session-manager --no-default-features -- -D warnings
echo "windows check: ok" >&2
