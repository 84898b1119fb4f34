-- wrk script for bench/webhooks.sh: POSTs pre-signed Shopify webhook deliveries.
--
--   BENCH_BODIES=DIR/bodies.lua wrk -t2 -c64 -d15s -s bench/wrk/orders_create.lua http://127.0.0.1:PORT/webhooks
--
-- The bodies and their X-Shopify-Hmac-Sha256 come from bench/gen_webhook_bodies.py (wrk's LuaJIT
-- has no HMAC). The HMAC covers only the body, so every request can carry its own
-- X-Shopify-Webhook-Id: run nonce + thread number + per-thread counter, UUID-shaped, unique per
-- request (a receiver that dedupes on it sees no duplicates). X-Shopify-Event-Id is unique too
-- (one subscription per topic: one delivery per event).
--
-- Environment: BENCH_BODIES (required), BENCH_NONCE (12 hex digits; random when unset),
-- BENCH_COUNT_STATUS=1 counts responses per status code (slower: wrk then hands every response to
-- Lua). done() prints one `WRK_RESULT key=value ...` line that bench/webhooks.sh reads.

local bodies_path = os.getenv("BENCH_BODIES")
if not bodies_path then
  error("BENCH_BODIES must name the bodies.lua written by bench/gen_webhook_bodies.py")
end
local data = dofile(bodies_path)
local bodies = data.bodies
local topic = os.getenv("BENCH_TOPIC") or data.topic

local function random_hex(bytes)
  local urandom = io.open("/dev/urandom", "rb")
  local raw = urandom:read(bytes)
  urandom:close()
  return (raw:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

-- One nonce per run: every Lua state draws one when it loads this file, and setup() (in the main
-- state) hands the main state's to every thread.
local run_nonce = os.getenv("BENCH_NONCE") or random_hex(6)
local nonce

local threads = {}
local next_thread = 0

function setup(thread)
  next_thread = next_thread + 1
  thread:set("tid", next_thread)
  thread:set("nonce_raw", run_nonce)
  table.insert(threads, thread)
end

local counter = 0
local index = 0
local stamp_second = -1
local stamp = ""
local base_headers

function init(args)
  local raw = nonce_raw or run_nonce
  nonce = raw:sub(1, 8) .. "-" .. raw:sub(9, 12)
  tid = tid or 0
  -- Spread the threads over the bodies.
  index = (tid * 17) % #bodies
  base_headers = {
    ["Content-Type"] = "application/json",
    ["X-Shopify-Topic"] = topic,
    ["X-Shopify-Shop-Domain"] = "bench.myshopify.com",
    ["X-Shopify-API-Version"] = "2026-10",
  }
  statuses = {}
end

function request()
  counter = counter + 1
  index = index % #bodies + 1
  local entry = bodies[index]
  local now = os.time()
  if now ~= stamp_second then
    stamp_second = now
    stamp = os.date("!%Y-%m-%dT%H:%M:%S.000Z", now)
  end
  local headers = base_headers
  headers["X-Shopify-Hmac-Sha256"] = entry.hmac
  headers["X-Shopify-Webhook-Id"] = string.format("%s-%04x-8000-%012x", nonce, tid, counter)
  headers["X-Shopify-Event-Id"] = string.format("%s-%04x-e000-%012x", nonce, tid, counter)
  headers["X-Shopify-Triggered-At"] = stamp
  return wrk.format("POST", nil, headers, entry.body)
end

if os.getenv("BENCH_COUNT_STATUS") == "1" then
  function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  local errors = summary.errors
  local parts = {
    string.format("requests=%d", summary.requests),
    string.format("duration_s=%.3f", summary.duration / 1e6),
    string.format("rps=%.1f", summary.requests / (summary.duration / 1e6)),
    string.format("non2xx=%d", errors.status),
    string.format("connect_errors=%d", errors.connect),
    string.format("read_errors=%d", errors.read),
    string.format("write_errors=%d", errors.write),
    string.format("timeouts=%d", errors.timeout),
  }
  for _, p in ipairs({ 50, 75, 90, 99, 99.9 }) do
    table.insert(parts, string.format("p%s_ms=%.3f", (tostring(p):gsub("%.", "_")), latency:percentile(p) / 1000))
  end
  table.insert(parts, string.format("max_ms=%.3f", latency.max / 1000))
  if os.getenv("BENCH_COUNT_STATUS") == "1" then
    local merged = {}
    for _, thread in ipairs(threads) do
      local counts = thread:get("statuses") or {}
      for status, n in pairs(counts) do
        merged[status] = (merged[status] or 0) + n
      end
    end
    local codes = {}
    for status, _ in pairs(merged) do table.insert(codes, status) end
    table.sort(codes)
    local text = {}
    for _, status in ipairs(codes) do table.insert(text, status .. ":" .. merged[status]) end
    table.insert(parts, "statuses=" .. (#text > 0 and table.concat(text, ",") or "none"))
  end
  io.write("WRK_RESULT ", table.concat(parts, " "), "\n")
end
