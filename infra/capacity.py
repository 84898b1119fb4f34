#!/usr/bin/env python3
"""The arithmetic behind infra/CAPACITY.md.

    python3 infra/capacity.py           # prints the generated part of CAPACITY.md
    python3 infra/capacity.py --check   # fails when CAPACITY.md's generated part differs (lint.sh)

Every input is an assumption stated here and in CAPACITY.md; change one, run the script and paste
its output between the markers in CAPACITY.md. Units per operation follow what `DynamoStore`
(backend/src/store/dynamodb*.rs) writes and reads; prices are us-east-1 on-demand list prices
(see PRICES_AS_OF), no free tier, no discounts.
"""

import math
import sys
from pathlib import Path

DAYS = 30.4  # days in an average month
HOURS = 730  # hours in an average month
SECONDS_PER_MONTH = DAYS * 86400

# --- prices (USD, us-east-1) -----------------------------------------------------------------
PRICES_AS_OF = "November 2024, after DynamoDB's on-demand price cut of 1 November 2024"
WRU = 0.625 / 1e6  # DynamoDB on-demand, per write request unit
RRU = 0.125 / 1e6  # DynamoDB on-demand, per read request unit
DDB_GB = 0.25  # DynamoDB Standard storage, per GB-month
PITR_GB = 0.20  # continuous backups (PITR), per GB-month of table size
EB_EVENT = 1.00 / 1e6  # EventBridge custom event published (per 64 KB chunk)
ARCHIVE_GB = 0.10  # EventBridge archive, per GB archived
ARCHIVE_STORE_GB = 0.023  # EventBridge archive storage, per GB-month
SQS_REQ = 0.40 / 1e6  # SQS standard, per request (per 64 KB chunk)
VCPU_H = 0.04048  # Fargate Linux/x86, per vCPU-hour
GB_H = 0.004445  # Fargate Linux/x86, per GB-hour
ALB_H = 0.0225  # Application Load Balancer, per hour
LCU_H = 0.008  # per LCU-hour
LOGS_GB = 0.50  # CloudWatch Logs ingestion, per GB
ALARMS = 12  # template.yaml's CloudWatch alarms (staging and prod)
ALARM = 0.10  # standard-resolution alarm, per month
SECRET = 0.40  # Secrets Manager, per secret-month

# --- workload per shop (assumptions) -----------------------------------------------------------
ORDERS_PER_SHOP_DAY = 20
LINES_PER_ORDER = 2.5  # all on one day and one location
# Order-topic deliveries per order: orders/create (a new order), orders/paid and orders/fulfilled
# (newer versions whose lines are unchanged), two orders/updated carrying the same updated_at as
# those two (stale). refunds/create and orders/edited are rarer and ignored by the consumer.
NEW_VERSIONS, SAME_LINE_VERSIONS, STALE_VERSIONS = 1, 2, 2
CHANGED_LINE_VERSIONS = 0.1  # of the SAME_LINE_VERSIONS, per order: a refund or edit changes lines
INVENTORY_PER_ORDER = LINES_PER_ORDER  # inventory_levels/update per line sold
PRODUCT_DELIVERIES_PER_SHOP_DAY = 5  # products/update
VARIANTS_PER_PRODUCT = 3
SERIES_PER_SHOP = 200  # SKU x location, one location; all stocked
HISTORY_DAYS = 730  # days of daily sales a refit reads (the whole history: two years)
# Refits: every applied (non-stale) order version marks the tenant stale and the worker refits all
# its series after a 2 s debounce (app/src/wiring.rs FORECAST_DEBOUNCE), but at most once per
# --refit-interval-seconds (default 3600), timed from the stored overview. create and paid usually
# arrive together and coalesce; fulfilled comes hours later. Orders come in TRADING_HOURS a day.
REFITS_PER_ORDER = 2
REFIT_INTERVAL_SECONDS = 3600
TRADING_HOURS = 14
REFITS_PER_SHOP_DAY = min(
    ORDERS_PER_SHOP_DAY * REFITS_PER_ORDER, TRADING_HOURS * 3600 // REFIT_INTERVAL_SECONDS
)
DASHBOARD_VIEWS_PER_SHOP_DAY = 3  # each: the overview page and one 25-row products page
PRODUCTS_PAGE_ROWS = 25
API_CALLS_PER_VIEW = 6  # each authenticated (session token -> install -> tenant)
PEAK_TO_AVERAGE = 10  # flash sales, BFCM: for sizing; costs use the average
MONTHS_OF_HISTORY = 12  # storage is shown after a year of operation
# --delivery-retention-days (default 90): a final delivery's items expire (TTL) that many days
# after its receipt; TTL deletes cost no write units.
DELIVERY_RETENTION_DAYS = 90
LEVER_LOG_DAYS = 30  # a shorter delivery-log retention for the levers table

