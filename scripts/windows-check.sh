#!/usr/bin/env bash
# The Windows part of the test command: cross-builds the proxy and the headless
# `mcp-session-manager` (release, x86_64-pc-windows-gnu, with MinGW) into
# target/x86_64-pc-windows-gnu/release, builds the Wine test harness (tests/windows/*.c) into
# target/x86_64-pc-windows-gnu/wine-harness; with MSM_WINDOWS_LINT=1 it also runs clippy on the
# Windows code paths and tries `cargo check` of the tray app for Windows.
# tests/e2e/test_windows.py runs these binaries under Wine. The harness (the bcryptprimitives
# shim for Wine 8.0, a job-object launcher, a Ctrl-C/Ctrl-Break sender, a tiny stdio MCP
# server) is for tests only and never goes into a package.
# Skips, saying why, when the target or MinGW is missing (scripts/install-deps.sh adds both).
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=x86_64-pc-windows-gnu
CC=x86_64-w64-mingw32-gcc
if ! command -v "$CC" >/dev/null; then
  echo "windows-check: skipped: no MinGW ($CC; Debian package gcc-mingw-w64-x86-64)" >&2
  exit 0
fi
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$TARGET"; then
  echo "windows-check: skipped: rustup target $TARGET is not installed" >&2
  exit 0
fi
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"

start=$SECONDS
echo "== windows: cargo build --release --target $TARGET (proxy, headless manager)" >&2
cargo build --release --target "$TARGET" --no-default-features \
  -p msm-proxy --bin mcp-session-proxy -p mcp-session-manager --bin mcp-session-manager
echo "windows-check: binaries in $((SECONDS - start)) s" >&2

HARNESS="$TARGET_DIR/$TARGET/wine-harness"
mkdir -p "$HARNESS"
build_c() { # build_c OUTPUT SOURCE FLAGS...
  local out="$HARNESS/$1" src="tests/windows/$2"
  shift 2
  if [ ! -f "$out" ] || [ "$src" -nt "$out" ]; then
    "$CC" -O2 -Wall -o "$out" "$src" "$@"
  fi
}
build_c bcryptprimitives.dll bcryptprimitives.c -shared -ladvapi32
build_c job-launcher.exe job-launcher.c -municode
build_c ctrl-event.exe ctrl-event.c -municode
build_c tiny-mcp.exe tiny-mcp.c

# The release build above already compiles every cfg(windows) path of the two binaries. Clippy
# for Windows and the tray app's check are two more cold builds of the dependency tree (about
# 20 minutes on 2 cores), so the test command leaves them to MSM_WINDOWS_LINT=1.
if [ "${MSM_WINDOWS_LINT:-0}" != 1 ]; then
  echo "windows-check: done in $((SECONDS - start)) s (clippy and the tray app's check: MSM_WINDOWS_LINT=1)" >&2
  exit 0
fi

# Clippy sees the cfg(windows) code only when it compiles for Windows.
echo "== windows: cargo clippy --target $TARGET" >&2
cargo clippy --target "$TARGET" \
  -p msm-core -p msm-memory -p msm-host -p msm-proxy -p msm-client-config -p msm-cli -- -D warnings
cargo clippy --target "$TARGET" -p mcp-session-manager --no-default-features -- -D warnings

# The tray app: a check only, and not a failure of the test command when it cannot build.
echo "== windows: cargo check --target $TARGET (tray app)" >&2
if cargo check --target "$TARGET" -p mcp-session-manager --bin mcp-session-manager \
  >"$HARNESS/gui-check.log" 2>&1; then
  echo "windows-check: the tray app checks for $TARGET" >&2
else
  echo "windows-check: the tray app does not check for $TARGET (not a failure); see $HARNESS/gui-check.log:" >&2
  grep -m3 -E '^error' "$HARNESS/gui-check.log" >&2 || tail -3 "$HARNESS/gui-check.log" >&2
fi
echo "windows-check: done in $((SECONDS - start)) s" >&2
