"""lego's synthetic bug injector: procedural modifications of Python
functions with the ast module (SWE-smith's "procedural" strategy), run
inside the task environment so that the env's Python parses the code.

    modify.py --root /testbed --repo NAME --seed S --n N --out PREFIX
    modify.py --root /testbed --repo NAME --seed S --n N --rewrite-sites OUT.json

Writes PREFIX0.json ... PREFIX{N-1}.json: each a candidate bug (one per
function and modifier) or {"empty": true} when the repo has fewer sites. A candidate holds the unified diff that injects the bug
("bug_patch") and the one that fixes it ("patch"). The choice is
deterministic: all sites are listed in source order, shuffled with
random.Random(seed), and taken in that order.

With --rewrite-sites it proposes no bug: it lists N functions (chosen the
same way) whose body an LLM is to rewrite from the signature and
docstring (the "llm_rewrite" strategy): for each, the file, the function,
its header (decorators, def line and docstring), the line range of the
body after the docstring, the body's indentation and the file's text.

Modifiers (each edits the text of one node, so the rest of the file keeps
its formatting):

    invert_compare     a < b  ->  a >= b  (==/!=, in/not in, is/is not too)
    swap_boolop        a and b  ->  a or b, and back
    off_by_one         range(..., n) -> range(..., n - 1); x[a:b] -> x[a:b - 1]; x[2] -> x[3]
    change_constant    an integer n -> n + 1; True <-> False
    swap_binop         + <-> -, * <-> /
    negate_condition   if c: / while c:  ->  if not c:
    swap_arguments     f(a, b)  ->  f(b, a)
    remove_argument    f(a, b)  ->  f(a); f(a, k=v) -> f(a)
    drop_else          the else (or elif) clause of an if is removed
    swap_if_else       the bodies of an if and its else are exchanged
    remove_statement   an assignment or call statement of a longer block is removed
"""

import argparse
import ast
import copy
import difflib
import hashlib
import json
import os
import random
import sys

SKIP_DIRS = {".git", "tests", "test", "testing", "docs", "build", "dist", "__pycache__"}


def source_files(root):
    out = []
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs if x not in SKIP_DIRS and not x.startswith("."))
        for f in sorted(files):
            if not f.endswith(".py") or f.startswith("test_") or f.endswith("_test.py") \
                    or f in ("conftest.py", "setup.py"):
                continue
            out.append(os.path.relpath(os.path.join(d, f), root))
    return sorted(out)


class Source:
    """A file's text with byte offsets for ast positions (col_offset counts
    UTF-8 bytes)."""

    def __init__(self, text):
        self.b = text.encode("utf-8")
        self.starts = [0]
        for i, c in enumerate(self.b):
            if c == 10:
                self.starts.append(i + 1)

    def off(self, line, col):
        return self.starts[line - 1] + col

    def span(self, node):
        return self.off(node.lineno, node.col_offset), self.off(node.end_lineno, node.end_col_offset)

    def line_span(self, first, last):
        """From the start of first's line to the end of last."""
        return self.starts[first.lineno - 1], self.off(last.end_lineno, last.end_col_offset)

    def text(self, a, b):
        return self.b[a:b].decode("utf-8")

    def line_text(self, line):
        end = self.starts[line] if line < len(self.starts) else len(self.b)
        return self.b[self.starts[line - 1]:end].decode("utf-8")


def unparse(node):
    return ast.unparse(ast.fix_missing_locations(node))


def expr_edit(src, node, new):
    a, b = src.span(node)
    return [(a, b, unparse(new))]


FLIP = {ast.Lt: ast.GtE, ast.GtE: ast.Lt, ast.Gt: ast.LtE, ast.LtE: ast.Gt, ast.Eq: ast.NotEq,
        ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}
BINOPS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult}


def invert_compare(src, n):
    if isinstance(n, ast.Compare) and len(n.ops) == 1 and type(n.ops[0]) in FLIP:
        m = copy.deepcopy(n)
        m.ops = [FLIP[type(n.ops[0])]()]
        return expr_edit(src, n, m)


def swap_boolop(src, n):
    if isinstance(n, ast.BoolOp):
        m = copy.deepcopy(n)
        m.op = ast.Or() if isinstance(n.op, ast.And) else ast.And()
        return expr_edit(src, n, m)


def minus_one(e):
    return ast.BinOp(left=copy.deepcopy(e), op=ast.Sub(), right=ast.Constant(1))


