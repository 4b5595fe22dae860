from ledger import Account


def test_balance_sums_postings():
    a = Account("cash")
    a.post(1000)
    a.post(-250, "coffee")
    assert a.balance() == 750


def test_new_account_is_empty():
    assert Account("bank").balance() == 0