# --- item sizes in KB (assumptions; DynamoDB adds 100 bytes per item and per index entry) -------
OVERHEAD_KB = 0.1
BODY_KB = {"order": 8.0, "inventory": 0.5, "product": 6.0}  # webhook payloads
STATE_KB = 1.2  # WH#/STATE: identity, headers JSON, 2-3 history steps, index keys
EVENT_KB = 0.2  # EVENT#... dedupe record
SMALL_KB = 0.5  # order item, line, cell, series registry item, totals, stock, pointers, tenant
REGISTRY_ITEM_KB = 0.45  # SERIES#: totals, days, product name, forecast time, 28-day figures
CELL_KB = 0.12  # D#{location}␁{date}
CELLS_PER_SERIES = HISTORY_DAYS * ORDERS_PER_SHOP_DAY * LINES_PER_ORDER / SERIES_PER_SHOP
TOTAL_DAY_KB = 0.1  # A#{date}
STOCK_KB = 0.25
FORECAST_KB = 8.2  # F#{location}: 365 days x 5 f32 (7.3 KB) + metadata JSON
OVERVIEW_KB = 40  # OVERVIEW: JSON of 365 forecast points and 91 days of history
OVERVIEW_HISTORY_DAYS = 91
STATE_ITEM_READ_KB = 4  # the newest delivery: a GSI2 Query with Limit 1 reads one state item
OUTBOX_SHARDS = 8  # GSI1 status shards (deliveries.rs STATUS_SHARDS)
PARTITION_WCU = 1000  # DynamoDB's write limit per partition (per item, for one key)
LOG_KB_PER_DELIVERY = 1.0
EVENT_PAYLOAD_KB = {"order": 9, "inventory": 1, "product": 7}  # EventBridge/SQS: one 64 KB chunk

# --- throughput assumptions for compute ---------------------------------------------------------
SERIES_FITS_PER_CORE_SECOND = 1000  # bench/forecast.sh
WORKER_VCPU = 0.5


def write_units(kb):
    """WRU of one standard write of an item of `kb` (1 KB each, rounded up)."""
    return math.ceil(kb)


def strong_reads(kb):
    """RRU of one strongly consistent read of `kb` (4 KB each, rounded up)."""
    return math.ceil(kb / 4)


def eventual_reads(kb):
    return 0.5 * math.ceil(kb / 4)


