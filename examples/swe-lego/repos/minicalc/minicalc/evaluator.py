"""Evaluating expressions."""

from .lexer import tokenize
from .parser import FUNCTIONS, to_rpn


class CalcError(Exception):
    pass


def apply_op(op, a, b):
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        if b == 0:
            raise CalcError("division by zero")
        return a / b
    if op == "%":
        if b == 0:
            raise CalcError("modulo by zero")
        return a % b
    if op == "^":
        return a ** b
    raise CalcError("unknown operator %s" % op)


def call(name, args):
    if name == "min":
        return min(args)
    if name == "max":
        return max(args)
    if name == "abs":
        return abs(args[0])
    raise CalcError("unknown function %s" % name)


def evaluate(expr, variables=None):
    variables = variables or {}
    stack = []
    for kind, value in to_rpn(tokenize(expr)):
        if kind == "num":
            stack.append(value)
        elif kind == "var":
            if value not in variables:
                raise CalcError("unknown variable %s" % value)
            stack.append(float(variables[value]))
        elif kind == "op":
            if len(stack) < 2:
                raise CalcError("missing operand for %s" % value)
            b = stack.pop()
            a = stack.pop()
            stack.append(apply_op(value, a, b))
        elif kind == "func":
            n = FUNCTIONS[value]
            if len(stack) < n:
                raise CalcError("%s needs %d arguments" % (value, n))
            args = stack[len(stack) - n:]
            del stack[len(stack) - n:]
            stack.append(call(value, args))
    if len(stack) != 1:
        raise CalcError("malformed expression")
    return stack[0]
