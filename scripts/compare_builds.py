#!/usr/bin/env python3
"""Compares two builds of one workspace, action by action.

usage: compare_builds.py OLD_WORKSPACE NEW_WORKSPACE

Each workspace's lego-out/.lego/actions.json records the actions its last
build ran, with their input digests. An action of the new build whose
inputs (less the lego binary, which differs between two versions of lego)
and arguments (less the binary's path) equal those of the same action in
the old build must have made the same outputs: the script lists those
whose outputs differ, and the actions it could not pair (their inputs
differ because something upstream differed). Exit status 1 when a paired
action's outputs differ.
"""
import hashlib
import json
import os
import sys


def records(ws):
    with open(os.path.join(ws, "lego-out", ".lego", "actions.json")) as f:
        return {(r["label"], r["output"]): r for r in json.load(f)}


def digest(path):
    """sha256 of a file, or of a directory's sorted (path, file digest) list."""
    if os.path.isfile(path):
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    entries = []
    for root, _, files in os.walk(path):
        for name in files:
            p = os.path.join(root, name)
            entries.append((os.path.relpath(p, path), digest(p)))
    return hashlib.sha256(json.dumps(sorted(entries)).encode()).hexdigest()


def comparable(r):
    inputs = {k: v for k, v in r["inputs"].items() if k != "tool:lego"}
    args = r["args"][1:] if r["args"] and r["args"][0].endswith("/lego") else r["args"]
    return inputs, args, r.get("env")


def main(old_ws, new_ws):
    old, new = records(old_ws), records(new_ws)
    same, differ, unpaired = [], [], []
    for key, r in sorted(new.items()):
        o = old.get(key)
        if o is None or comparable(o) != comparable(r):
            unpaired.append(key)
            continue
        a, b = digest(os.path.join(old_ws, r["output"])), digest(os.path.join(new_ws, r["output"]))
        (same if a == b else differ).append(key)
    for label, out in differ:
        print(f"differs: {label} {out}")
    for label, out in unpaired:
        print(f"unpaired (inputs differ): {label} {out}")
    print(f"{len(new)} actions ran in the new build: {len(same)} paired with identical outputs, "
          f"{len(differ)} paired with different outputs, {len(unpaired)} not paired")
    return 1 if differ else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
