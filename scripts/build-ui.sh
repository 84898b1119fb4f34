#!/usr/bin/env bash
# Builds the UI's browser bundle (the `hydrate` side of ui-leptos) into the site directory that
# `ordernimbus serve` serves at /pkg: cargo for wasm32, then wasm-bindgen (the version in
# Cargo.lock), then gzip copies served to browsers that accept them. Installs the wasm target and
# wasm-bindgen-cli when missing (~5 min once). Nothing is downloaded when the server runs.
#
#   CARGO_TARGET_DIR       cargo's target directory (default: target)
#   ORDERNIMBUS_SITE_DIR   where the bundle goes (default: $CARGO_TARGET_DIR/site)
#   UI_PROFILE             cargo profile (default: wasm-release: size-optimised, LTO)
#   WASM_OPT               optional path to a wasm-opt from binaryen >= 116 (npm binaryen@132.0.0);
#                          Debian's binaryen 108 breaks hydration, so it is never picked up on its own
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET_DIR="${CARGO_TARGET_DIR:-target}"
SITE_DIR="${ORDERNIMBUS_SITE_DIR:-$TARGET_DIR/site}"
PROFILE="${UI_PROFILE:-wasm-release}"
NAME=ordernimbus_ui
# cargo puts the `dev` profile's output in `debug/`.
OUT_DIR="$PROFILE"
[ "$PROFILE" = dev ] && OUT_DIR=debug

step() { printf '\n==> %s\n' "$*"; }

version="$(awk '$0 == "name = \"wasm-bindgen\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
if [ -z "$version" ]; then
  echo "build-ui: no wasm-bindgen in Cargo.lock" >&2
  exit 1
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  step "rustup target add wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$version" ]; then
  step "cargo install wasm-bindgen-cli $version (once per machine)"
  cargo install wasm-bindgen-cli --version "$version"
fi

step "cargo build ($NAME, wasm32, $PROFILE)"
cargo rustc --locked --lib -p ordernimbus-ui --target wasm32-unknown-unknown \
  --no-default-features --features hydrate --profile "$PROFILE" --crate-type cdylib

step "wasm-bindgen → $SITE_DIR/pkg"
mkdir -p "$SITE_DIR/pkg"
wasm-bindgen "$TARGET_DIR/wasm32-unknown-unknown/$OUT_DIR/$NAME.wasm" --target web --no-typescript \
  --out-dir "$SITE_DIR/pkg" --out-name "$NAME"
if [ -n "${WASM_OPT:-}" ]; then
  step "wasm-opt -Oz"
  "$WASM_OPT" -Oz "$SITE_DIR/pkg/${NAME}_bg.wasm" -o "$SITE_DIR/pkg/${NAME}_bg.wasm"
fi
gzip -9 -k -f "$SITE_DIR/pkg/${NAME}_bg.wasm" "$SITE_DIR/pkg/$NAME.js"

wasm_bytes=$(stat -c %s "$SITE_DIR/pkg/${NAME}_bg.wasm")
gz_bytes=$(( $(stat -c %s "$SITE_DIR/pkg/${NAME}_bg.wasm.gz") + $(stat -c %s "$SITE_DIR/pkg/$NAME.js.gz") ))
echo "build-ui: $SITE_DIR/pkg: wasm $wasm_bytes bytes; wasm + JS gzipped $gz_bytes bytes"
