#!/usr/bin/env python3
"""Generates signed webhook bodies for bench/webhooks.sh.

Writes into OUT_DIR:
  bodies.lua  -- `return { topic = ..., nonce = ..., bodies = { {body = ..., hmac = ...}, ... } }`,
                 loaded by bench/wrk/orders_create.lua (wrk's LuaJIT has no HMAC, so the signatures
                 are computed here, over the exact body bytes);
  bodies.tsv  -- one `hmac<TAB>body` line per body, read by bench/webhook_loadgen.rs.

orders/create bodies are REST-shaped orders (the webhook payload: integer ids, shop-offset times,
2-dp money strings, line items with variant/product ids, tax lines, price sets), 2–4 KB each. They
carry no customer names, addresses, phones or e-mails (protected customer data level 1).
app/scopes_update bodies (BENCH_TOPIC override, a topic `ordernimbus serve` accepts today) are the
small payload Shopify sends for that topic.

  python3 bench/gen_webhook_bodies.py --out DIR [--count 64] [--secret bench-secret]
      [--topic orders/create] [--seed 7]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

MIN_BYTES = 2048
MAX_BYTES = 4096

PRODUCTS = [
    ("Merino Crew Sock", "Trail Knits", ["S", "M", "L"], "19.00"),
    ("Organic Cotton Tee", "Field & Fold", ["XS", "S", "M", "L", "XL"], "32.00"),
    ("Café Crème Coffee Beans 1 kg", "Roastery Nord", ["Whole bean", "Ground"], "24.50"),
    ("Enamel Camp Mug", "Trail Knits", ["Sage", "Clay", "Ink"], "16.00"),
    ("Waxed Canvas Tote", "Field & Fold", ["Olive", "Navy"], "68.00"),
    ("Beeswax Candle Trio", "Hive & Wick", ["Unscented", "Cedar"], "27.00"),
    ("Linen Tea Towel", "Field & Fold", ["Natural", "Stripe"], "14.00"),
    ("Stoneware Pour-Over", "Roastery Nord", ["White", "Charcoal"], "42.00"),
    ("Wool Beanie", "Trail Knits", ["Rust", "Oat", "Black"], "36.00"),
    ("Gift Card", "Store", ["$25", "$50"], "25.00"),
]
SOURCES = ["web", "web", "web", "pos", "shopify_draft_order", "iphone"]
TZ = timezone(timedelta(hours=-4))


def money_set(amount: str, currency: str = "USD") -> dict:
    return {
        "shop_money": {"amount": amount, "currency_code": currency},
        "presentment_money": {"amount": amount, "currency_code": currency},
    }


def line_item(rng: random.Random) -> dict:
    title, vendor, variants, price = rng.choice(PRODUCTS)
    variant = rng.choice(variants)
    quantity = rng.choice([1, 1, 1, 2, 2, 3, 4])
    product_id = 7_000_000_000_000 + rng.randrange(10**9)
    variant_id = 42_000_000_000_000 + rng.randrange(10**10)
    line_id = 14_000_000_000_000 + rng.randrange(10**10)
    gift_card = title == "Gift Card"
    tax = f"{float(price) * quantity * 0.08:.2f}" if not gift_card else "0.00"
    sku = "" if rng.random() < 0.1 else f"{vendor[:3].upper()}-{title[:4].upper()}-{variant[:3].upper()}"
    return {
        "id": line_id,
        "admin_graphql_api_id": f"gid://shopify/LineItem/{line_id}",
        "attributed_staffs": [],
        "current_quantity": quantity,
        "fulfillable_quantity": quantity,
        "fulfillment_service": "manual",
        "fulfillment_status": None,
        "gift_card": gift_card,
        "grams": 0 if gift_card else rng.choice([120, 250, 340, 1000]),
        "name": f"{title} - {variant}",
        "price": price,
        "price_set": money_set(price),
        "product_exists": True,
        "product_id": product_id,
        "properties": [],
        "quantity": quantity,
        "requires_shipping": not gift_card,
        "sku": sku,
        "taxable": not gift_card,
        "title": title,
        "total_discount": "0.00",
        "total_discount_set": money_set("0.00"),
        "variant_id": variant_id,
        "variant_inventory_management": "shopify",
        "variant_title": variant,
        "vendor": vendor,
        "tax_lines": [
            {
                "channel_liable": False,
                "price": tax,
                "price_set": money_set(tax),
                "rate": 0.08,
                "title": "State Tax",
            }
        ],
        "duties": [],
        "discount_allocations": [],
    }


def order(rng: random.Random, number: int, target: int) -> bytes:
    order_id = 5_900_000_000_000 + rng.randrange(10**9)
    created = datetime(2026, 10, 1, 9, 0, tzinfo=TZ) + timedelta(minutes=rng.randrange(60 * 24 * 30))
    stamp = created.isoformat()
    source = rng.choice(SOURCES)
    body: dict = {
        "id": order_id,
        "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
        "app_id": 580111 if source == "web" else 129785,
        "browser_ip": None,
        "buyer_accepts_marketing": False,
        "cancel_reason": None,
        "cancelled_at": None,
        "cart_token": None,
        "checkout_id": 36_000_000_000_000 + rng.randrange(10**9),
        "checkout_token": f"{rng.getrandbits(128):032x}",
        "closed_at": None,
        "confirmation_number": "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(9)),
        "confirmed": True,
        "created_at": stamp,
        "currency": "USD",
        "current_subtotal_price": "0.00",
        "current_total_discounts": "0.00",
        "current_total_price": "0.00",
        "current_total_tax": "0.00",
        "customer_locale": "en-US",
        "discount_codes": [],
        "estimated_taxes": False,
        "financial_status": "paid",
        "fulfillment_status": None,
        "landing_site": None,
        "location_id": 71_000_000_000 + rng.randrange(5) if source == "pos" else None,
        "name": f"#{1000 + number}",
        "note": None,
        "note_attributes": [],
        "number": number,
        "order_number": 1000 + number,
        "payment_gateway_names": ["shopify_payments"],
        "presentment_currency": "USD",
        "processed_at": stamp,
        "source_name": source,
        "subtotal_price": "0.00",
        "tags": "",
        "tax_lines": [],
        "taxes_included": False,
        "test": False,
        "token": f"{rng.getrandbits(128):032x}",
        "total_discounts": "0.00",
        "total_line_items_price": "0.00",
        "total_price": "0.00",
        "total_tax": "0.00",
        "total_weight": 0,
        "updated_at": stamp,
        "customer": {"id": 6_800_000_000_000 + rng.randrange(10**9), "currency": "USD"},
        "discount_applications": [],
        "fulfillments": [],
        "line_items": [],
        "refunds": [],
        "shipping_lines": [],
    }

    def encode() -> bytes:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()

    while True:
        item = line_item(rng)
        body["line_items"].append(item)
        subtotal = sum(float(li["price"]) * li["quantity"] for li in body["line_items"])
        tax = sum(float(li["tax_lines"][0]["price"]) for li in body["line_items"])
        for key in ("current_subtotal_price", "subtotal_price", "total_line_items_price"):
            body[key] = f"{subtotal:.2f}"
        for key in ("current_total_tax", "total_tax"):
            body[key] = f"{tax:.2f}"
        for key in ("current_total_price", "total_price"):
            body[key] = f"{subtotal + tax:.2f}"
        body["total_weight"] = sum(li["grams"] * li["quantity"] for li in body["line_items"])
        data = encode()
        if len(data) > MAX_BYTES:
            body["line_items"].pop()
            break
        if len(data) >= target:
            break
    data = encode()
    assert MIN_BYTES <= len(data) <= MAX_BYTES, len(data)
    return data


def scopes_update(rng: random.Random) -> bytes:
    scopes = ["read_orders", "read_all_orders", "read_products", "read_inventory", "read_locations"]
    return json.dumps(
        {
            "id": 1_000_000 + rng.randrange(10**6),
            "action": "update",
            "handle": "ordernimbus",
            "previous": scopes[:3],
            "current": scopes,
            "updated_at": "2026-10-14T09:12:33-04:00",
        },
        separators=(",", ":"),
    ).encode()


def lua_string(data: bytes) -> str:
    """A double-quoted Lua string holding exactly these bytes."""
    out = ['"']
    for byte in data:
        if byte in (0x22, 0x5C):
            out.append("\\" + chr(byte))
        elif 0x20 <= byte < 0x7F:
            out.append(chr(byte))
        else:
            out.append(f"\\{byte:03d}")
    out.append('"')
    return "".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--count", type=int, default=64)
    parser.add_argument("--secret", default="bench-secret")
    parser.add_argument("--topic", default="orders/create")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    bodies = []
    for n in range(args.count):
        if args.topic == "app/scopes_update":
            data = scopes_update(rng)
        elif args.topic == "orders/create":
            data = order(rng, n + 1, rng.randrange(MIN_BYTES, MAX_BYTES))
        else:
            raise SystemExit(f"no body generator for topic {args.topic}")
        signature = base64.b64encode(hmac.new(args.secret.encode(), data, hashlib.sha256).digest()).decode()
        bodies.append((data, signature))

    args.out.mkdir(parents=True, exist_ok=True)
    lua = ["return {", f"  topic = {lua_string(args.topic.encode())},", "  bodies = {"]
    for data, signature in bodies:
        lua.append(f"    {{ hmac = {lua_string(signature.encode())}, body = {lua_string(data)} }},")
    lua += ["  },", "}", ""]
    (args.out / "bodies.lua").write_text("\n".join(lua), encoding="ascii")
    with open(args.out / "bodies.tsv", "wb") as tsv:
        for data, signature in bodies:
            assert b"\n" not in data and b"\t" not in data
            tsv.write(signature.encode() + b"\t" + data + b"\n")
    sizes = sorted(len(data) for data, _ in bodies)
    print(
        f"{len(bodies)} signed {args.topic} bodies, {sizes[0]}–{sizes[-1]} bytes "
        f"(median {sizes[len(sizes) // 2]}) in {args.out}"
    )


if __name__ == "__main__":
    main()
