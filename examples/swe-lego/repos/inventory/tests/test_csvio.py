import unittest

from inventory import Inventory, Item, dump_csv, load_csv


class CsvTest(unittest.TestCase):
    def test_round_trip(self):
        inv = Inventory()
        inv.add(Item("B2", "bread, sliced", 250, 2))
        inv.add(Item("A1", "apple", 30, 10))
        text = dump_csv(inv)
        self.assertEqual(text.splitlines()[0], "sku,name,price_cents,quantity")
        self.assertEqual(text.splitlines()[1], "A1,apple,30,10")
        back = load_csv(text)
        self.assertEqual(back.skus(), ["A1", "B2"])
        self.assertEqual(back.get("B2").name, "bread, sliced")

    def test_missing_header(self):
        with self.assertRaises(ValueError):
            load_csv("A1,apple,30,10\n")

    def test_bad_row(self):
        with self.assertRaises(ValueError) as cm:
            load_csv("sku,name,price_cents,quantity\nA1,apple,30\n")
        self.assertIn("line 2", str(cm.exception))


if __name__ == "__main__":
    unittest.main()