def operations():
    """Read and write units of each operation, from what DynamoStore does. Name -> (RRU, WRU, how)."""
    lines = LINES_PER_ORDER
    state_w = write_units(STATE_KB)
    ops = {}
    for kind, body in BODY_KB.items():
        # put_delivery: GetItem of the state (consistent); the EVENT# claim (conditional put, TTL);
        # the body chunk; the state item, written to the table, GSI1 (by status) and GSI2 (by
        # shop): all attributes are projected into both. Sequence numbers come from the clock and
        # a per-process tag: the SEQUENCE counter is written once per process, not per delivery.
        ops[f"store a delivery ({kind}, {body:g} KB body)"] = (
            1,
            write_units(EVENT_KB) + write_units(body + OVERHEAD_KB) + 3 * state_w,
            "state Get; EVENT# put; BODY# put; STATE put + GSI1 + GSI2",
        )
    # The outbox: a round queries the 8 pending shards of GSI1 (eventually consistent, at least
    # 0.5 RRU each), reads the states and bodies (consistent), publishes and records `published`:
    # the state changes on the table, its GSI1 key moves (delete + put) and GSI2 is rewritten.
    ops["publish a delivery (outbox round, read as an order)"] = (
        OUTBOX_SHARDS * 0.5 + 1 + strong_reads(BODY_KB["order"]),
        4 * state_w,
        "8 GSI1 Queries; state + body BatchGet; STATE update, GSI1 delete + put, GSI2",
    )
    # Once a delivery is final, one transaction sets its TTL (`expires_at`) on the state item
    # (2 WRU per KB in a transaction; GSI1 and GSI2 rewritten, all attributes being projected) and
    # on its body chunk (read as an order). Later outcomes find it set and write nothing more.
    ops["set the TTL of a final delivery (as an order)"] = (
        0,
        2 * state_w + 2 * state_w + 2 * write_units(BODY_KB["order"] + OVERHEAD_KB),
        "transaction: STATE update + BODY# update; GSI1 + GSI2",
    )
    # The worker records each outcome on the state item: table + GSI1 + GSI2.
    ops["record a consumer outcome"] = (0, 3 * state_w, "STATE update + GSI1 + GSI2")
    tenant_of = 2  # install by shop, tenant item
    read_order = tenant_of + 1 + 1  # apply_order: tenant item, order item
    # A new order (or lines that change): one transaction holding the order claim, each line and
    # the four daily aggregates a line adds to (cell D#, series SERIES#, A# and L# of the day; the
    # two day totals are shared by the order's lines), 2 WRU per item; then the first/last-day
    # widening: two conditional updates on the tenant and on each series (1 WRU even when false).
    tx_items = 1 + lines + lines + lines + 2
    ops["apply a new order version that changes lines"] = (
        read_order + lines,
        2 * tx_items * write_units(SMALL_KB) + (2 + 2 * lines) * write_units(SMALL_KB),
        f"claim + {lines:g} lines + {3 * lines + 2:g} aggregates in a transaction; 7 widenings",
    )
    # A newer version with the same lines: every line is put again and its series item updated
    # (the product name), no day aggregate and no widening.
    ops["apply a newer version with unchanged lines"] = (
        read_order + lines,
        2 * (1 + 2 * lines) * write_units(SMALL_KB),
        "claim + lines + series items in a transaction",
    )
    ops["skip a stale order version"] = (read_order, 0, "install, tenant, order item")
    # inventory_levels/update: tenant, ITEM# pointer (Limit 1), the SKU's stock, tenant, put.
    ops["apply an inventory level"] = (
        tenant_of + 1 + 1 + 1,
        write_units(STOCK_KB),
        "install, tenant, ITEM# pointer, the SKU's stock, tenant; STOCK# put",
    )
    ops["apply a product update"] = (
        tenant_of + 1 + 1,
        2 * VARIANTS_PER_PRODUCT * write_units(SMALL_KB) + write_units(SMALL_KB),
        "old pointers deleted, new ones and the product item put",
    )
    # A refit: sales_history reads the registry and every SKU's cells (whole history), then
    # put_forecasts reads the registry again and writes each forecast with its registry stamp in
    # a transaction; put_series_stats updates every registry item; the overview is put in a
    # transaction with a check of the tenant item.
    series = SERIES_PER_SHOP
    registry = strong_reads(series * REGISTRY_ITEM_KB)
    ops["refit a shop (all series)"] = (
        registry
        + series * strong_reads(CELLS_PER_SERIES * CELL_KB)
        + registry
        + 1
        + 1
        + strong_reads(OVERVIEW_HISTORY_DAYS * TOTAL_DAY_KB),
        series * 2 * (write_units(FORECAST_KB) + write_units(REGISTRY_ITEM_KB))
        + series * write_units(REGISTRY_ITEM_KB)
        + 2 * (write_units(SMALL_KB) + write_units(OVERVIEW_KB)),
        f"{series} forecasts ({FORECAST_KB:g} KB) + stamps in transactions, {series} figures, overview",
    )
    # A dashboard view: the overview page (overview item; SKUs at risk = the products query of 300
    # candidates, then forecasts_of and stock_of of every stocked row; the last upload; the last
    # delivery, a GSI2 Query with Limit 1; the sync status) and one products page.
    stock_query = strong_reads(series * STOCK_KB)
    products = 1 + registry + stock_query
    at_risk = products + 1 + series * strong_reads(FORECAST_KB) + 1 + series
    page = (
        products
        + 1
        + PRODUCTS_PAGE_ROWS * strong_reads(FORECAST_KB)
        + 1
        + PRODUCTS_PAGE_ROWS
    )
    ops["show the dashboard (overview + products page)"] = (
        API_CALLS_PER_VIEW * 2
        + 1
        + strong_reads(OVERVIEW_KB)
        + at_risk
        + 1
        + eventual_reads(STATE_ITEM_READ_KB)
        + 1
        + page,
        0,
        f"at-risk list reads {series} forecasts; the last delivery reads one GSI2 item",
    )
    return ops


