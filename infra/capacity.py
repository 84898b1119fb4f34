#!/usr/bin/env python3
"""The arithmetic behind infra/CAPACITY.md: `python3 infra/capacity.py` prints its tables.

Every input is an assumption stated in CAPACITY.md; change one here and run it again.
Prices: AWS's published us-east-1 on-demand list prices as we read them (no free tier, no
discounts); check https://aws.amazon.com/pricing/ before relying on them.
"""

DAYS = 30.4  # days in an average month
HOURS = 730  # hours in an average month

# --- prices (USD, us-east-1, assumptions) ---------------------------------------------------
WRU = 0.625 / 1e6  # DynamoDB on-demand, per write request unit
RRU = 0.125 / 1e6  # DynamoDB on-demand, per read request unit
DDB_GB = 0.25  # DynamoDB Standard storage, per GB-month
PITR_GB = 0.20  # continuous backups (PITR), per GB-month
EB_EVENT = 1.00 / 1e6  # EventBridge custom event published (per 64 KB chunk)
ARCHIVE_GB = 0.10  # EventBridge archive, per GB archived
ARCHIVE_STORE_GB = 0.023  # EventBridge archive storage, per GB-month
SQS_REQ = 0.40 / 1e6  # SQS standard, per request (per 64 KB chunk)
VCPU_H = 0.04048  # Fargate Linux/x86, per vCPU-hour
GB_H = 0.004445  # Fargate Linux/x86, per GB-hour
ALB_H = 0.0225  # Application Load Balancer, per hour
LCU_H = 0.008  # per LCU-hour
LOGS_GB = 0.50  # CloudWatch Logs ingestion, per GB
ALARM = 0.10  # standard-resolution alarm, per month
SECRET = 0.40  # Secrets Manager, per secret-month

# --- workload (assumptions) -----------------------------------------------------------------
ORDERS_PER_SHOP_DAY = 20
LINES_PER_ORDER = 2.5
ORDER_TOPIC_DELIVERIES_PER_ORDER = 5  # create, paid, fulfilled, ~2 updated
INVENTORY_DELIVERIES_PER_ORDER = LINES_PER_ORDER  # inventory_levels/update per line sold
PRODUCT_DELIVERIES_PER_SHOP_DAY = 5
SERIES_PER_SHOP = 200  # active SKU x location series
REFRESHES_PER_SHOP_DAY = 1
DASHBOARD_VIEWS_PER_SHOP_DAY = 3
PAYLOAD_KB = 4  # body + headers, one EventBridge/SQS 64 KB chunk
LOG_KB_PER_DELIVERY = 1.0

# --- DynamoDB units per operation (assumptions about the DynamoStore, see CAPACITY.md) ------
SERVE_WRU_PER_DELIVERY = 3 + 3 * 1 + 2 * 1  # body item, 3 status writes, 2 sparse-index writes
WORKER_DEDUPE_WRU = 1
ORDER_APPLY_WRU = (2 * (2 + LINES_PER_ORDER + 1) + 4 * 2) / 5  # 1 in 5 changes sales (transaction)
ORDER_APPLY_RRU = 1
INVENTORY_WRU, INVENTORY_RRU = 1, 1
PRODUCT_WRU = 2
FORECAST_WRU_PER_SERIES = 8  # 365 days x 5 f32 = 7.3 KB
REFIT_RRU = 250  # reading a shop's history (200 series x 2 years) eventually consistent
DASHBOARD_RRU_PER_VIEW = 70  # forecast + history queries and session-token lookups


def per_shop_day():
    order_deliveries = ORDERS_PER_SHOP_DAY * ORDER_TOPIC_DELIVERIES_PER_ORDER
    inventory_deliveries = ORDERS_PER_SHOP_DAY * INVENTORY_DELIVERIES_PER_ORDER
    deliveries = order_deliveries + inventory_deliveries + PRODUCT_DELIVERIES_PER_SHOP_DAY
    wru = (
        deliveries * (SERVE_WRU_PER_DELIVERY + WORKER_DEDUPE_WRU)
        + order_deliveries * ORDER_APPLY_WRU
        + inventory_deliveries * INVENTORY_WRU
        + PRODUCT_DELIVERIES_PER_SHOP_DAY * PRODUCT_WRU
        + REFRESHES_PER_SHOP_DAY * SERIES_PER_SHOP * FORECAST_WRU_PER_SERIES
    )
    rru = (
        order_deliveries * ORDER_APPLY_RRU
        + inventory_deliveries * INVENTORY_RRU
        + REFRESHES_PER_SHOP_DAY * REFIT_RRU
        + DASHBOARD_VIEWS_PER_SHOP_DAY * DASHBOARD_RRU_PER_VIEW
    )
    return deliveries, wru, rru


