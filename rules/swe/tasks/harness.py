"""lego's test harness: runs inside a task environment (a container of the
env image, or a copy of a directory env) and reports each test's status.

    harness.py --root /testbed --framework pytest --cmd "python3 -m pytest" \
        --run before=test.diff --run after=fix.diff --out results.json

Each --run NAME=PATCHES applies its patches (comma-separated, in order, on
top of what earlier runs applied; none after "=" for none) with
`git apply`, runs the test command and parses the statuses. Output, JSON:

    {"runs": {NAME: {"exit_code": N, "tests": {ID: STATUS}, "messages":
     {ID: first line of the failure}, "log_tail": "..." (timings blanked),
     "timed_out": LIMIT (when killed), "error": "..."}},
     "cwd": where it ran (in a container: the exec root, /lego/exec),
     "git": {...}}

--git-audit T looks at the git history in root before any patch, the
way an agent could: "present" (root/.git exists), "commits" (every commit
object, reachable or not), "after" (those dated after T, Unix seconds),
"log_all" (`git log --all --reflog`: "ID DATE" lines).

STATUS is PASSED, FAILED, ERROR or SKIPPED. Test ids are pytest node ids
(tests/test_x.py::test_y) or unittest ids (tests.test_x.Class.test_y).
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
import shutil
import signal
import subprocess
import sys
import tempfile

PYTEST_LINE = re.compile(r"^(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS) (.+?)(?: - (.*))?$")
UNITTEST_LINE = re.compile(
    r"^(\w+) \(([\w.]+)\)(?:\n[^\n]*?)? \.\.\. (ok|FAIL|ERROR|skipped.*|expected failure|unexpected success)$",
    re.M)
UNITTEST_FAIL = re.compile(r"^(FAIL|ERROR): (\w+) \(([\w.]+)\)\n-+\n(.*?)(?=\n={5,}|\n-{5,}\nRan )", re.M | re.S)

STATUS = {"PASSED": "PASSED", "XFAIL": "PASSED", "FAILED": "FAILED", "XPASS": "FAILED",
          "ERROR": "ERROR", "SKIPPED": "SKIPPED", "ok": "PASSED", "FAIL": "FAILED",
          "expected failure": "PASSED", "unexpected success": "FAILED"}


def unittest_id(name, where):
    # Python 3.11 prints the full id; older ones the class only.
    return where if where.endswith("." + name) else where + "." + name


def parse_pytest(log):
    tests, messages = {}, {}
    for line in log.splitlines():
        m = PYTEST_LINE.match(line)
        if not m:
            continue
        status, test, msg = m.groups()
        tests[test] = STATUS[status]
        if msg and STATUS[status] in ("FAILED", "ERROR"):
            messages[test] = msg.strip()
    return tests, messages


def parse_unittest(log):
    tests, messages = {}, {}
    for name, where, status in UNITTEST_LINE.findall(log):
        if status.startswith("skipped"):
            status = "SKIPPED"
        tests[unittest_id(name, where)] = STATUS.get(status, status)
    for _, name, where, body in UNITTEST_FAIL.findall(log):
        last = [l for l in body.strip().splitlines() if l.strip()]
        if last:
            messages[unittest_id(name, where)] = last[-1].strip()
    return tests, messages


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


def git_audit(root, after):
    if not os.path.exists(os.path.join(root, ".git")):
        return {"present": False}
    git = ["git", "-c", "safe.directory=*", "-C", root]
    objs = subprocess.run(git + ["cat-file", "--batch-all-objects", "--batch-check=%(objectname) %(objecttype)"],
                          capture_output=True, text=True)
    log = subprocess.run(git + ["log", "--all", "--reflog", "--format=%H %cI"], capture_output=True, text=True)
    if objs.returncode != 0 or log.returncode != 0:
        return {"present": True, "error": (objs.stderr + log.stderr).strip()[-500:]}
    ids = [l.split()[0] for l in objs.stdout.splitlines() if l.endswith(" commit")]
    late = []
    if ids:
        dates = subprocess.run(git + ["show", "-s", "--no-walk", "--stdin", "--format=%H %at %ct"],
                               input="\n".join(ids) + "\n", capture_output=True, text=True)
        for line in dates.stdout.split("\n"):
            f = line.split()
            if len(f) == 3 and max(int(f[1]), int(f[2])) > after:
                late.append(f[0])
    return {"present": True, "commits": len(ids), "after": sorted(late), "log_all": log.stdout.splitlines()}


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
    parse = parse_pytest if framework == "pytest" else parse_unittest
    tests, messages = parse(log)
    # No wall time in the result: a rerun of the same tests gives the same
    # bytes (lego repro), and the timings test runners print are blanked.
    run = {"exit_code": p.returncode, "tests": tests, "messages": messages,
           "log_tail": TIMING.sub(r"\1 <t>s", log[-4000:])}
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


# "5 passed in 0.03s" (pytest), "Ran 4 tests in 0.001s" (unittest).
TIMING = re.compile(r"\b(in|took) \d+(?:\.\d+)?s\b")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--copy", action="store_true", help="work on a copy of root (a directory env)")
    ap.add_argument("--git", help="with --copy: a .git directory to put in the copy (a real instance's history)")
    ap.add_argument("--framework", choices=["pytest", "unittest"], required=True)
    ap.add_argument("--cmd", required=True)
    ap.add_argument("--run", action="append", default=[], help="NAME=PATCH[,PATCH...]")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds a test run may take")
    ap.add_argument("--timeout-from", help="results of a clean run: allow ten times its time (at least 20 s)")
    ap.add_argument("--git-audit", type=int, help="report the git history in root, and its commits after this time")
    ap.add_argument("--env-root", help="a directory env made from install_config (venv/, testbed/): run at the "
                    "fixed path it was built at, the directory above --root")
    ap.add_argument("--env-failed", help="the file a failed install step leaves: if it is there, report the env "
                    "as failed and run nothing")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
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
        os.makedirs(top)
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
    audit = git_audit(root, a.git_audit) if a.git_audit is not None else None
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
        runs[name] = run_tests(root, a.cmd, a.framework, a.timeout)
        why = cannot_start(runs[name])
        if why:
            print("lego-infra-error: harness: run %s: %s" % (name, why), file=sys.stderr)
            return INFRA_EXIT
    out = {"runs": runs, "cwd": os.getcwd()}
    if audit is not None:
        out["git"] = audit
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
