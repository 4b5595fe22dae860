import unittest

from inventory import Inventory, Item, OutOfStock


class StockTest(unittest.TestCase):
    def setUp(self):
        self.inv = Inventory()
        self.inv.add(Item("A1", "apple", 30, 10))
        self.inv.add(Item("B2", "bread", 250, 2))

    def test_add_merges_quantities(self):
        self.inv.add(Item("A1", "apple", 30, 5))
        self.assertEqual(self.inv.get("A1").quantity, 15)
        self.assertEqual(len(self.inv), 2)

    def test_remove(self):
        self.inv.remove("A1", 4)
        self.assertEqual(self.inv.get("A1").quantity, 6)

    def test_remove_all_drops_item(self):
        self.inv.remove("B2", 2)
        self.assertEqual(self.inv.skus(), ["A1"])

    def test_remove_too_many(self):
        with self.assertRaises(OutOfStock):
            self.inv.remove("B2", 3)
        self.assertEqual(self.inv.get("B2").quantity, 2)

    def test_remove_unknown(self):
        with self.assertRaises(KeyError):
            self.inv.remove("ZZ", 1)

    def test_low_stock(self):
        self.assertEqual(self.inv.low_stock(3), ["B2"])
        self.assertEqual(self.inv.low_stock(2), [])
        self.assertEqual(self.inv.low_stock(11), ["A1", "B2"])

    def test_total_value(self):
        self.assertEqual(self.inv.total_value_cents(), 30 * 10 + 250 * 2)


if __name__ == "__main__":
    unittest.main()
