"""Reading and writing inventories as CSV."""

import csv
import io

from .stock import Inventory, Item

HEADER = ["sku", "name", "price_cents", "quantity"]


def dump_csv(inv):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(HEADER)
    for sku in inv.skus():
        item = inv.get(sku)
        w.writerow([item.sku, item.name, item.price_cents, item.quantity])
    return buf.getvalue()


def load_csv(text):
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or rows[0] != HEADER:
        raise ValueError("missing header %s" % ",".join(HEADER))
    inv = Inventory()
    for n, row in enumerate(rows[1:], start=2):
        if len(row) != len(HEADER):
            raise ValueError("line %d: want %d fields, got %d" % (n, len(HEADER), len(row)))
        inv.add(Item(row[0], row[1], int(row[2]), int(row[3])))
    return inv
