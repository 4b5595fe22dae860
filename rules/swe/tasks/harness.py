"""lego's test harness: runs inside a task environment (a container of the
env image, or a copy of a directory env) and reports each test's status.

    harness.py --root /testbed --framework pytest --cmd "python3 -m pytest" \
        --run before=test.diff --run after=fix.diff --out results.json \
        [--scope-from test.diff] [--git-audit T [--base COMMIT]]

Each --run NAME=PATCHES applies its patches (comma-separated, in order, on
top of what earlier runs applied; none after "=" for none) with
`git apply`, runs the test command and parses the statuses. Output, JSON:

    {"runs": {NAME: {"exit_code": N, "tests": {ID: STATUS}, "messages":
     {ID: first line of the failure}, "log_tail": "..." (timings blanked),
     "timed_out": LIMIT (when killed), "error": "..."}},
     "cwd": where it ran (in a container: the exec root, /lego/exec),
     "git": {...}, "scope": {...}}

--framework names the runner whose output is parsed: pytest (the -rA
summary, which the harness asks for), unittest (-v lines; the command
must pass -v), django (tests/runtests.py --verbosity 2) or sympy
(bin/test, --verbose for every test's name). STATUS is PASSED, FAILED,
ERROR or SKIPPED (an expected failure is PASSED, an unexpected success
FAILED). Test ids are those SWE-bench instances list: pytest node ids
(tests/test_x.py::test_y); unittest ids (tests.test_x.Class.test_y);
django "test_y (app.tests.Class)", or the docstring's first line for a
test that has one (what the runner prints instead of the name); sympy
the bare function name (test_y).

--scope-from PATCH runs, as SWE-bench's harness does, only the test files
PATCH (the instance's test_patch) touches: the .py files it leaves in
the tree (a file it deletes is not passed) are appended, shell-quoted,
to --cmd, as paths (pytest, sympy), dotted modules (unittest:
tests.test_x) or runtests.py labels (django: the path under tests/,
dotted: auth_tests.test_views). "scope" records it: {"mode": "touched",
"files": [...], "args": [...]}, or {"mode": "all", "why": "..."} when
PATCH touches no .py file and the whole suite runs.

--git-audit T looks at the git history in root before any patch, the
way an agent could: "present" (root/.git exists), "commits" (every commit
object, reachable or not), "after" (those dated after T, Unix seconds),
"log_all" (`git log --all --reflog`: "ID DATE" lines). With --base
COMMIT (a real task's base commit) it also lists what lies beyond the
base: "beyond_base", the commit objects that are not COMMIT or an
ancestor of it, and "beyond_base_objects", how many other objects
(trees, blobs, tags) COMMIT does not reach; either is a leak. "after" is
then information only: a base is often dated after created_at (a pull
request rebased), and its ancestors are not the fix. Without --base (a
synthetic env, T = 0) "after" is every commit there is.

A patch that does not apply ends the run with "error" set and no tests.
A patch named *.json is a candidate from modify.py: its "bug_patch" is
applied; an empty candidate gives {"empty": true} and runs nothing.

Tests that could not start at all (the env's test command not found, no
pytest in the env) are no outcome of the code: the harness writes no
results, prints "lego-infra-error: harness: WHY" on stderr and exits 75,
lego's convention for an infrastructure failure (executors.InfraExit),
so that the action fails as the harness's and is not cached.
"""

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile

STATUS = {"PASSED": "PASSED", "XFAIL": "PASSED", "FAILED": "FAILED", "XPASS": "FAILED",
          "ERROR": "ERROR", "SKIPPED": "SKIPPED", "ok": "PASSED", "FAIL": "FAILED",
          "expected failure": "PASSED", "unexpected success": "FAILED"}
# When one id is reported twice (a test's line and its subtest's, two
# sympy files with the same function), the worse status stands.
RANK = {"PASSED": 0, "SKIPPED": 1, "FAILED": 2, "ERROR": 3}


def record(tests, test, status):
    old = tests.get(test)
    if old is None or RANK[status] > RANK[old]:
        tests[test] = status


