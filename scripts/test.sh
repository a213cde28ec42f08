#!/usr/bin/env bash
# Runs every check and test, as CI does: formatting, clippy, the Rust tests of every crate,
# then the end-to-end tests (pytest) against real binaries and real third-party MCP peers.
# On a fresh Debian/Ubuntu machine as root it first installs what it needs (scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# A one-off build gains nothing from incremental caches, which would double the target dir.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo machete (unused dependencies)" >&2
cargo machete
echo "== cargo clippy" >&2
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo build" >&2
cargo build --workspace --all-targets
echo "== cargo test" >&2
cargo test --workspace
./scripts/windows-check.sh
echo "== end-to-end tests" >&2
MSM_BIN_DIR="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug" \
  tests/peers/.venv/bin/python -m pytest tests/e2e -q -x --durations=10 "$@"
echo "== all tests passed" >&2
