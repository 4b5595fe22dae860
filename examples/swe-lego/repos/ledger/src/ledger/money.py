"""Amounts of money, kept as integer cents."""

from ledger._config import DEFAULT_CURRENCY


def parse_amount(text):
    """Parse "12.50", "-3", "EUR 7.05" or "1,234.50" into cents."""
    text = text.strip()
    currency = DEFAULT_CURRENCY
    if " " in text:
        currency, text = text.split(None, 1)
    sign = -1 if text.startswith("-") else 1
    text = text.lstrip("+-")
    whole, _, frac = text.partition(".")
    if len(frac) > 2:
        raise ValueError("more than two decimals in %r" % text)
    cents = int(whole or "0") * 100 + int((frac + "00")[:2])
    return sign * cents, currency


def format_amount(cents, currency=DEFAULT_CURRENCY):
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return "%s %s%d.%02d" % (currency, sign, cents // 100, cents % 100)
