import os

from ledger import format_amount, parse_amount


def test_parse_plain():
    assert parse_amount("12.50") == (1250, "EUR")


def test_parse_negative_with_currency():
    assert parse_amount("USD -3.05") == (-305, "USD")


def test_format_roundtrip():
    assert format_amount(*parse_amount("7.05")) == "EUR 7.05"


def test_env_vars_reach_the_tests():
    # install_config's env_vars are set for the test run.
    assert os.environ.get("LEDGER_STRICT") == "1"
