#!/usr/bin/env bash
# The cloud path under load, against moto (AWS APIs on loopback): `ordernimbus serve --store dynamodb
# --bus eventbridge` stores each delivery in DynamoDB and publishes it with PutEvents, a rule on the
# bus targets an SQS queue (with a dead-letter queue after 5 receives), and WORKERS `ordernimbus
# worker --store dynamodb` processes apply the deliveries to the same table.
#   1. starts moto (scripts/moto.sh installs it on first use), `ordernimbus migrate` creates the
#      table, `cloud_load setup` (app/benches/cloud_load.rs) creates the bus, the queues and the rule
#      and installs the test shop;
#   2. starts serve and the workers;
#   3. `cloud_load run` sends ORDERS signed orders/create deliveries, one per distinct order with
#      known line quantities, plus DUPLICATES (same X-Shopify-Webhook-Id), SAME_EVENT (new webhook
#      id, same X-Shopify-Event-Id) and SAME_VERSION (new webhook id and event id, same order
#      version) as fractions of ORDERS, CONCURRENCY in flight, retrying any non-200 as Shopify does;
#   4. waits until nothing is pending, queued or in flight, then checks that every accepted delivery
#      is stored, each order applied exactly once (one `applied` step over its deliveries; the
#      tenant's units equal to the orders' quantities, in total and per SKU), nothing dead and the
#      dead-letter queue empty; prints deliveries/s accepted by serve and end to end (first send →
#      last consumer outcome), p50/p99 receive latency and the outcome counts.
# Exits non-zero when a check fails. moto's speed is not AWS's: the point is correctness under
# concurrency; the figures are moto's.
#
#   bash bench/cloud_load.sh
#
# Environment: ORDERS=1000 (about 4 minutes on a shared 2-core machine; moto slows down as the
# table grows: 5,000 were not all applied 22 minutes after the first send), CONCURRENCY=32, WORKERS=2, DUPLICATES=0.05,
# SAME_EVENT=0.05, SAME_VERSION=0.05, VISIBILITY_TIMEOUT=30 (s), WAIT_TIMEOUT=1800 (s), SEED=7,
# RELEASE=1 builds
# ordernimbus in release (default: the dev profile, whose dependencies are optimised; moto is the
# bottleneck either way), KEEP=1 keeps the work directory (process logs). CARGO_TARGET_DIR is
# honoured.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

ORDERS="${ORDERS:-1000}"
CONCURRENCY="${CONCURRENCY:-32}"
WORKERS="${WORKERS:-2}"
DUPLICATES="${DUPLICATES:-0.05}"
SAME_EVENT="${SAME_EVENT:-0.05}"
SAME_VERSION="${SAME_VERSION:-0.05}"
VISIBILITY_TIMEOUT="${VISIBILITY_TIMEOUT:-30}"
WAIT_TIMEOUT="${WAIT_TIMEOUT:-1800}"
SEED="${SEED:-7}"
SECRET="load-secret"
SHOP="load.myshopify.com"

work="$(mktemp -d)"
pids=()
MOTO_PID=""
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -n "$MOTO_PID" ]; then
    # moto finishes its requests' threads before it exits on SIGTERM (long polls: up to 20 s).
    kill "$MOTO_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$MOTO_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$MOTO_PID" 2>/dev/null || true
  fi
  if [ -n "${KEEP:-}" ]; then echo "logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

say() { printf '\n== %s\n' "$*"; }

# ---- build -------------------------------------------------------------------------------------
profile_flag=()
profile_dir=debug
if [ -n "${RELEASE:-}" ]; then profile_flag=(--release); profile_dir=release; fi
target_dir="${CARGO_TARGET_DIR:-$root/target}"
say "cargo build --locked ${profile_flag[*]} -p ordernimbus --bin ordernimbus --bench cloud_load"
cargo build --locked "${profile_flag[@]}" -p ordernimbus --bin ordernimbus --bench cloud_load \
  --message-format=json-render-diagnostics >"$work/build.json"
bin="$target_dir/$profile_dir/ordernimbus"
helper="$(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    message = json.loads(line)
    if message.get("reason") == "compiler-artifact" and message["target"]["name"] == "cloud_load" \
            and message.get("executable"):
        print(message["executable"])
' "$work/build.json" | tail -n 1)"
[ -x "$bin" ] && [ -x "$helper" ] || { echo "build produced no ordernimbus or cloud_load binary" >&2; exit 1; }

# ---- moto, table, bus, queues, shop ------------------------------------------------------------
say "moto"
# DynamoDB requests serialized, transactions rolled back item by item: see scripts/moto_server.py.
eval "$(MOTO_SERIALIZE_DYNAMODB=1 scripts/moto.sh)"
export ORDERNIMBUS_STORE=dynamodb
export ORDERNIMBUS_DYNAMODB_TABLE=ordernimbus-load
export ORDERNIMBUS_DATA_DIR="$work/data"
export ORDERNIMBUS_LOG=warn
export ORDERNIMBUS_LOG_FORMAT=text
export SHOPIFY_API_KEY=load-key SHOPIFY_API_SECRET="$SECRET" SHOPIFY_APP_URL=http://127.0.0.1:1
# One key for every process (each would otherwise race to generate one in the data directory).
ORDERNIMBUS_ENCRYPTION_KEY="$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')"
export ORDERNIMBUS_ENCRYPTION_KEY
mkdir -p "$ORDERNIMBUS_DATA_DIR"
"$bin" migrate
eval "$("$helper" setup --shop "$SHOP" --visibility-timeout "$VISIBILITY_TIMEOUT")"

# ---- serve and workers -------------------------------------------------------------------------
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
say "serve on 127.0.0.1:$port (bus $ORDERNIMBUS_EVENT_BUS_NAME), $WORKERS worker(s) on $ORDERNIMBUS_QUEUE_URL"
"$bin" serve --addr "127.0.0.1:$port" --bus eventbridge >"$work/serve.log" 2>&1 &
pids+=($!)
serve_pid=$!
for i in $(seq 1 "$WORKERS"); do
  "$bin" worker >"$work/worker-$i.log" 2>&1 &
  pids+=($!)
done
for _ in $(seq 1 200); do
  if curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null; then break; fi
  if ! kill -0 "$serve_pid" 2>/dev/null; then
    echo "serve exited at start; its log:" >&2
    tail -n 30 "$work/serve.log" >&2
    exit 1
  fi
  sleep 0.1
done

# ---- load, wait, check -------------------------------------------------------------------------
say "load"
status=0
"$helper" run --shop "$SHOP" --url "http://127.0.0.1:$port/webhooks" --secret "$SECRET" \
  --orders "$ORDERS" --concurrency "$CONCURRENCY" --duplicates "$DUPLICATES" \
  --same-event "$SAME_EVENT" --same-version "$SAME_VERSION" --wait-timeout "$WAIT_TIMEOUT" \
  --seed "$SEED" || status=$?
for log in "$work"/serve.log "$work"/worker-*.log; do
  warnings="$(grep -c -E 'WARN|ERROR' "$log" || true)"
  if [ "$warnings" != 0 ]; then
    echo "$(basename "$log"): $warnings warning/error lines, the first:"
    grep -E 'WARN|ERROR' "$log" | head -n 5
  fi
done
for pid in "${pids[@]}"; do
  if ! kill -0 "$pid" 2>/dev/null; then echo "a serve or worker process (pid $pid) died during the run" >&2; status=1; fi
done
exit "$status"
