#!/usr/bin/env python3
"""Replays an old build's `lego tool` actions with another lego binary.

usage: replay-tools.py OLD_WORKSPACE NEW_LEGO SCRATCH_DIR [MNEMONIC,...]

Copies OLD_WORKSPACE to SCRATCH_DIR, then runs every `lego tool` action
that its last build ran (lego-out/.lego/actions.json) again with NEW_LEGO,
on the old build's own inputs, and compares each output with the old one.
Rollouts (an agent's session: its observations hold test runners' timings)
and debian-image (debootstrap from a mirror) are left out. A refactor of
lego must leave every one identical.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

from compare_builds import digest  # beside this script

if len(sys.argv) < 4:
    sys.exit(__doc__)
old_ws, new_bin, scratch = sys.argv[1], sys.argv[2], sys.argv[3]
skip = {"Rollout", "DebianImage"}
only = set(sys.argv[4].split(",")) if len(sys.argv) > 4 else set()
if os.path.exists(scratch):
    subprocess.run(["chmod", "-R", "u+w", scratch]); shutil.rmtree(scratch)
shutil.copytree(old_ws, scratch, symlinks=True)
subprocess.run(["chmod", "-R", "u+w", scratch])
recs = json.load(open(os.path.join(old_ws, "lego-out/.lego/actions.json")))
same = differ = failed = 0
for r in recs:
    if r["mnemonic"] in skip or len(r["args"]) < 2 or r["args"][1] != "tool":
        continue
    if only and r["mnemonic"] not in only:
        continue
    out = os.path.join(scratch, r["output"])
    outs = [out]
    if r["mnemonic"] == "GitFetch":  # two outputs: --git (the record's) and --tree
        outs.append(os.path.join(scratch, r["args"][r["args"].index("--tree") + 1]))
    for o in outs:
        if os.path.isdir(o): shutil.rmtree(o)
        elif os.path.exists(o): os.remove(o)
    env = dict(r["env"]); env["TMPDIR"] = tempfile.mkdtemp()
    p = subprocess.run([new_bin] + r["args"][1:], cwd=scratch, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        failed += 1; print("FAILED", r["label"], r["output"], p.stderr[-300:]); continue
    if digest(out) == digest(os.path.join(old_ws, r["output"])):
        same += 1
    else:
        differ += 1; print("DIFFERS", r["label"], r["mnemonic"], r["output"])
print(f"replayed with {new_bin}: {same} identical, {differ} differ, {failed} failed")
