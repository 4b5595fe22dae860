"""Accounts: a name and the postings made to it."""


class Account:
    def __init__(self, name):
        self.name = name
        self.postings = []

    def post(self, cents, memo=""):
        self.postings.append((cents, memo))

    def balance(self):
        return sum(c for c, _ in self.postings)
