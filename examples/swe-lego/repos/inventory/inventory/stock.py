"""Items and stock levels."""

from dataclasses import dataclass


class OutOfStock(Exception):
    pass


@dataclass
class Item:
    sku: str
    name: str
    price_cents: int
    quantity: int = 0


class Inventory:
    def __init__(self):
        self._items = {}

    def add(self, item):
        if item.sku in self._items:
            self._items[item.sku].quantity += item.quantity
        else:
            self._items[item.sku] = Item(item.sku, item.name, item.price_cents, item.quantity)

    def get(self, sku):
        return self._items[sku]

    def remove(self, sku, quantity):
        item = self._items.get(sku)
        if item is None:
            raise KeyError(sku)
        if quantity > item.quantity:
            raise OutOfStock("%s: %d requested, %d in stock" % (sku, quantity, item.quantity))
        item.quantity -= quantity
        if item.quantity == 0:
            del self._items[sku]

    def low_stock(self, threshold):
        return sorted(i.sku for i in self._items.values() if i.quantity < threshold)

    def total_value_cents(self):
        return sum(i.price_cents * i.quantity for i in self._items.values())

    def skus(self):
        return sorted(self._items)

    def __len__(self):
        return len(self._items)
