from ledger import Account
from ledger.report import trial_balance


def test_trial_balance_total():
    a, b = Account("cash"), Account("bank")
    a.post(500)
    b.post(-200)
    out = trial_balance([a, b]).splitlines()
    assert out[0].startswith("bank")
    assert out[-1].endswith("EUR 3.00")
