"""inventory: stock keeping and order pricing."""

from .stock import Inventory, Item, OutOfStock
from .orders import Order, OrderLine, price_order
from .csvio import dump_csv, load_csv

__all__ = ["Inventory", "Item", "OutOfStock", "Order", "OrderLine", "price_order", "dump_csv", "load_csv"]
