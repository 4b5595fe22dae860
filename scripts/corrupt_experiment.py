#!/usr/bin/env python3
"""Corrupt a lego cache on purpose and check what the next build serves.

A workspace of 50 genrules: 5 chains of 5 producers (each reads the one
before; the last of each chain is executable) and 25 consumers, one per
producer, which also read knob.txt. Every trial damages one cached output
of a producer (or one action-cache entry), sets knob.txt to a value never
used before so that all the consumers run again and read the producers'
outputs from the store, builds, and compares every file in lego-out with
the bytes a clean build makes.

    scripts/corrupt_experiment.py [--lego bin/lego] [--trials 60] [--seed 1]

It prints one row per kind of damage: trials, in how many the damaged
target ran again (not needed where lego-out alone was hit, or a lost
executable copy is made again from its blob), how many served bad bytes
(any output in lego-out, its bytes or execute bit, differing from a clean
build's, or a failed build), and how many left a corrupt file in the
store. A trial that went wrong is followed by a fresh cache, so each
counts on its own. It exits 1 when any trial served bad bytes.
"""

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

CHAINS, DEPTH = 5, 5


def build_file():
    rules = []
    for c in range(CHAINS):
        for i in range(DEPTH):
            src = f"c{c}.txt" if i == 0 else f":p{c}_{i - 1}"
            chmod = " && chmod +x $@" if i == DEPTH - 1 else ""
            rules.append(
                f'genrule(name = "p{c}_{i}", srcs = ["{src}"], outs = ["p{c}_{i}.out"], '
                f'cmd = "{{ cat $(SRCS) | sha256sum; for n in $$(seq 1 40); do echo line $$n of p{c}_{i}; done; }} > $@{chmod}")'
            )
            rules.append(
                f'genrule(name = "q{c}_{i}", srcs = [":p{c}_{i}", "knob.txt"], outs = ["q{c}_{i}.out"], '
                f'cmd = "cat $(SRCS) | sha256sum > $@")'
            )
    return "\n".join(rules) + "\n"


def write_workspace(root, knob):
    os.makedirs(os.path.join(root, "p"), exist_ok=True)
    with open(os.path.join(root, "WORKSPACE"), "w") as f:
        f.write('workspace(name = "corrupt")\n')
    with open(os.path.join(root, "p", "BUILD"), "w") as f:
        f.write(build_file())
    for c in range(CHAINS):
        with open(os.path.join(root, "p", f"c{c}.txt"), "w") as f:
            f.write(f"chain {c}\n")
    set_knob(root, knob)


def set_knob(root, knob):
    p = os.path.join(root, "p", "knob.txt")
    tmp = p + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"knob {knob}\n")
    os.replace(tmp, p)


def build(lego, root, cache, events):
    r = subprocess.run(
        [lego, "build", "//...", "--cache_dir=" + cache, "--progress=none", "--build_event_json_file=" + events],
        cwd=root, capture_output=True, text=True)
    evs = []
    if os.path.exists(events):
        with open(events) as f:
            evs = [json.loads(line) for line in f if line.strip()]
    return r, evs


def outputs(root):
    out = {}
    d = os.path.join(root, "lego-out", "p")
    for name in sorted(os.listdir(d)):
        p = os.path.join(d, name)
        if os.path.isfile(p) and name.endswith(".out"):
            with open(p, "rb") as f:
                out[name] = (hashlib.sha256(f.read()).hexdigest(), os.stat(p).st_mode & 0o111 != 0)
    return out


def corrupt_files(cache):
    bad = []
    for sub in ("cas", "cas-x"):
        for dirpath, _, files in os.walk(os.path.join(cache, sub)):
            for name in files:
                p = os.path.join(dirpath, name)
                with open(p, "rb") as f:
                    if hashlib.sha256(f.read()).hexdigest() != name:
                        bad.append(p)
    return bad


def flip_in_place(p, rng, keep_mtime):
    st = os.stat(p)
    os.chmod(p, 0o644)  # chmod u+w, as a user editing a read-only output does
    with open(p, "r+b") as f:
        i = rng.randrange(st.st_size)
        f.seek(i)
        b = f.read(1)
        f.seek(i)
        f.write(bytes([b[0] ^ (1 << rng.randrange(8))]))
    if keep_mtime:
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))


def replace_flipped(p, rng):
    with open(p, "rb") as f:
        b = bytearray(f.read())
    i = rng.randrange(len(b))
    b[i] ^= 1 << rng.randrange(8)
    tmp = p + ".new"
    with open(tmp, "wb") as f:
        f.write(b)
    os.chmod(tmp, os.stat(p).st_mode & 0o777)
    os.replace(tmp, p)


def truncate(p, rng):
    os.chmod(p, 0o644)
    os.truncate(p, rng.randrange(os.stat(p).st_size))


def append(p, rng):
    os.chmod(p, 0o644)
    with open(p, "ab") as f:
        f.write(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9))))


def damage_ac(p, rng):
    with open(p, "rb") as f:
        b = bytearray(f.read())
    how = rng.choice(["truncate", "flip", "append", "empty"])
    if how == "truncate":
        b = b[:rng.randrange(len(b))]
    elif how == "flip":
        i = rng.randrange(len(b))
        b[i] ^= 1 << rng.randrange(8)
    elif how == "append":
        b += b"\x12\x04junk"
    else:
        b = b""
    with open(p, "wb") as f:
        f.write(b)


