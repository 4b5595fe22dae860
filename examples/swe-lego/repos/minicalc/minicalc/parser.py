"""Shunting-yard: infix tokens to reverse Polish notation."""

PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "%": 2, "^": 3}
RIGHT_ASSOC = {"^"}
FUNCTIONS = {"min": 2, "max": 2, "abs": 1}


def to_rpn(tokens):
    out, stack = [], []
    for tok in tokens:
        if tok.kind == "num":
            out.append(("num", float(tok.text)))
        elif tok.kind == "name":
            if tok.text in FUNCTIONS:
                stack.append(("func", tok.text))
            else:
                out.append(("var", tok.text))
        elif tok.kind == "comma":
            while stack and stack[-1] != ("lparen", "("):
                out.append(stack.pop())
        elif tok.kind == "op":
            p = PRECEDENCE[tok.text]
            while stack and stack[-1][0] == "op":
                q = PRECEDENCE[stack[-1][1]]
                if q > p or (q == p and tok.text not in RIGHT_ASSOC):
                    out.append(stack.pop())
                else:
                    break
            stack.append(("op", tok.text))
        elif tok.kind == "lparen":
            stack.append(("lparen", "("))
        elif tok.kind == "rparen":
            while stack and stack[-1] != ("lparen", "("):
                out.append(stack.pop())
            if not stack:
                raise SyntaxError("unbalanced ) at %d" % tok.pos)
            stack.pop()
            if stack and stack[-1][0] == "func":
                out.append(stack.pop())
    while stack:
        item = stack.pop()
        if item == ("lparen", "("):
            raise SyntaxError("unbalanced (")
        out.append(item)
    return out