def last_line(body):
    lines = [l.strip() for l in body.splitlines() if l.strip()]
    return lines[-1] if lines else ""


# pytest -rA, the short test summary: "PASSED tests/test_x.py::test_y",
# "FAILED tests/test_x.py::test_z - AssertionError: ...". With -v the
# progress lines name each test too ("tests/test_x.py::test_y PASSED
# [ 50%]"); those are the only place a skipped test's id is printed (the
# summary's "SKIPPED [1] tests/test_x.py:12: reason" names a line).
PYTEST_LINE = re.compile(r"^(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS) (.+)$")
PYTEST_SKIP_SUMMARY = re.compile(r"^SKIPPED \[\d+\] (.*?): ")
PYTEST_VERBOSE = re.compile(r"^(\S+::.+?) (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)(?: \(.*\))?\s+\[\s*\d+%\]\s*$")


def split_nodeid(s):
    """A summary line's node id and what follows it: the id ends at the
    first space outside brackets (a parameter may hold spaces); after it
    comes " - message" (or, for XPASS before pytest 8, " reason")."""
    depth = 0
    for i, c in enumerate(s):
        if c == "[":
            depth += 1
        elif c == "]":
            depth = max(0, depth - 1)
        elif c == " " and depth == 0:
            rest = s[i + 1:]
            return s[:i], rest[2:] if rest.startswith("- ") else ""
    return s.rstrip(), ""


def parse_pytest(log):
    tests, messages, verbose = {}, {}, {}
    for line in log.splitlines():
        m = PYTEST_VERBOSE.match(line)
        if m:
            verbose[m.group(1)] = STATUS[m.group(2)]
            continue
        m = PYTEST_SKIP_SUMMARY.match(line)
        if m:
            # pytest 8 -v names the test here; pytest 7 only its line.
            if "::" in m.group(1):
                record(tests, m.group(1), "SKIPPED")
            continue
        m = PYTEST_LINE.match(line)
        if not m:
            continue
        status, (test, msg) = STATUS[m.group(1)], split_nodeid(m.group(2))
        record(tests, test, status)
        if msg.strip() and status in ("FAILED", "ERROR"):
            messages[test] = msg.strip()
    for test, status in verbose.items():
        # The summary is the authority; a test that fails and then errors
        # in teardown has two progress lines.
        tests.setdefault(test, status)
    return tests, messages


# unittest's verbose lines (python -m unittest -v, Django's runner at
# --verbosity 2): "test_x (mod.Class) ... ok"; Python 3.11 and later
# print the full id in the parentheses, "test_x (mod.Class.test_x)". A
# test with a docstring puts its first line on a line of its own, before
# " ... ". Output the test prints lands between " ... " and the status,
# which is then on a later line. A failing subtest is an indented line of
# its own: "  test_x (mod.Class.test_x) (i=1) ... FAIL".
UT_HEAD = re.compile(r"^(\w+) \(([\w.]+)\)(?: \.\.\. ?(.*))?$")
UT_DOC = re.compile(r"^(.*) \.\.\. ?(.*)$")
UT_SUB = re.compile(r"^\s+(\w+) \(([\w.]+)\) \(.*\) \.\.\. (FAIL|ERROR)\s*$")
UT_STATUS = re.compile(r"^(ok|FAIL|ERROR|skipped\b.*|expected failure|unexpected success)\s*$")
# The failure section: "FAIL: test_x (mod.Class)", the docstring's line,
# a rule of dashes, the traceback, up to the next section or the summary.
UT_FAIL = re.compile(r"^(FAIL|ERROR): (\w+) \(([\w.]+)\)(?: \([^\n]*\))?\n(?:([^\n]*)\n)??-{10,}\n(.*?)(?=\n={10,}\n|\n-{10,}\nRan |\Z)",
                     re.M | re.S)


def ut_status(s):
    return "SKIPPED" if s.startswith("skipped") else STATUS[s]


