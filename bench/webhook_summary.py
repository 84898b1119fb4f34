#!/usr/bin/env python3
"""Prints the table of bench/webhooks.sh from the result files it leaves in its work directory.

  python3 bench/webhook_summary.py WORK_DIR RATE THREADS CONNECTIONS DURATION RUNS WORKERS TOPIC
"""

from __future__ import annotations

import os
import sys

SIDES = ["ordernimbus", "reference"]


def fields(path: str, tag: str) -> dict[str, str] | None:
    if not os.path.exists(path):
        return None
    for line in open(path, encoding="utf-8", errors="replace"):
        if line.startswith(tag):
            return dict(part.split("=", 1) for part in line.split()[1:] if "=" in part)
    return None


def read(path: str) -> str | None:
    return open(path).read().strip() if os.path.exists(path) else None


def cell(result: dict[str, str] | None, key: str) -> str:
    if not result or key not in result:
        return "n/a"
    value = result[key]
    try:
        number = float(value)
    except ValueError:
        return value
    if key.endswith("_ms"):
        return f"{number:.2f}"
    return f"{number:,.0f}"


def main() -> None:
    work, rate, threads, connections, duration, runs, workers, topic = sys.argv[1:9]
    rate_n = int(float(rate))
    wrk = {s: fields(f"{work}/{s}.wrk", "WRK_RESULT") for s in SIDES}
    fixed = {s: fields(f"{work}/{s}.rate", "LOADGEN_RESULT") for s in SIDES}
    sample = {s: fields(f"{work}/{s}.status", "WRK_RESULT") for s in SIDES}

    for s in SIDES:
        if wrk[s]:
            wrk[s]["socket_errors"] = str(
                sum(int(wrk[s][k]) for k in ("connect_errors", "read_errors", "write_errors", "timeouts"))
            )
        if fixed[s]:
            fixed[s]["errors_timeouts"] = str(int(fixed[s]["errors"]) + int(fixed[s]["timeouts"]))

    rows = [
        (f"closed loop: wrk -t{threads} -c{connections} -d{duration}s (median of {runs})", None, None),
        ("  req/s", wrk, "rps"),
        ("  p50 ms", wrk, "p50_ms"),
        ("  p90 ms", wrk, "p90_ms"),
        ("  p99 ms", wrk, "p99_ms"),
        ("  non-2xx (status >= 400)", wrk, "non2xx"),
        ("  socket errors + timeouts", wrk, "socket_errors"),
        (f"open loop at {rate_n:,} req/s (latency from intended send)", None, None),
        ("  achieved req/s", fixed, "achieved_rps"),
        ("  p50 ms", fixed, "p50_ms"),
        ("  p90 ms", fixed, "p90_ms"),
        ("  p99 ms (target <= 10 for ordernimbus)", fixed, "p99_ms"),
        ("  p99.9 ms", fixed, "p99_9_ms"),
        ("  non-2xx", fixed, "non2xx"),
        ("  errors + timeouts", fixed, "errors_timeouts"),
        ("  statuses", fixed, "statuses"),
    ]
    print(f"{'':<56}{'ordernimbus':>18}{f'reference ({workers} workers)':>24}")
    for label, table, key in rows:
        if table is None:
            print(label)
        else:
            print(f"{label:<56}{cell(table['ordernimbus'], key):>18}{cell(table['reference'], key):>24}")

    problems = []
    for s in SIDES:
        if wrk[s] and int(wrk[s]["non2xx"]) > 0:
            statuses = sample[s]["statuses"] if sample[s] else "?"
            problems.append(
                f"{s} answered {int(wrk[s]['non2xx']):,} of {int(wrk[s]['requests']):,} wrk requests "
                f"with non-2xx (statuses of a 2 s sample: {statuses})"
            )
        if fixed[s] and int(fixed[s]["non2xx"]) + int(fixed[s]["errors_timeouts"]) > 0:
            problems.append(
                f"{s} open-loop run: non-2xx {int(fixed[s]['non2xx']):,}, errors + timeouts "
                f"{fixed[s]['errors_timeouts']} (statuses {fixed[s]['statuses']})"
            )
        if fixed[s] and fixed[s].get("rate_reached") == "0":
            problems.append(
                f"{s} open-loop run did NOT reach {rate_n:,} req/s (achieved {fixed[s]['achieved_rps']}): "
                "its percentiles are not a measurement at that rate"
            )
    for source in (sample["reference"], fixed["reference"]):
        if source and "401:" in source.get("statuses", ""):
            problems.append("the REFERENCE answered 401 to signed bodies: the benchmark itself is broken")

    acked, stored = read(f"{work}/ordernimbus.acked"), read(f"{work}/ordernimbus.stored")
    count = stored.partition(" ")[0] if stored else ""
    durable = count.isdigit() and acked is not None and int(count) >= int(acked) > 0

    print()
    if topic != "orders/create":
        print(f"(topic {topic}: a pipeline check, not the orders/create measurement the targets are about)")
    on_clean = bool(wrk["ordernimbus"]) and int(wrk["ordernimbus"]["non2xx"]) == 0
    if wrk["ordernimbus"] and wrk["reference"]:
        ratio = float(wrk["ordernimbus"]["rps"]) / float(wrk["reference"]["rps"])
        if not on_clean:
            verdict = "NOT VALID: ordernimbus answered non-2xx"
        elif ratio < 3:
            verdict = "MISSED"
        else:
            verdict = "MET" if durable else "throughput met, but durable storage of every delivery NOT verified"
        print(f"throughput ratio ordernimbus / reference: {ratio:.2f}  (target >= 3: {verdict})")
    if fixed["ordernimbus"]:
        p99 = float(fixed["ordernimbus"]["p99_ms"])
        clean = fixed["ordernimbus"]["non2xx"] == "0" and fixed["ordernimbus"]["errors_timeouts"] == "0"
        if fixed["ordernimbus"]["rate_reached"] != "1":
            verdict = "NOT VALID: rate not reached"
        elif not clean:
            verdict = "NOT VALID: non-2xx answers or errors"
        else:
            verdict = "MET" if p99 <= 10 else "MISSED"
        print(f"ordernimbus p99 at {rate_n:,} req/s: {p99:.2f} ms  (target <= 10 ms: {verdict})")

    if acked is not None and stored is not None:
        count, _, source = stored.partition(" ")
        print(f"durability (counted after SIGKILL): 2xx answered by ordernimbus: {int(acked):,}; stored: ", end="")
        if count.isdigit():
            print(f"{int(count):,} ({source})")
            lost = int(acked) - int(count)
            if lost > 0:
                problems.append(f"ordernimbus LOST {lost:,} acknowledged deliveries (answered 2xx, not stored)")
            else:
                print(
                    "  every acknowledged delivery is stored (a surplus = requests in flight when a load run "
                    "stopped, stored but never answered to the client)"
                )
        elif count == "not-measurable-yet":
            print(f"not measurable yet ({source})")
        else:
            print(f"{count} ({source})")

    for problem in problems:
        print(f"\n!!!!!!!! {problem}")


if __name__ == "__main__":
    main()
