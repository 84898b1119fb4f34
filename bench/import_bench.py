#!/usr/bin/env python3
"""CSV import benchmark: OrderNimbus' real import path against DuckDB on the same file.

For each size it generates a canonical CSV (5,000 SKUs x 20 locations x days, date order), imports it
with `ordernimbus import` into a fresh data directory (parse, validate, dedupe, aggregate, durably
stored), and times DuckDB reading the same file and aggregating it to daily units per SKU x location
in memory. Prints rows/s, peak RSS of the import process and the time ratio.

Each size is measured ROUNDS times, the import and DuckDB alternating, after one unmeasured round
of each, and the medians are compared: one run on a shared machine swings by 10-20 %. The generated file is flushed to disk before
the first round, so that its writeback does not land inside a measurement.

usage: python3 bench/import_bench.py [ROWS ...]     (default: 1000000 10000000)
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = 3


def ensure_duckdb():
    try:
        import duckdb  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "duckdb"], check=True)
    import duckdb
    return duckdb


def binary() -> Path:
    subprocess.run(["cargo", "build", "--locked", "--release", "-p", "ordernimbus"], cwd=ROOT, check=True)
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return target / "release" / "ordernimbus"


def run_measured(command):
    """Runs a command; returns (seconds, peak RSS in MB, stdout).

    The peak is the process's own high-water mark (VmHWM), polled while it runs: wait4's
    ru_maxrss would also count this Python process's memory, which a child carries until exec.
    """
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    chunks = []
    reader = threading.Thread(target=lambda: chunks.append(process.stdout.read()))
    reader.start()
    peak_kb = 0
    while reader.is_alive():
        try:
            with open(f"/proc/{process.pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        peak_kb = max(peak_kb, int(line.split()[1]))
        except OSError:
            pass
        time.sleep(0.01)
    reader.join()
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"{command[0]} failed with status {status}")
    return elapsed, (peak_kb or usage.ru_maxrss) / 1024, chunks[0]


def import_once(program: Path, data_dir: Path, csv_path: Path, rows: int):
    """Imports the file into a fresh data directory: (seconds, peak RSS MB)."""
    created = subprocess.run(
        [program, "--data-dir", data_dir, "tenants", "create", "--name", "Bench", "--json"],
        check=True, capture_output=True, text=True,
    )
    tenant = json.loads(created.stdout)["tenant_id"]
    seconds, rss_mb, output = run_measured([program, "--data-dir", str(data_dir), "import", "--tenant", tenant, str(csv_path)])
    report = json.loads(output)
    assert report["rows_imported"] == rows, report
    shutil.rmtree(data_dir)
    return seconds, rss_mb


def duckdb_once(duckdb, csv_path: Path, rows: int) -> float:
    """DuckDB reads the file and aggregates it to daily units and revenue per SKU x location."""
    connection = duckdb.connect()
    started = time.perf_counter()
    connection.execute(
        f"CREATE TABLE daily AS SELECT date, sku, location, sum(quantity) AS units, "
        f"sum(quantity * unit_price) AS revenue FROM read_csv('{csv_path}') GROUP BY ALL"
    )
    duck_seconds = time.perf_counter() - started
    groups = connection.execute("SELECT count(*) FROM daily").fetchone()[0]
    connection.close()
    assert groups == rows, groups
    return duck_seconds


def main() -> None:
    sizes = [int(arg) for arg in sys.argv[1:]] or [1_000_000, 10_000_000]
    duckdb = ensure_duckdb()
    program = binary()
    print(f"{'rows':>10} {'MB':>7} {'ordernimbus s':>14} {'rows/s':>11} {'peak RSS MB':>12} {'duckdb s':>9} {'ratio':>6}")
    with tempfile.TemporaryDirectory() as scratch:
        for rows in sizes:
            csv_path = Path(scratch) / f"sales_{rows}.csv"
            subprocess.run([sys.executable, ROOT / "bench" / "gen_canonical.py", csv_path, str(rows)], check=True)
            size_mb = csv_path.stat().st_size / 1e6
            os.sync()
            # One unmeasured round of each first: the first run after the file is written is the
            # slowest for both (caches, the fresh binary's pages), by up to a third.
            _, peak = import_once(program, Path(scratch) / f"data_{rows}_warm", csv_path, rows)
            duckdb_once(duckdb, csv_path, rows)
            imports, ducks = [], []
            for round_ in range(ROUNDS):
                seconds, rss_mb = import_once(program, Path(scratch) / f"data_{rows}_{round_}", csv_path, rows)
                imports.append(seconds)
                peak = max(peak, rss_mb)
                ducks.append(duckdb_once(duckdb, csv_path, rows))
            seconds, duck_seconds = statistics.median(imports), statistics.median(ducks)
            print(f"{rows:>10} {size_mb:>7.1f} {seconds:>14.2f} {rows / seconds:>11,.0f} {peak:>12.0f} {duck_seconds:>9.2f} {seconds / duck_seconds:>6.2f}"
                  f"   (runs: {' '.join(f'{x:.2f}' for x in imports)} / {' '.join(f'{x:.2f}' for x in ducks)})")
            csv_path.unlink()
    print(f"median of {ROUNDS} runs each, after one unmeasured run of each; ratio = ordernimbus import time / DuckDB in-memory read-and-aggregate time (target <= 1.5); peak RSS (highest of the runs) target <= 256 MB")


if __name__ == "__main__":
    main()
