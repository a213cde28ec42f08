#!/usr/bin/env bash
# Builds the installable tray app (a .deb by default; BUNDLES=appimage,rpm,... for others) with
# the proxy inside it as a Tauri sidecar (`externalBin`), so that the installed
# `mcp-session-manager` finds `mcp-session-proxy` beside itself and `generate-config` points
# Claude Code at it. Prints the bundle paths.
#
# The sidecar is declared here, not in tauri.conf.json: Tauri requires the file
# `binaries/mcp-session-proxy-<target triple>` to exist whenever the app crate is built, and a
# plain `cargo build` of the workspace must not depend on a release build of the proxy.
#
# Windows (an NSIS `-setup.exe`; an `.msi` needs WiX, which runs on Windows only): the Tauri
# CLI bundles for Windows on a Windows machine, with the MSVC target. This script cannot build
# it here (Linux has neither NSIS's Windows toolchain setup nor the MSVC libraries; our MinGW
# cross-build, scripts/windows-check.sh, is for testing). On Windows, with Rust (MSVC) and Node.js:
#   rustup target add x86_64-pc-windows-msvc
#   cargo build --release -p msm-proxy --bin mcp-session-proxy
#   mkdir binaries
#   copy target\release\mcp-session-proxy.exe binaries\mcp-session-proxy-x86_64-pc-windows-msvc.exe
#   npx --yes @tauri-apps/cli@2.11.5 build --bundles nsis --config "{\"bundle\": {\"externalBin\": [\"binaries/mcp-session-proxy\"]}}"
# (or this script from Git Bash: `BUNDLES=nsis ./scripts/bundle.sh`). From Linux, cargo-xwin
# (`cargo install cargo-xwin`, which downloads the MSVC CRT and Windows SDK) and NSIS
# (`apt-get install nsis`) let the same CLI cross-build it:
#   npx --yes @tauri-apps/cli@2.11.5 build --runner cargo-xwin --target x86_64-pc-windows-msvc \
#     --bundles nsis --config '{"bundle": {"externalBin": ["binaries/mcp-session-proxy"]}}'
# with binaries/mcp-session-proxy-x86_64-pc-windows-msvc.exe built first by
# `cargo xwin build --release --target x86_64-pc-windows-msvc -p msm-proxy`. The Wine test
# harness (target/x86_64-pc-windows-gnu/wine-harness, bcryptprimitives.dll among it) is never
# part of a package.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh --build-only
command -v npx >/dev/null || { echo "bundle: node (>= 20) and npm are required for the Tauri CLI" >&2; exit 1; }

triple="$(rustc -vV | sed -n 's/^host: //p')"
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
exe=""; case "$triple" in *windows*) exe=".exe" ;; esac

echo "bundle: building the proxy sidecar for $triple" >&2
cargo build --release -p msm-proxy --bin mcp-session-proxy
mkdir -p binaries
cp "$target_dir/release/mcp-session-proxy$exe" "binaries/mcp-session-proxy-$triple$exe"

# The CLI's minor version follows the `tauri` crate's in Cargo.lock.
npx --yes @tauri-apps/cli@2.11.5 build --bundles "${BUNDLES:-deb}" \
  --config '{"bundle": {"externalBin": ["binaries/mcp-session-proxy"]}}'
find "$target_dir/release/bundle" -maxdepth 2 -type f \( -name '*.deb' -o -name '*.AppImage' -o -name '*.rpm' -o -name '*.dmg' -o -name '*.msi' -o -name '*.exe' \) -newer "binaries/mcp-session-proxy-$triple$exe"
