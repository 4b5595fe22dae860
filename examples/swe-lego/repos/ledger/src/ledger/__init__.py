"""Plain-text bookkeeping: amounts, accounts and reports."""

from ledger.accounts import Account
from ledger.money import format_amount, parse_amount

__all__ = ["Account", "format_amount", "parse_amount"]