def parse_verbose(log, ident):
    """Statuses from unittest-style verbose output; ident(name, where,
    doc) makes a test's id."""
    tests, messages = {}, {}
    pending = None  # the test whose status has not been printed yet
    lines = log.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        m = UT_SUB.match(line)
        if m:
            record(tests, ident(m.group(1), m.group(2), None), STATUS[m.group(3)])
            pending = None  # a test with a failing subtest prints no status of its own
            continue
        m = UT_HEAD.match(line)
        if m:
            name, where, rest = m.groups()
            doc = None
            if rest is None:
                # No " ... " on the line: the docstring's line follows.
                d = UT_DOC.match(lines[i]) if i < len(lines) else None
                if not d:
                    pending = None
                    continue
                doc, rest = d.group(1), d.group(2)
                i += 1
            pending = ident(name, where, doc)
            s = UT_STATUS.match(rest)
            if s:
                record(tests, pending, ut_status(s.group(1)))
                pending = None
            elif UT_HEAD.match(rest):
                # Before Python 3.11 a test whose subtest failed prints
                # nothing, and the next test starts on its line.
                pending = None
                i -= 1
                lines[i] = rest
            continue
        if pending is not None:
            s = UT_STATUS.match(line)
            if s:
                record(tests, pending, ut_status(s.group(1)))
                pending = None
    for kind, name, where, doc, body in UT_FAIL.findall(log):
        test = ident(name, where, doc or None)
        # A test whose status line was lost in its output (or a subtest
        # failure, which Python before 3.11 does not print) still failed.
        record(tests, test, "FAILED" if kind == "FAIL" else "ERROR")
        if body.strip():
            messages.setdefault(test, last_line(body))
    return tests, messages


def unittest_id(name, where, doc=None):
    # unittest's own id, mod.Class.test_x, whichever form was printed.
    return where if where.endswith("." + name) else where + "." + name


def django_id(name, where, doc=None):
    """The id published SWE-bench django instances use: "test_x
    (mod.Class)", or the docstring's first line when the test has one
    (what the runner prints for it)."""
    if doc:
        return doc.strip()
    if where.endswith("." + name):
        where = where[:-len(name) - 1]
    return "%s (%s)" % (name, where)


def parse_unittest(log):
    return parse_verbose(log, unittest_id)


def parse_django(log):
    return parse_verbose(log, django_id)


# sympy's bin/test. With --verbose each test has a line: its name, then
# "ok", "F" (failed), "E" (an exception), "f" (expected to fail), "X"
# (passed, expected to fail), or a skip: "s" (with the reason before it,
# or " - "), "w" (slow, not run), "K", "T" (skipped as interrupted or
# timed out; a bare "T" is a test that timed out). The file's verdict,
# "[OK]" or "[FAIL]", may end the line. Without --verbose a file's line
# holds one character per test and no names, so only the failures
# section names tests: "____ sympy/x/tests/test_y.py:test_z ____" and the
# traceback; its last line says AssertionError for a failure, anything
# else for an exception.
SYMPY_LINE = re.compile(r"^(test_\w+)(?: (.*?))?\s*(?:\[(?:OK|FAIL)\])?\s*$")
SYMPY_END = re.compile(r"^(?:(.*?) )?(ok|F|E|f|X|s|w|K|T)$")
SYMPY_LATE = re.compile(r"^(ok|F|E|f|X)\s*(?:\[(?:OK|FAIL)\])?\s*$")
SYMPY_HEAD = re.compile(r"^_* (\S+?\.py):(\w+) _*$")
SYMPY_XPASSED = re.compile(r"^\S+\.py: (test_\w+)$")  # a line of the "xpassed tests" section
SYMPY_RULE = re.compile(r"^(?:_{10,}|={10,}.*)$")
SYMPY_STATUS = {"ok": "PASSED", "F": "FAILED", "E": "ERROR", "f": "PASSED", "X": "FAILED",
                "s": "SKIPPED", "w": "SKIPPED", "K": "SKIPPED"}


def sympy_status(reason, char):
    if char == "T":
        # A skip prints its reason ("Timeout T"); a timed-out test, none.
        return "SKIPPED" if reason else "ERROR"
    return SYMPY_STATUS[char]