def fargate(tasks):
    return sum(n * (cpu * VCPU_H + mem * GB_H) * HOURS for n, cpu, mem in tasks)


def plan(shops, tasks, lcu, storage_gb_per_shop):
    deliveries, wru, rru = per_shop_day()
    month_deliveries = deliveries * shops * DAYS
    month_wru, month_rru = wru * shops * DAYS, rru * shops * DAYS
    avg_rate = deliveries * shops / 86400
    storage_gb = storage_gb_per_shop * shops
    archive_gb = month_deliveries * PAYLOAD_KB / 1e6
    # SQS: EventBridge's send + the worker's delete per message, receives amortised by batching,
    # plus idle long polls (3 a minute per worker task).
    receive_share = 0.5 if avg_rate < 50 else 0.15
    worker_tasks = sum(n for n, _, _ in tasks[1:])
    sqs_requests = month_deliveries * (2 + receive_share) + worker_tasks * 3 * 60 * 24 * DAYS
    rows = {
        "DynamoDB writes": month_wru * WRU,
        "DynamoDB reads": month_rru * RRU,
        "DynamoDB storage + PITR": storage_gb * (DDB_GB + PITR_GB),
        "EventBridge events": month_deliveries * EB_EVENT,
        "EventBridge archive": archive_gb * ARCHIVE_GB + archive_gb * ARCHIVE_STORE_GB,
        "SQS requests": sqs_requests * SQS_REQ,
        "Fargate": fargate(tasks),
        "Load balancer": (ALB_H + lcu * LCU_H) * HOURS,
        "CloudWatch Logs": month_deliveries * LOG_KB_PER_DELIVERY / 1e6 * LOGS_GB,
        "Alarms, secrets": 11 * ALARM + 2 * SECRET,
    }
    return {
        "deliveries/day": deliveries * shops,
        "avg deliveries/s": avg_rate,
        "WRU/month": month_wru,
        "RRU/month": month_rru,
        "avg WRU/s": month_wru / (DAYS * 86400),
        "avg RRU/s": month_rru / (DAYS * 86400),
        "events/month": month_deliveries,
        "SQS requests/month": sqs_requests,
        "storage GB": storage_gb,
        "costs": rows,
        "total": sum(rows.values()),
    }


def main():
    deliveries, wru, rru = per_shop_day()
    print(f"per shop and day: {deliveries:.0f} deliveries, {wru:,.0f} WRU, {rru:,.0f} RRU")
    scenarios = {
        # (tasks: [(count, vCPU, GB)] serve first, then workers), average LCUs, GB per shop
        "1,000 shops": ([(2, 1, 2), (2, 0.5, 1), (1, 0.5, 1), (1, 0.5, 1)], 1, 0.015),
        "100,000 shops": ([(6, 1, 2), (6, 0.5, 1), (2, 0.5, 1), (1, 0.5, 1)], 7.5, 0.015),
    }
    for name, (tasks, lcu, gb) in scenarios.items():
        result = plan(int(name.split()[0].replace(",", "")), tasks, lcu, gb)
        print(f"\n## {name}")
        for key in ["deliveries/day", "avg deliveries/s", "WRU/month", "RRU/month", "avg WRU/s",
                    "avg RRU/s", "events/month", "SQS requests/month", "storage GB"]:
            print(f"{key:>20}: {result[key]:,.1f}")
        for key, value in result["costs"].items():
            print(f"{key:>24}: ${value:,.2f}")
        print(f"{'total':>24}: ${result['total']:,.2f}")


if __name__ == "__main__":
    main()
