"""Splitting an expression into tokens."""

from dataclasses import dataclass

OPERATORS = "+-*/%^"


@dataclass(frozen=True)
class Token:
    kind: str  # num, name, op, lparen, rparen, comma
    text: str
    pos: int


def tokenize(src):
    tokens = []
    i = 0
    while i < len(src):
        c = src[i]
        if c.isspace():
            i += 1
        elif c.isdigit() or c == ".":
            j = i
            while j < len(src) and (src[j].isdigit() or src[j] == "."):
                j += 1
            text = src[i:j]
            if text.count(".") > 1:
                raise SyntaxError("bad number %r at %d" % (text, i))
            tokens.append(Token("num", text, i))
            i = j
        elif c.isalpha() or c == "_":
            j = i
            while j < len(src) and (src[j].isalnum() or src[j] == "_"):
                j += 1
            tokens.append(Token("name", src[i:j], i))
            i = j
        elif c in OPERATORS:
            tokens.append(Token("op", c, i))
            i += 1
        elif c == "(":
            tokens.append(Token("lparen", c, i))
            i += 1
        elif c == ")":
            tokens.append(Token("rparen", c, i))
            i += 1
        elif c == ",":
            tokens.append(Token("comma", c, i))
            i += 1
        else:
            raise SyntaxError("unexpected %r at %d" % (c, i))
    return tokens