def off_by_one(src, n):
    if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "range" \
            and 1 <= len(n.args) <= 2 and not n.keywords and not any(isinstance(a, ast.Starred) for a in n.args):
        stop = n.args[-1]
        return expr_edit(src, stop, minus_one(stop))
    if isinstance(n, ast.Slice) and n.upper is not None:
        return expr_edit(src, n.upper, minus_one(n.upper))
    if isinstance(n, ast.Subscript) and isinstance(n.slice, ast.Constant) and type(n.slice.value) is int:
        return expr_edit(src, n.slice, ast.Constant(n.slice.value + 1))


def change_constant(src, n):
    if isinstance(n, ast.Constant):
        if type(n.value) is bool:
            return expr_edit(src, n, ast.Constant(not n.value))
        if type(n.value) is int:
            return expr_edit(src, n, ast.Constant(n.value + 1))


def swap_binop(src, n):
    if isinstance(n, ast.BinOp) and type(n.op) in BINOPS:
        m = copy.deepcopy(n)
        m.op = BINOPS[type(n.op)]()
        return expr_edit(src, n, m)


def negate_condition(src, n):
    if isinstance(n, (ast.If, ast.While)) and not src.line_text(n.lineno).lstrip().startswith("elif"):
        return expr_edit(src, n.test, ast.UnaryOp(op=ast.Not(), operand=copy.deepcopy(n.test)))


def positional(n):
    return [a for a in n.args if not isinstance(a, ast.Starred)] == n.args


def swap_arguments(src, n):
    if isinstance(n, ast.Call) and len(n.args) >= 2 and positional(n):
        (a0, b0), (a1, b1) = src.span(n.args[0]), src.span(n.args[1])
        t0, t1 = src.text(a0, b0), src.text(a1, b1)
        if t0 != t1:
            return [(a0, b0, t1), (a1, b1, t0)]


def remove_argument(src, n):
    if isinstance(n, ast.Call) and positional(n) and (len(n.args) >= 2 or (n.args and n.keywords)):
        m = copy.deepcopy(n)
        if m.keywords:
            m.keywords.pop()
        else:
            m.args.pop()
        return expr_edit(src, n, m)


def is_elif(src, n):
    return len(n.orelse) == 1 and isinstance(n.orelse[0], ast.If) \
        and src.line_text(n.orelse[0].lineno).lstrip().startswith("elif")


def drop_else(src, n):
    if isinstance(n, ast.If) and n.orelse:
        a = src.off(n.body[-1].end_lineno, n.body[-1].end_col_offset)
        b = src.off(n.orelse[-1].end_lineno, n.orelse[-1].end_col_offset)
        return [(a, b, "")]


def swap_if_else(src, n):
    if isinstance(n, ast.If) and n.orelse and not is_elif(src, n) \
            and n.body[0].lineno != n.lineno:
        (a0, b0), (a1, b1) = src.line_span(n.body[0], n.body[-1]), src.line_span(n.orelse[0], n.orelse[-1])
        t0, t1 = src.text(a0, b0), src.text(a1, b1)
        if t0 != t1 and src.line_text(n.orelse[0].lineno).startswith(src.line_text(n.body[0].lineno)[:n.body[0].col_offset]):
            return [(a0, b0, t1), (a1, b1, t0)]


def remove_statement(src, n, block):
    if len(block) < 2 or not isinstance(n, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr)):
        return None
    if isinstance(n, ast.Expr) and not isinstance(n.value, ast.Call):
        return None  # docstrings and bare names
    line = src.line_text(n.lineno)
    if line[:n.col_offset].strip() or n.lineno == n.end_lineno and line[n.end_col_offset:].strip(" \t\r\n;"):
        return None  # shares its line with other code
    a = src.starts[n.lineno - 1]
    b = src.starts[n.end_lineno] if n.end_lineno < len(src.starts) else len(src.b)
    return [(a, b, "")]


EXPR_MODIFIERS = [invert_compare, swap_boolop, off_by_one, change_constant, swap_binop, negate_condition,
                  swap_arguments, remove_argument, drop_else, swap_if_else]
MODIFIER_NAMES = [f.__name__ for f in EXPR_MODIFIERS] + ["remove_statement"]


