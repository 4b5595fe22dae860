"""A trial balance of accounts."""

from ledger.money import format_amount


def trial_balance(accounts):
    lines = []
    for a in sorted(accounts, key=lambda a: a.name):
        lines.append("%-20s %s" % (a.name, format_amount(a.balance())))
    total = sum(a.balance() for a in accounts)
    lines.append("%-20s %s" % ("total", format_amount(total)))
    return "\n".join(lines)