def per_shop_day(refits_per_shop_day=REFITS_PER_SHOP_DAY):
    ops = operations()
    order_deliveries = ORDERS_PER_SHOP_DAY * (NEW_VERSIONS + SAME_LINE_VERSIONS + STALE_VERSIONS)
    inventory = ORDERS_PER_SHOP_DAY * INVENTORY_PER_ORDER
    products = PRODUCT_DELIVERIES_PER_SHOP_DAY
    deliveries = order_deliveries + inventory + products
    counts = {
        "store a delivery (order, 8 KB body)": order_deliveries,
        "store a delivery (inventory, 0.5 KB body)": inventory,
        "store a delivery (product, 6 KB body)": products,
        "publish a delivery (outbox round, read as an order)": deliveries,
        "set the TTL of a final delivery (as an order)": deliveries,
        "record a consumer outcome": deliveries,
        "apply a new order version that changes lines": ORDERS_PER_SHOP_DAY
        * (NEW_VERSIONS + CHANGED_LINE_VERSIONS),
        "apply a newer version with unchanged lines": ORDERS_PER_SHOP_DAY
        * (SAME_LINE_VERSIONS - CHANGED_LINE_VERSIONS),
        "skip a stale order version": ORDERS_PER_SHOP_DAY * STALE_VERSIONS,
        "apply an inventory level": inventory,
        "apply a product update": products,
        "refit a shop (all series)": refits_per_shop_day,
        "show the dashboard (overview + products page)": DASHBOARD_VIEWS_PER_SHOP_DAY,
    }
    assert counts.keys() == ops.keys()
    rows = []
    for name, (rru, wru, how) in ops.items():
        count = counts[name]
        rows.append((name, count, rru, wru, count * rru, count * wru, how))
    return deliveries, rows


def storage_kb_per_shop(log_days=DELIVERY_RETENTION_DAYS):
    """Table size of one shop after MONTHS_OF_HISTORY (item + index copies): the delivery log of
    `log_days` (None: every day, kept forever), and the rest."""
    deliveries_per_day = {
        "order": ORDERS_PER_SHOP_DAY * (NEW_VERSIONS + SAME_LINE_VERSIONS + STALE_VERSIONS),
        "inventory": ORDERS_PER_SHOP_DAY * INVENTORY_PER_ORDER,
        "product": PRODUCT_DELIVERIES_PER_SHOP_DAY,
    }
    state = 3 * (STATE_KB + OVERHEAD_KB)  # table, GSI1, GSI2
    days = MONTHS_OF_HISTORY * DAYS
    log = sum(n * (BODY_KB[kind] + OVERHEAD_KB + state) for kind, n in deliveries_per_day.items())
    log *= days if log_days is None else min(days, log_days)
    dedupe = sum(deliveries_per_day.values()) * 14 * (EVENT_KB + OVERHEAD_KB)
    sales = days * ORDERS_PER_SHOP_DAY * (
        (SMALL_KB + OVERHEAD_KB) * (1 + LINES_PER_ORDER) + (CELL_KB + OVERHEAD_KB) * LINES_PER_ORDER
    )
    fixed = SERIES_PER_SHOP * (FORECAST_KB + REGISTRY_ITEM_KB + STOCK_KB + 3 * OVERHEAD_KB) + OVERVIEW_KB
    return log, dedupe + sales + fixed


