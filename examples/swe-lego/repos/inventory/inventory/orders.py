"""Orders and their prices."""

from dataclasses import dataclass, field


@dataclass
class OrderLine:
    sku: str
    quantity: int
    unit_cents: int

    def subtotal(self):
        return self.quantity * self.unit_cents


@dataclass
class Order:
    lines: list = field(default_factory=list)
    coupon: str = ""

    def add(self, sku, quantity, unit_cents):
        for line in self.lines:
            if line.sku == sku and line.unit_cents == unit_cents:
                line.quantity += quantity
                return
        self.lines.append(OrderLine(sku, quantity, unit_cents))


COUPONS = {"TEN": 10, "QUARTER": 25, "HALF": 50}
BULK_QUANTITY = 10
BULK_PERCENT = 5


def discount_percent(order):
    percent = COUPONS.get(order.coupon, 0)
    if sum(line.quantity for line in order.lines) >= BULK_QUANTITY:
        percent += BULK_PERCENT
    return min(percent, 50)


def price_order(order, tax_percent=0):
    """Total in cents: subtotal, minus discount, plus tax, rounded half up."""
    subtotal = sum(line.subtotal() for line in order.lines)
    discounted = subtotal * (100 - discount_percent(order))
    taxed = discounted * (100 + tax_percent)
    return (taxed + 5000) // 10000
