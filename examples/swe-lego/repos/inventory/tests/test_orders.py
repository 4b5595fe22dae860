import unittest

from inventory import Order, price_order


class OrderTest(unittest.TestCase):
    def test_add_merges_same_line(self):
        o = Order()
        o.add("A1", 2, 30)
        o.add("A1", 3, 30)
        o.add("A1", 1, 25)
        self.assertEqual([(l.sku, l.quantity, l.unit_cents) for l in o.lines], [("A1", 5, 30), ("A1", 1, 25)])

    def test_price_plain(self):
        o = Order()
        o.add("B2", 2, 250)
        self.assertEqual(price_order(o), 500)

    def test_price_coupon_and_tax(self):
        o = Order(coupon="TEN")
        o.add("B2", 2, 250)
        self.assertEqual(price_order(o, tax_percent=20), 540)

    def test_bulk_discount(self):
        o = Order()
        o.add("A1", 10, 30)
        self.assertEqual(price_order(o), 285)
        o.add("A1", 0, 30)
        o2 = Order()
        o2.add("A1", 9, 30)
        self.assertEqual(price_order(o2), 270)

    def test_rounding_half_up(self):
        o = Order(coupon="QUARTER")
        o.add("C3", 1, 10)
        self.assertEqual(price_order(o), 8)
        o3 = Order(coupon="QUARTER")
        o3.add("C3", 1, 6)
        self.assertEqual(price_order(o3), 5)

    def test_discount_is_capped(self):
        o = Order(coupon="HALF")
        o.add("A1", 40, 100)
        self.assertEqual(price_order(o), 2000)


if __name__ == "__main__":
    unittest.main()