def fargate(tasks):
    return sum(n * (cpu * VCPU_H + mem * GB_H) * HOURS for n, cpu, mem in tasks)


def plan(
    shops,
    serve_tasks,
    base_workers,
    lcu,
    refits_per_shop_day=REFITS_PER_SHOP_DAY,
    log_days=DELIVERY_RETENTION_DAYS,
):
    deliveries, rows = per_shop_day(refits_per_shop_day)
    rru = sum(row[4] for row in rows)
    wru = sum(row[5] for row in rows)
    refits = refits_per_shop_day * shops
    refit_vcpu = refits * SERIES_PER_SHOP / SERIES_FITS_PER_CORE_SECOND / 86400
    # Refits run in the orders workers; at 70 % utilisation.
    refit_workers = math.ceil(refit_vcpu / WORKER_VCPU / 0.7)
    orders_workers, catalogue_workers, lifecycle_workers = base_workers
    workers = [
        (orders_workers + refit_workers, WORKER_VCPU, 1),
        (catalogue_workers, WORKER_VCPU, 1),
        (lifecycle_workers, WORKER_VCPU, 1),
    ]
    tasks = [(serve_tasks, 1, 2)] + workers
    month_deliveries = deliveries * shops * DAYS
    avg_rate = deliveries * shops / 86400
    # The idle outbox polls once a second per serve task (8 shards, 0.5 RRU each).
    idle_rru = serve_tasks * OUTBOX_SHARDS * 0.5 * SECONDS_PER_MONTH
    month_rru = rru * shops * DAYS + idle_rru
    month_wru = wru * shops * DAYS
    log_kb, other_kb = storage_kb_per_shop(log_days)
    storage_gb = (log_kb + other_kb) * shops / 1e6
    per_day = {
        "order": ORDERS_PER_SHOP_DAY * (NEW_VERSIONS + SAME_LINE_VERSIONS + STALE_VERSIONS),
        "inventory": ORDERS_PER_SHOP_DAY * INVENTORY_PER_ORDER,
        "product": PRODUCT_DELIVERIES_PER_SHOP_DAY,
    }
    archive_gb = sum(n * EVENT_PAYLOAD_KB[kind] for kind, n in per_day.items()) * shops * DAYS / 1e6
    # SQS: EventBridge's send and the worker's delete per message, receives shared by a batch's
    # messages, and three empty long polls a minute per idle worker task.
    receive_share = 0.5 if avg_rate < 50 else 0.15
    worker_tasks = sum(n for n, _, _ in workers)
    sqs_requests = month_deliveries * (2 + receive_share) + worker_tasks * 3 * 60 * 24 * DAYS
    costs = {
        "DynamoDB writes": month_wru * WRU,
        "DynamoDB reads": month_rru * RRU,
        f"DynamoDB storage + PITR (month {MONTHS_OF_HISTORY})": storage_gb * (DDB_GB + PITR_GB),
        "EventBridge events": month_deliveries * EB_EVENT,
        "EventBridge archive (30 days)": archive_gb * (ARCHIVE_GB + ARCHIVE_STORE_GB),
        "SQS requests": sqs_requests * SQS_REQ,
        "Fargate": fargate(tasks),
        "Load balancer": (ALB_H + lcu * LCU_H) * HOURS,
        "CloudWatch Logs (~1 KB per delivery)": month_deliveries * LOG_KB_PER_DELIVERY / 1e6 * LOGS_GB,
        "Alarms, secrets": ALARMS * ALARM + 2 * SECRET,
    }
    peak = avg_rate * PEAK_TO_AVERAGE
    state_w = write_units(STATE_KB)
    return {
        "shops": shops,
        "deliveries/day": deliveries * shops,
        "rate": avg_rate,
        "peak": peak,
        "wru": month_wru,
        "rru": month_rru,
        "events": month_deliveries,
        "sqs": sqs_requests,
        "storage_gb": storage_gb,
        "log_share": log_kb / (log_kb + other_kb),
        "refits/day": refits,
        "refit_vcpu": refit_vcpu,
        "tasks": tasks,
        "costs": costs,
        "total": sum(costs.values()),
        # Hot keys at the peak: each GSI1 pending shard takes a put and a delete per delivery,
        # each published shard a put and the consumer's update, all of STATE_KB.
        "pending_shard_wcu": peak * 2 * state_w / OUTBOX_SHARDS,
        "published_shard_wcu": peak * 2 * state_w / OUTBOX_SHARDS,
    }


