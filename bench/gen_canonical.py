#!/usr/bin/env python3
"""Writes a canonical sales CSV of SKUS x LOCATIONS x DAYS rows, in date order like a real export.

usage: gen_canonical.py OUT ROWS   (ROWS a multiple of 100,000: 5,000 SKUs x 20 locations x days)
"""
import datetime
import random
import sys


def main() -> None:
    out, rows = sys.argv[1], int(sys.argv[2])
    skus, locations = 5000, 20
    days = rows // (skus * locations)
    rng = random.Random(42)
    start = datetime.date(2023, 1, 1)
    sku_names = [f"SKU-{n:05d}" for n in range(skus)]
    prices = [f"{rng.uniform(1, 80):.2f}" for _ in range(skus)]
    location_names = [f"Store {n:02d}" for n in range(locations)]
    quantities = [str(rng.choice((1, 1, 1, 2, 2, 3, 4, 6, 12))) for _ in range(997)]
    with open(out, "w", encoding="utf-8", newline="") as file:
        file.write("date,sku,location,quantity,unit_price\n")
        n = 0
        for day in range(days):
            date = (start + datetime.timedelta(days=day)).isoformat()
            chunk = []
            for location in location_names:
                for index in range(skus):
                    chunk.append(f"{date},{sku_names[index]},{location},{quantities[n % 997]},{prices[index]}\n")
                    n += 1
            file.write("".join(chunk))


if __name__ == "__main__":
    main()
