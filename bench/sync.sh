#!/usr/bin/env bash
# Order-sync benchmark: a synthetic shop of ORDERS orders (default 1,000,000) served by
# shopify-sim on loopback, backfilled by the real Syncer into a fresh SQLite store (release build).
# Prints ingest time, lines/s, orders/s, MB/s, peak RSS, and the download+parse ceiling.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --locked -p ordernimbus-e2e --bench sync -- --orders "${ORDERS:-1000000}"