KINDS = [
    "in-place flip (lego-out edit)",
    "in-place flip, mtime restored",
    "replaced file, same-size flip",
    "truncation",
    "append",
    "deletion",
    "action-cache damage",
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lego", default="bin/lego")
    ap.add_argument("--trials", type=int, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    a = ap.parse_args()
    lego = os.path.abspath(a.lego)
    rng = random.Random(a.seed)
    base = tempfile.mkdtemp(prefix="lego-corrupt-")
    try:
        # The good bytes: the producers' from a clean build, the consumers'
        # for any knob from what their command computes (checked against
        # the clean build).
        clean = os.path.join(base, "clean")
        write_workspace(clean, 0)
        r, _ = build(lego, clean, os.path.join(base, "clean-cache"), os.path.join(base, "ev.json"))
        if r.returncode != 0:
            sys.exit(f"clean build failed:\n{r.stderr}")
        good = {}
        for c in range(CHAINS):
            for i in range(DEPTH):
                p = os.path.join(clean, "lego-out", "p", f"p{c}_{i}.out")
                with open(p, "rb") as f:
                    good[f"p{c}_{i}.out"] = (f.read(), os.stat(p).st_mode & 0o111 != 0)

        def expected(knob):
            out = {}
            for name, (b, x) in good.items():
                out[name] = (hashlib.sha256(b).hexdigest(), x)
                q = hashlib.sha256(b + f"knob {knob}\n".encode()).hexdigest() + "  -\n"
                out["q" + name[1:]] = (hashlib.sha256(q.encode()).hexdigest(), False)
            return out

        if outputs(clean) != expected(0) or len(good) != CHAINS * DEPTH:
            sys.exit("the consumers' outputs are not what this script expects")

        root, cache = os.path.join(base, "ws"), os.path.join(base, "cache")
        knob = 0
        write_workspace(root, knob)

        def fresh():
            # A trial that went wrong leaves damage behind: the next starts
            # from a new cache, so that trials are independent.
            for d in (cache, os.path.join(root, "lego-out")):
                if os.path.exists(d):
                    subprocess.run(["chmod", "-R", "u+w", d])
                    shutil.rmtree(d)
            r, evs = build(lego, root, cache, os.path.join(base, "ev.json"))
            if r.returncode != 0:
                sys.exit(f"build from scratch failed:\n{r.stderr}")
            return {e["label"]: e["key"] for e in evs if e["type"] in ("action_executed", "action_cached")}

        keys = fresh()
        producers = [f"p{c}_{i}" for c in range(CHAINS) for i in range(DEPTH)]

        rows = {k: [0, 0, 0, 0] for k in KINDS}  # trials, noticed, bad served, store left corrupt
        for t in range(a.trials):
            kind = KINDS[t % len(KINDS)]
            target = rng.choice(producers)
            out = os.path.join(root, "lego-out", "p", target + ".out")
            h, executable = expected(knob)[target + ".out"]
            # The store's file of the output: the executable copy is the
            # one lego-out links when the output is executable.
            sub = "cas-x" if executable and rng.random() < 0.5 else "cas"
            blob = os.path.join(cache, sub, h[:2], h)
            if kind == KINDS[0]:
                flip_in_place(out, rng, keep_mtime=False)
            elif kind == KINDS[1]:
                flip_in_place(blob, rng, keep_mtime=True)
            elif kind == KINDS[2]:
                replace_flipped(blob, rng)
            elif kind == KINDS[3]:
                truncate(blob, rng)
            elif kind == KINDS[4]:
                append(blob, rng)
            elif kind == KINDS[5]:
                os.remove(blob)
            else:
                k = keys["//p:" + target]
                damage_ac(os.path.join(cache, "ac", k[:2], k), rng)
            # A knob never set before: every consumer misses the cache and
            # runs again, reading the producers' outputs from the store.
            knob = t + 1
            set_knob(root, knob)
            r, evs = build(lego, root, cache, os.path.join(base, "ev.json"))
            ran = {e["label"] for e in evs if e["type"] == "action_executed"}
            row = rows[kind]
            row[0] += 1
            row[1] += "//p:" + target in ran
            bad = r.returncode != 0 or outputs(root) != expected(knob)
            left = bool(corrupt_files(cache))
            row[2] += bad
            row[3] += left
            if bad:
                print(f"trial {t}: {kind} of {target} ({sub}): bad bytes served"
                      + ("" if r.returncode == 0 else f"; build failed:\n{r.stderr}"), file=sys.stderr)
            if bad or left:
                keys = fresh()
        print(f"{'kind':32} {'trials':>6} {'reran':>6} {'bad bytes served':>17} {'store left corrupt':>19}")
        total = [0, 0, 0, 0]
        for k in KINDS:
            print(f"{k:32} {rows[k][0]:>6} {rows[k][1]:>6} {rows[k][2]:>17} {rows[k][3]:>19}")
            total = [x + y for x, y in zip(total, rows[k])]
        print(f"{'all':32} {total[0]:>6} {total[1]:>6} {total[2]:>17} {total[3]:>19}")
        return 1 if total[2] else 0
    finally:
        if a.keep:
            print("kept", base, file=sys.stderr)
        else:
            subprocess.run(["chmod", "-R", "u+w", base])
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