def parse_sympy(log):
    tests, messages = {}, {}
    pending = None
    lines = log.splitlines()
    for line in lines:
        m = SYMPY_LINE.match(line)
        if m:
            name, rest = m.group(1), (m.group(2) or "").strip()
            e = SYMPY_END.match(rest) if rest else None
            status = sympy_status((e.group(1) or "").strip(), e.group(2)) if e else None
            if status:
                record(tests, name, status)
                pending = None
            else:
                pending = name
            continue
        if pending is not None:
            s = SYMPY_LATE.match(line)
            if s:
                record(tests, pending, SYMPY_STATUS[s.group(1)])
                pending = None
    i, xpassed = 0, False
    while i < len(lines):
        line = lines[i]
        m = SYMPY_HEAD.match(line)
        i += 1
        if not m:
            if re.match(r"^_+ xpassed tests _+$", line):
                xpassed = True
            elif xpassed:
                x = SYMPY_XPASSED.match(line)
                if x:
                    tests.setdefault(x.group(1), "FAILED")
                else:
                    xpassed = False
            continue
        body = []
        while i < len(lines) and not SYMPY_RULE.match(lines[i]) and not SYMPY_HEAD.match(lines[i]) \
                and "tests finished:" not in lines[i]:
            body.append(lines[i])
            i += 1
        name, msg = m.group(2), last_line("\n".join(body))
        if name not in tests:
            record(tests, name, "FAILED" if msg.startswith("AssertionError") else "ERROR")
        if msg:
            messages.setdefault(name, msg)
    return tests, messages


PARSERS = {"pytest": parse_pytest, "unittest": parse_unittest, "django": parse_django, "sympy": parse_sympy}


# --scope-from: the test files a patch touches, as the test command's
# arguments (SWE-bench's harness runs those, not the whole suite).
HUNK = re.compile(r"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")


def unquote_path(s):
    """A path as git writes it in a header: C-quoted when it holds
    unusual bytes ("a/t\\303\\251st.py")."""
    if not (len(s) >= 2 and s[0] == '"' and s[-1] == '"'):
        return s
    out, i, body = bytearray(), 0, s[1:-1]
    esc = {"n": 10, "t": 9, '"': 34, "\\": 92, "a": 7, "b": 8, "f": 12, "r": 13, "v": 11}
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            n = body[i + 1]
            if n in "01234567" and i + 4 <= len(body):
                out.append(int(body[i + 1:i + 4], 8))
                i += 4
                continue
            out.append(esc.get(n, ord(n)))
            i += 2
            continue
        out.extend(c.encode("utf-8"))
        i += 1
    return out.decode("utf-8", "replace")


def header_new_path(rest):
    """The b/ path of "diff --git a/X b/Y" (rest is what follows
    "diff --git "): X and Y are the same but for a rename, and may hold
    spaces."""
    if rest.endswith('"'):
        j = rest.rfind(' "', 0, len(rest) - 1)
        return strip_side(unquote_path(rest[j + 1:]), "b/") if j >= 0 else None
    n = len(rest)
    if n % 2 == 1:
        half = n // 2
        old, new = rest[:half], rest[half + 1:]
        if rest[half] == " " and old.startswith("a/") and new.startswith("b/") and old[2:] == new[2:]:
            return new[2:]
    j = rest.find(" b/")
    return rest[j + 3:] if j >= 0 else None


def strip_side(path, side):
    return path[len(side):] if path.startswith(side) else path


