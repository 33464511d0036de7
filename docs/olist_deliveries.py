"""Turn the public Olist data set into the `olist` history file `import-history` reads.

The Brazilian E-Commerce Public Dataset by Olist (Kaggle, "olistbr/brazilian-ecommerce",
CC BY-NC-SA 4.0) comes as one CSV per table. A delivery needs four of them joined, and the
service's `olist` format is that join: one row per delivered order, with its purchase, carrier
hand-off and delivery times (Brazilian wall-clock, no zone, as published), the promised date,
and the zip prefix and state of the seller of its first item and of the customer.

    .venv/bin/python docs/olist_deliveries.py DIR olist_deliveries.csv.gz

DIR holds the unzipped Kaggle files: olist_orders_dataset.csv, olist_order_items_dataset.csv,
olist_customers_dataset.csv, olist_sellers_dataset.csv and, optionally,
olist_geolocation_dataset.csv (the mean point of each zip prefix becomes the lat/lng columns).
Only the standard library is used, so it runs with any Python 3.11.
"""

from __future__ import annotations

import csv
import gzip
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

COLUMNS = (
    "order_id",
    "purchase_ts",
    "approved_ts",
    "carrier_handoff_ts",
    "delivered_ts",
    "promised_date",
    "seller_zip_prefix",
    "seller_city",
    "seller_state",
    "customer_zip_prefix",
    "customer_city",
    "customer_state",
    "seller_lat",
    "seller_lng",
    "customer_lat",
    "customer_lng",
)


def _rows(directory: Path, name: str) -> Iterator[dict[str, str]]:
    with open(directory / name, newline="", encoding="utf-8") as stream:
        yield from csv.DictReader(stream)


def _zip(value: str) -> str:
    """Five digits: a prefix read as a number somewhere on the way gets its leading zero back."""
    return value.strip().zfill(5)


def _points(directory: Path) -> dict[str, tuple[str, str]]:
    """Mean latitude and longitude of each zip prefix, when the geolocation table is there."""
    if not (directory / "olist_geolocation_dataset.csv").exists():
        return {}
    sums: dict[str, list[float]] = {}
    for row in _rows(directory, "olist_geolocation_dataset.csv"):
        total = sums.setdefault(_zip(row["geolocation_zip_code_prefix"]), [0.0, 0.0, 0.0])
        total[0] += float(row["geolocation_lat"])
        total[1] += float(row["geolocation_lng"])
        total[2] += 1
    return {key: (f"{lat / n:.6f}", f"{lng / n:.6f}") for key, (lat, lng, n) in sums.items()}


def convert(directory: Path, out: TextIO) -> int:
    """Write the `olist` file for the tables in `directory`; the number of orders written."""
    customers = {row["customer_id"]: row for row in _rows(directory, "olist_customers_dataset.csv")}
    sellers = {row["seller_id"]: row for row in _rows(directory, "olist_sellers_dataset.csv")}
    first_seller: dict[str, tuple[int, str]] = {}
    for item in _rows(directory, "olist_order_items_dataset.csv"):
        number = int(item["order_item_id"])
        known = first_seller.get(item["order_id"])
        if known is None or number < known[0]:
            first_seller[item["order_id"]] = (number, item["seller_id"])
    points = _points(directory)
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    written = 0
    for order in _rows(directory, "olist_orders_dataset.csv"):
        if order["order_status"] != "delivered" or not order["order_delivered_customer_date"]:
            continue
        customer = customers.get(order["customer_id"])
        seller = sellers.get(first_seller.get(order["order_id"], (0, ""))[1])
        if customer is None or seller is None:
            continue
        seller_zip = _zip(seller["seller_zip_code_prefix"])
        customer_zip = _zip(customer["customer_zip_code_prefix"])
        seller_point = points.get(seller_zip, ("", ""))
        customer_point = points.get(customer_zip, ("", ""))
        writer.writerow(
            {
                "order_id": order["order_id"],
                "purchase_ts": order["order_purchase_timestamp"],
                "approved_ts": order["order_approved_at"],
                "carrier_handoff_ts": order["order_delivered_carrier_date"],
                "delivered_ts": order["order_delivered_customer_date"],
                "promised_date": order["order_estimated_delivery_date"][:10],
                "seller_zip_prefix": seller_zip,
                "seller_city": seller["seller_city"],
                "seller_state": seller["seller_state"],
                "customer_zip_prefix": customer_zip,
                "customer_city": customer["customer_city"],
                "customer_state": customer["customer_state"],
                "seller_lat": seller_point[0],
                "seller_lng": seller_point[1],
                "customer_lat": customer_point[0],
                "customer_lng": customer_point[1],
            }
        )
        written += 1
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: olist_deliveries.py KAGGLE_DIR OUT.csv[.gz]", file=sys.stderr)
        return 2
    directory, target = Path(argv[0]), Path(argv[1])
    opener = gzip.open if target.name.endswith(".gz") else open
    with opener(target, "wt", newline="", encoding="utf-8") as out:
        written = convert(directory, out)
    print(f"wrote {written:,} delivered orders to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