def money(value):
    return f"${value:,.0f}"


def millions(value):
    if value >= 1e9:
        return f"{value / 1e9:,.2f} B"
    return f"{value / 1e6:,.1f} M"


def render():
    out = []
    deliveries, rows = per_shop_day()
    out.append("**DynamoDB units per operation** (from the code; sizes and counts as assumed above).")
    out.append("")
    out.append("| Operation | RRU | WRU | per shop-day | RRU/shop-day | WRU/shop-day | What it touches |")
    out.append("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for name, n, rru, wru, day_rru, day_wru, how in rows:
        out.append(f"| {name} | {rru:g} | {wru:g} | {n:g} | {day_rru:,.0f} | {day_wru:,.0f} | {how} |")
    total_rru = sum(row[4] for row in rows)
    total_wru = sum(row[5] for row in rows)
    out.append(f"| **per shop per day** | | | {deliveries:g} deliveries | **{total_rru:,.0f}** | **{total_wru:,.0f}** | |")
    refit_wru = next(row[5] for row in rows if row[0].startswith("refit"))
    delivery_wru = sum(row[5] for row in rows if "delivery" in row[0] or "outcome" in row[0])
    out.append("")
    out.append(
        f"Refits are {refit_wru / total_wru:.0%} of the writes and the delivery log "
        f"(store, publish, TTL, record) {delivery_wru / total_wru:.0%}."
    )
    out.append("")
    small = plan(1_000, 2, (2, 1, 1), 1)
    large = plan(100_000, 6, (6, 2, 1), 7.5)
    plans = [small, large]
    out.append("**Load** (average day; peak = 10× the average rate)")
    out.append("")
    out.append("| | 1,000 shops | 100,000 shops |")
    out.append("| --- | ---: | ---: |")

    def row(label, render_one):
        out.append(f"| {label} | " + " | ".join(render_one(p) for p in plans) + " |")

    row("orders per day", lambda p: f"{p['shops'] * ORDERS_PER_SHOP_DAY:,}")
    row("deliveries per day", lambda p: f"{p['deliveries/day']:,.0f}")
    row("deliveries per second, average / peak", lambda p: f"{p['rate']:,.1f} / {p['peak']:,.0f}")
    row("refits per day (all series of a shop)", lambda p: f"{p['refits/day']:,.0f}")
    row(
        "DynamoDB WRU per month (average per second)",
        lambda p: f"{millions(p['wru'])} ({p['wru'] / SECONDS_PER_MONTH:,.0f}/s)",
    )
    row(
        "DynamoDB RRU per month (average per second)",
        lambda p: f"{millions(p['rru'])} ({p['rru'] / SECONDS_PER_MONTH:,.0f}/s)",
    )
    row("EventBridge events published per month", lambda p: millions(p["events"]))
    row("SQS requests per month", lambda p: millions(p["sqs"]))
    row(
        f"table size after {MONTHS_OF_HISTORY} months (delivery log share)",
        lambda p: f"{p['storage_gb']:,.0f} GB ({p['log_share']:.0%})",
    )
    out.append("")
    out.append("**Hot keys at the peak** (DynamoDB serves at most 1,000 WCU/s per partition)")
    out.append("")
    out.append("| | 1,000 shops | 100,000 shops |")
    out.append("| --- | ---: | ---: |")
    row("each `GSI1` `DST#pending#{n}` shard: WCU/s", lambda p: f"{p['pending_shard_wcu']:,.0f}")
    row("each `GSI1` `DST#published#{n}` shard: WCU/s", lambda p: f"{p['published_shard_wcu']:,.0f}")
    out.append("")
    out.append("**Compute** (1 vCPU / 2 GB serve tasks, 0.5 vCPU / 1 GB workers)")
    out.append("")
    out.append("| | 1,000 shops | 100,000 shops |")
    out.append("| --- | ---: | ---: |")
    row("serve tasks", lambda p: f"{p['tasks'][0][0]}")
    row("refit CPU (vCPU, average)", lambda p: f"{p['refit_vcpu']:,.2f}")
    row("worker-orders tasks (incl. refits at 70 %)", lambda p: f"{p['tasks'][1][0]}")
    row("worker-catalogue, worker-lifecycle tasks", lambda p: f"{p['tasks'][2][0]}, {p['tasks'][3][0]}")
    out.append("")
    out.append(f"**Monthly cost** (prod, on demand, us-east-1, prices of {PRICES_AS_OF})")
    out.append("")
    out.append("| Item | 1,000 shops | 100,000 shops |")
    out.append("| --- | ---: | ---: |")
    for key in small["costs"]:
        out.append(f"| {key} | {money(small['costs'][key])} | {money(large['costs'][key])} |")
    row_total = [money(p["total"]) for p in plans]
    out.append(f"| **Total** | **≈ {row_total[0]}** | **≈ {row_total[1]}** |")
    out.append(
        "| per shop per month | "
        + " | ".join(f"${p['total'] / p['shops']:,.2f}" for p in plans)
        + " |"
    )
    out.append("")
    out.append("**Levers** (monthly total; each row adds its change to the rows above it)")
    out.append("")
    out.append("| | 1,000 shops | 100,000 shops |")
    out.append("| --- | ---: | ---: |")
    once = plan(1_000, 2, (2, 1, 1), 1, refits_per_shop_day=1)
    once_large = plan(100_000, 6, (6, 2, 1), 7.5, refits_per_shop_day=1)
    kept = plan(1_000, 2, (2, 1, 1), 1, refits_per_shop_day=1, log_days=LEVER_LOG_DAYS)
    kept_large = plan(100_000, 6, (6, 2, 1), 7.5, refits_per_shop_day=1, log_days=LEVER_LOG_DAYS)
    out.append(
        f"| as the code is (deliveries kept {DELIVERY_RETENTION_DAYS} days) | "
        f"{money(small['total'])} | {money(large['total'])} |"
    )
    out.append(
        f"| one refit per shop per day (`--refit-interval-seconds 86400`) | {money(once['total'])} | "
        f"{money(once_large['total'])} |"
    )
    out.append(
        f"| and `--delivery-retention-days {LEVER_LOG_DAYS}` | {money(kept['total'])} | "
        f"{money(kept_large['total'])} |"
    )
    return "\n".join(out) + "\n"


BEGIN = "<!-- capacity.py: generated, do not edit by hand -->\n"
END = "<!-- /capacity.py -->\n"


def main():
    generated = render()
    if sys.argv[1:] == ["--check"]:
        doc = (Path(__file__).parent / "CAPACITY.md").read_text()
        try:
            start = doc.index(BEGIN) + len(BEGIN)
            end = doc.index(END, start)
        except ValueError:
            sys.exit("infra/CAPACITY.md has no generated part between the capacity.py markers")
        if doc[start:end] != generated:
            import difflib

            sys.stdout.writelines(
                difflib.unified_diff(
                    doc[start:end].splitlines(keepends=True),
                    generated.splitlines(keepends=True),
                    "CAPACITY.md",
                    "capacity.py",
                )
            )
            sys.exit("infra/CAPACITY.md differs from `python3 infra/capacity.py`: paste its output")
        print("infra/CAPACITY.md matches infra/capacity.py")
        return
    if sys.argv[1:]:
        sys.exit("usage: capacity.py [--check]")
    sys.stdout.write(generated)


if __name__ == "__main__":
    main()