def touched_files(text):
    """The files a unified diff leaves in the tree, in order: each file's
    new path; a file it deletes (+++ /dev/null) is not there to run."""
    files = []  # [path, deleted]
    cur = None
    old = new = 0  # lines left in the current hunk
    for line in text.splitlines():
        if old > 0 or new > 0:
            if line.startswith("\\"):
                continue  # "\ No newline at end of file"
            if line.startswith("-"):
                old -= 1
            elif line.startswith("+"):
                new -= 1
            else:
                old, new = old - 1, new - 1
            continue
        if line.startswith("diff --git "):
            cur = [header_new_path(line[len("diff --git "):]), False, False]  # path, deleted, has +++
            files.append(cur)
        elif line.startswith("deleted file mode") and cur is not None:
            cur[1] = True
        elif line.startswith("+++ "):
            target = line[4:].split("\t")[0].rstrip()
            if cur is None or cur[2]:
                # A plain unified diff: no "diff --git" line per file.
                cur = [None, False, False]
                files.append(cur)
            cur[2] = True
            if target == "/dev/null":
                cur[1] = True
            else:
                cur[0] = strip_side(unquote_path(target), "b/")
        else:
            m = HUNK.match(line)
            if m:
                old = int(m.group(1)) if m.group(1) is not None else 1
                new = int(m.group(2)) if m.group(2) is not None else 1
    seen, out = set(), []
    for path, deleted, _ in files:
        if path and not deleted and path not in seen:
            seen.add(path)
            out.append(path)
    return out


def test_arg(framework, path):
    """How the framework's runner is told to run one test file."""
    stem = path[:-len(".py")]
    if framework == "unittest":
        return stem.replace("/", ".")
    if framework == "django":
        # runtests.py takes labels relative to tests/: auth_tests.test_views.
        return strip_side(stem, "tests/").replace("/", ".")
    return path  # pytest, sympy's bin/test: the path


def scope_of(patch, framework):
    """The "scope" record and the arguments to append to the test command."""
    with open(patch, encoding="utf-8", errors="replace") as f:
        files = [p for p in touched_files(f.read()) if p.endswith(".py")]
    if not files:
        return {"mode": "all", "why": "%s touches no .py file that stays in the tree" % os.path.basename(patch)}, []
    args = [test_arg(framework, p) for p in files]
    return {"mode": "touched", "files": files, "args": args}, args


def apply(root, patch):
    with open(patch, "rb") as f:
        body = f.read()
    changed = None
    if patch.endswith(".json"):
        cand = json.loads(body)
        body = cand.get("bug_patch", "").encode("utf-8")
        changed = cand.get("file")
    if not body.strip():
        return None
    p = subprocess.run(["git", "apply", "--whitespace=nowarn", "-"], input=body.decode("utf-8"),
                       cwd=root, capture_output=True, text=True)
    if p.returncode != 0:
        return "patch %s does not apply: %s" % (os.path.basename(patch), (p.stderr or p.stdout).strip()[-500:])
    if changed and changed.endswith(".py"):
        # A candidate that does not even compile is no bug to look for.
        path = os.path.join(root, changed)
        try:
            with open(path, encoding="utf-8") as f:
                compile(f.read(), path, "exec")
        except (SyntaxError, ValueError) as e:
            return "%s does not compile with the bug: %s" % (changed, e)
    return None


def git_audit(root, after, base=None):
    if not os.path.exists(os.path.join(root, ".git")):
        return {"present": False}
    git = ["git", "-c", "safe.directory=*", "-C", root]
    objs = subprocess.run(git + ["cat-file", "--batch-all-objects", "--batch-check=%(objectname) %(objecttype)"],
                          capture_output=True, text=True)
    log = subprocess.run(git + ["log", "--all", "--reflog", "--format=%H %cI"], capture_output=True, text=True)
    if objs.returncode != 0 or log.returncode != 0:
        return {"present": True, "error": (objs.stderr + log.stderr).strip()[-500:]}
    kinds = dict(l.split()[:2] for l in objs.stdout.splitlines() if l.strip())
    ids = [o for o, k in kinds.items() if k == "commit"]
    late = []
    if ids:
        dates = subprocess.run(git + ["show", "-s", "--no-walk", "--stdin", "--format=%H %at %ct"],
                               input="\n".join(ids) + "\n", capture_output=True, text=True)
        for line in dates.stdout.split("\n"):
            f = line.split()
            if len(f) == 3 and max(int(f[1]), int(f[2])) > after:
                late.append(f[0])
    audit = {"present": True, "commits": len(ids), "after": sorted(late), "log_all": log.stdout.splitlines()}
    if base is None:
        return audit
    # What the base's tree and history account for; anything else in the
    # object store (a later commit, or a blob of the fix without it) is
    # beyond the base. Refs and reflogs can only name objects in the
    # store (git log --all --reflog above fails on one that is not), so
    # this covers them too.
    reach = subprocess.run(git + ["rev-list", "--objects", base + "^{commit}", "--"], capture_output=True, text=True)
    if reach.returncode != 0:
        return {"present": True, "base": base,
                "error": "base commit %s: %s" % (base, reach.stderr.strip()[-500:])}
    seen = {l.split(" ", 1)[0] for l in reach.stdout.splitlines() if l.strip()}
    beyond = [o for o in ids if o not in seen]
    audit.update(base=base, beyond_base=sorted(beyond),
                 beyond_base_objects=sum(1 for o, k in kinds.items() if k != "commit" and o not in seen))
    return audit