def functions(tree):
    """(qualified name, function node) for every function and method."""
    out = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out.append((prefix + child.name, child))
                visit(child, prefix + child.name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            else:
                visit(child, prefix)
    visit(tree, "")
    return out


def own_nodes(fn):
    """The nodes of fn's body, not those of functions or classes in it,
    with the statement block each statement sits in."""
    out = []

    def visit(node, block):
        for field, value in ast.iter_fields(node):
            if isinstance(value, list) and value and all(isinstance(v, ast.stmt) for v in value):
                for v in value:
                    if not isinstance(v, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                        out.append((v, value))
                        visit(v, value)
            elif isinstance(value, list):
                for v in value:
                    if isinstance(v, ast.AST) and not isinstance(v, ast.Lambda):
                        out.append((v, None))
                        visit(v, None)
            elif isinstance(value, ast.AST) and not isinstance(value, ast.Lambda):
                out.append((value, None))
                visit(value, None)
    for stmt in fn.body:
        if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.append((stmt, fn.body))
            visit(stmt, fn.body)
    return out


def sites(root, rel):
    path = os.path.join(root, rel)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        tree = ast.parse(text, rel)
    except SyntaxError:
        return []
    src = Source(text)
    out = []
    for name, fn in functions(tree):
        for node, block in own_nodes(fn):
            if not hasattr(node, "lineno"):
                continue
            for mod in EXPR_MODIFIERS:
                edits = mod(src, node)
                if edits:
                    out.append((rel, name, mod.__name__, node.lineno, node.col_offset, edits))
            if block is not None:
                edits = remove_statement(src, node, block)
                if edits:
                    out.append((rel, name, "remove_statement", node.lineno, node.col_offset, edits))
    return out


def apply_edits(b, edits):
    for a, e, t in sorted(edits, reverse=True):
        b = b[:a] + t.encode("utf-8") + b[e:]
    return b.decode("utf-8")


def diff(rel, old, new):
    lines = difflib.unified_diff(old.splitlines(True), new.splitlines(True), "a/" + rel, "b/" + rel)
    out = []
    for line in lines:
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)


def rewrite_sites(root, seed, n):
    found = []
    for rel in source_files(root):
        with open(os.path.join(root, rel), encoding="utf-8") as f:
            text = f.read()
        try:
            tree = ast.parse(text, rel)
        except SyntaxError:
            continue
        lines = text.splitlines(True)
        for name, fn in functions(tree):
            if ast.get_docstring(fn) is None or len(fn.body) < 2:
                continue
            first = min([d.lineno for d in fn.decorator_list] + [fn.lineno])
            doc_end = fn.body[0].end_lineno
            found.append({"file": rel, "function": name, "line": fn.lineno,
                          "header": "".join(lines[first - 1:doc_end]),
                          "body_start": doc_end + 1, "body_end": fn.end_lineno,
                          "body": "".join(lines[doc_end:fn.end_lineno]),
                          "indent": " " * fn.body[1].col_offset, "text": text})
    found.sort(key=lambda x: (x["file"], x["line"]))
    random.Random(seed).shuffle(found)
    return found[:n]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--repo", required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--out")
    ap.add_argument("--rewrite-sites", help="write the functions to rewrite here instead of proposing bugs")
    a = ap.parse_args()
    if a.rewrite_sites:
        picked = rewrite_sites(a.root, a.seed, a.n)
        with open(a.rewrite_sites, "w") as f:
            json.dump({"repo": a.repo, "seed": a.seed, "sites": picked}, f, indent=1, sort_keys=True)
        print("%d functions to rewrite" % len(picked))
        return 0
    if not a.out:
        ap.error("--out is required")
    all_sites = []
    for rel in source_files(a.root):
        all_sites.extend(sites(a.root, rel))
    all_sites.sort(key=lambda s: s[:5])
    random.Random(a.seed).shuffle(all_sites)
    texts, used, picked = {}, set(), []
    for rel, name, mod, line, col, edits in all_sites:
        if len(picked) == a.n:
            break
        if (rel, name, mod) in used:
            continue
        if rel not in texts:
            with open(os.path.join(a.root, rel), encoding="utf-8") as f:
                texts[rel] = f.read()
        old = texts[rel]
        new = apply_edits(old.encode("utf-8"), edits)
        try:
            compile(new, rel, "exec")
        except SyntaxError:
            continue
        if ast.dump(ast.parse(new)) == ast.dump(ast.parse(old)):
            continue
        used.add((rel, name, mod))
        bug = diff(rel, old, new)
        digest = hashlib.sha256(bug.encode("utf-8")).hexdigest()[:8]
        picked.append({"instance_id": "%s.%s.%s" % (a.repo, mod, digest), "repo": a.repo, "file": rel,
                       "function": name, "modifier": mod, "line": line, "bug_patch": bug,
                       "patch": diff(rel, new, old), "strategy": "ast", "seed": a.seed})
    for i in range(a.n):
        c = picked[i] if i < len(picked) else {"empty": True, "reason": "the repository has %d usable sites" % len(picked)}
        with open("%s%d.json" % (a.out, i), "w") as f:
            json.dump(c, f, indent=1, sort_keys=True)
    print("%d sites, %d candidates" % (len(all_sites), len(picked)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
