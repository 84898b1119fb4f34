#!/usr/bin/env bash
# Installs what is missing, builds OrderNimbus and runs it with a demo tenant loaded from bundled real
# retail sales. Open the printed URL; use the printed API key with the JSON API.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null; then
  echo "cargo is missing: install Rust 1.95 with rustup (https://rustup.rs) and run this again" >&2
  exit 1
fi
# The UI's browser bundle (wasm), into target/site (installs the wasm target and wasm-bindgen-cli
# the first time).
scripts/build-ui.sh
export ORDERNIMBUS_SITE_DIR="${ORDERNIMBUS_SITE_DIR:-${CARGO_TARGET_DIR:-target}/site}"
ADDR="${ORDERNIMBUS_ADDR:-127.0.0.1:8080}"
DATA_DIR="${ORDERNIMBUS_DATA_DIR:-./data/demo}"
exec cargo run --locked --release -p ordernimbus -- --data-dir "$DATA_DIR" serve --addr "$ADDR" --demo
