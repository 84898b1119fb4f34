#!/usr/bin/env bash
# Installs what is missing and runs every check and test: formatting, clippy (warnings are errors;
# the UI's browser side too), cfn-lint on the AWS template, unit and integration tests (the AWS
# adapters' against moto, which this starts and stops; the UI's in headless Chromium, which this
# installs with apt-get if missing, after building the UI's wasm bundle).
# CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

# Incremental compilation only pays off on rebuilds of edited code; on a clean clone it doubles the
# target directory's size for nothing.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

step() { printf '\n==> %s\n' "$*"; }

step "toolchain"
if ! command -v cargo >/dev/null; then
  echo "cargo is missing: install Rust 1.95 with rustup (https://rustup.rs) and run this again" >&2
  exit 1
fi
for component in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^${component}"; then
    rustup component add "$component"
  fi
done
cargo --version

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy -D warnings"
cargo clippy --locked --workspace --all-targets -- -D warnings
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi
cargo clippy --locked -p ordernimbus-ui --lib --target wasm32-unknown-unknown \
  --no-default-features --features hydrate -- -D warnings

step "UI bundle (wasm)"
scripts/build-ui.sh

step "chromium and chromedriver (browser tests)"
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if [ "$(id -u)" -eq 0 ]; then apt_get="apt-get"; else apt_get="sudo apt-get"; fi
  $apt_get update
  DEBIAN_FRONTEND=noninteractive $apt_get install -y chromium chromium-driver
fi
chromium --version

step "cfn-lint infra/template.yaml"
# Installs cfn-lint (pinned, PyPI) into a cache venv the first time; fails on errors and warnings.
infra/lint.sh

step "moto (AWS APIs on loopback for the DynamoDB/EventBridge/SQS tests)"
# Starts moto on a free port (installing it into a cache venv the first time) and exports
# AWS_ENDPOINT_URL, AWS_REGION=us-east-1, AWS_ACCESS_KEY_ID=test, AWS_SECRET_ACCESS_KEY=test.
# Serialized DynamoDB (scripts/moto_server.py): plain moto lets two clients pass the same
# condition, which DynamoDB never does, and the suite checks concurrent claims and sign-in links.
eval "$(MOTO_SERIALIZE_DYNAMODB=1 scripts/moto.sh)"
trap 'kill "$MOTO_PID" 2>/dev/null || true' EXIT

step "cargo test"
cargo test --locked --workspace

step "browser tests (headless Chromium)"
cargo test --locked -p ordernimbus --test browser -- --ignored