def run_tests(root, cmd, framework, timeout):
    env = dict(os.environ)
    if framework == "pytest":
        # -rA: one status line per test; no cache directory in the tree.
        env["PYTEST_ADDOPTS"] = (env.get("PYTEST_ADDOPTS", "") + " -rA -p no:cacheprovider").strip()
        env["COLUMNS"] = "400"  # the summary lines are cut at the terminal width
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    # Fixed string hashing: a set's order (and so an assertion message
    # printing a dict built from it) is the same run after run.
    env["PYTHONHASHSEED"] = "0"
    timed_out = False
    # A new session, so that a timeout kills the test command's children too.
    p = subprocess.Popen(cmd, shell=True, cwd=root, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        timed_out = True
    log = out.decode("utf-8", "replace")
    tests, messages = PARSERS[framework](log)
    # No wall time in the result: a rerun of the same tests gives the same
    # bytes (lego repro), and the timings test runners print are blanked.
    run = {"exit_code": p.returncode, "tests": tests, "messages": messages,
           "log_tail": blank_varying(log[-4000:])}
    if timed_out:
        run["timed_out"] = timeout
    return run


# Python saying it has no test framework to run ("python3 -m pytest"
# where pytest is not installed).
NO_FRAMEWORK = re.compile(r"^\S*python[\d.]*: No module named (pytest|unittest)\s*$", re.M)
INFRA_EXIT = 75


def cannot_start(run):
    """Why the test command of run could not start, or None. Only a run
    that reported no test can be one: the shell found no such command
    (127) or could not execute it (126), or Python has no framework."""
    if run["tests"] or run.get("timed_out"):
        return None
    log = run["log_tail"]
    if run["exit_code"] not in (126, 127) and not NO_FRAMEWORK.search(log):
        return None
    last = [l for l in log.splitlines() if l.strip()]
    return "the test command could not start (exit code %s): %s" % (run["exit_code"], last[-1].strip() if last else "no output")


# "5 passed in 0.03s" (pytest), "Ran 4 tests in 0.001s" (unittest),
# "in 1.52 seconds" (sympy).
TIMING = re.compile(r"\b(in|took) \d+(?:\.\d+)? ?s(?:econds)?\b")
# sympy's bin/test picks a random seed each run and prints it.
SEED = re.compile(r"^(random seed:\s+)\d+", re.M)


def blank_varying(log):
    return SEED.sub(r"\1<seed>", TIMING.sub(r"\1 <t>s", log))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root")
    ap.add_argument("--copy", action="store_true", help="work on a copy of root (a directory env)")
    ap.add_argument("--git", help="with --copy: a .git directory to put in the copy (a real instance's history)")
    ap.add_argument("--framework", choices=sorted(PARSERS), required=True)
    ap.add_argument("--cmd")
    ap.add_argument("--scope-from", help="a patch: run only the .py files it touches (its test files)")
    ap.add_argument("--run", action="append", default=[], help="NAME=PATCH[,PATCH...]")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds a test run may take")
    ap.add_argument("--timeout-from", help="results of a clean run: allow ten times its time (at least 20 s)")
    ap.add_argument("--git-audit", type=int, help="report the git history in root, and its commits after this time")
    ap.add_argument("--base", help="with --git-audit: the commit the history must end at")
    ap.add_argument("--env-root", help="a directory env made from install_config (venv/, testbed/): run at the "
                    "fixed path it was built at, the directory above --root")
    ap.add_argument("--env-failed", help="the file a failed install step leaves: if it is there, report the env "
                    "as failed and run nothing")
    ap.add_argument("--out")
    ap.add_argument("--parse-log", help=argparse.SUPPRESS)  # a saved log: print its statuses (the parser tests)
    a = ap.parse_args()
    if a.parse_log:
        with open(a.parse_log, encoding="utf-8", errors="replace") as f:
            tests, _ = PARSERS[a.framework](f.read())
        json.dump(tests, sys.stdout, indent=1, sort_keys=True)
        print()
        return 0
    if not (a.root and a.cmd and a.out):
        ap.error("--root, --cmd and --out are required")
    if a.base and a.git_audit is None:
        ap.error("--base goes with --git-audit")
    scope, cmd = None, a.cmd
    if a.scope_from:
        scope, args = scope_of(a.scope_from, a.framework)
        cmd = " ".join([a.cmd] + [shlex.quote(x) for x in args])
    for spec in a.run:
        for patch in filter(None, spec.partition("=")[2].split(",")):
            if patch.endswith(".json"):
                with open(patch) as f:
                    if json.load(f).get("empty"):
                        with open(a.out, "w") as f:
                            json.dump({"empty": True}, f)
                        return 0
    if a.timeout_from:
        with open(a.timeout_from) as f:
            clean = json.load(f)["runs"].values()
        a.timeout = max(20, int(10 * max((r.get("seconds", 0) for r in clean), default=0)))
    root = a.root
    if a.env_root:
        # Its venv and editable install name the paths they were made at.
        top = os.path.dirname(root)
        try:
            os.makedirs(top)
        except FileExistsError:
            print("harness: %s is in use: a directory env made from install_config runs there, one action at a "
                  "time (lego's sandbox gives each its own /tmp)" % top, file=sys.stderr)
            return 1
        os.symlink(os.path.join(os.path.abspath(a.env_root), "venv"), os.path.join(top, "venv"))
        for name in ("testbed", "lego-env-failed"):
            src = os.path.join(a.env_root, name)
            if os.path.isdir(src):
                shutil.copytree(src, os.path.join(top, name), symlinks=True)
            elif os.path.exists(src):
                shutil.copy(src, os.path.join(top, name))
    if a.env_failed and os.path.exists(a.env_failed):
        with open(a.env_failed, encoding="utf-8", errors="replace") as f:
            why = f.read().strip()
        with open(a.out, "w") as f:
            json.dump({"runs": {}, "env_failed": why or "an install step failed"}, f, indent=1, sort_keys=True)
        return 0
    if a.copy:
        root = os.path.join(tempfile.mkdtemp(), "testbed")
        shutil.copytree(a.root, root, symlinks=True)
        if a.git:
            shutil.copytree(a.git, os.path.join(root, ".git"), symlinks=True)
    audit = git_audit(root, a.git_audit, a.base) if a.git_audit is not None else None
    runs = {}
    for spec in a.run:
        name, _, patches = spec.partition("=")
        err = None
        for patch in filter(None, patches.split(",")):
            err = apply(root, patch)
            if err:
                break
        if err:
            runs[name] = {"exit_code": None, "tests": {}, "messages": {}, "log_tail": "", "error": err}
            break  # later runs would build on a tree that is not what they expect
        runs[name] = run_tests(root, cmd, a.framework, a.timeout)
        why = cannot_start(runs[name])
        if why:
            print("lego-infra-error: harness: run %s: %s" % (name, why), file=sys.stderr)
            return INFRA_EXIT
    out = {"runs": runs, "cwd": os.getcwd()}
    if audit is not None:
        out["git"] = audit
    if scope is not None:
        out["scope"] = scope
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
