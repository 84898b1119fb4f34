#!/usr/bin/env bash
# Installs what is missing and runs every check and test: formatting, clippy (warnings are errors),
# cfn-lint on the AWS template, unit and integration tests (the AWS adapters' against moto, which this starts and stops).
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

step "cfn-lint infra/template.yaml"
# Installs cfn-lint (pinned, PyPI) into a cache venv the first time; fails on errors and warnings.
infra/lint.sh

step "moto (AWS APIs on loopback for the DynamoDB/EventBridge/SQS tests)"
# Starts moto on a free port (installing it into a cache venv the first time) and exports
# AWS_ENDPOINT_URL, AWS_REGION=us-east-1, AWS_ACCESS_KEY_ID=test, AWS_SECRET_ACCESS_KEY=test.
eval "$(scripts/moto.sh)"
trap 'kill "$MOTO_PID" 2>/dev/null || true' EXIT

step "cargo test"
cargo test --locked --workspace
