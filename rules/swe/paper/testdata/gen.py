# Writes the eval.json fixtures of the paper tests (run: python3 gen.py).
# Runs get turns and a resolved flag whose odds fall with turns; the
# predicted scores favour resolved runs; the curve is the exact
# expectation over k-subsets.
import json, math, random, os

def comb(n, k):
    return math.comb(n, k) if 0 <= k <= n else 0

def make(name, seed, k, n, skill, verifier):
    rnd = random.Random(seed)
    per = []
    for i in range(n):
        runs = []
        base = rnd.uniform(-1, 1)
        for j in range(k):
            turns = max(5, int(rnd.gauss(55 - 20 * base, 18)))
            p = 1 / (1 + math.exp(-(skill + 1.5 * base - (turns - 55) / 12)))
            res = rnd.random() < p
            score = min(0.999, max(0.001, (0.65 if res else 0.35) + rnd.gauss(0, verifier)))
            runs.append({"run": j, "resolved": res, "predicted_score": round(score, 3), "turns": turns})
        per.append({"instance_id": "repo__issue-%d" % (i + 1), "runs": runs})
    curve = []
    for kk in range(1, k + 1):
        tts = best = 0.0
        for inst in per:
            runs = sorted(inst["runs"], key=lambda r: (-r["predicted_score"], r["run"]))
            res = [r["resolved"] for r in runs]
            tts += sum(comb(k - 1 - r, kk - 1) for r in range(k) if res[r]) / comb(k, kk)
            best += 1 - comb(k - sum(res), kk) / comb(k, kk)
        curve.append({"k": kk, "pass@1": None, "tts": round(tts / n, 4), "best": round(best / n, 4)})
    for inst in per:
        res = [r["resolved"] for r in inst["runs"]]
        top = max(inst["runs"], key=lambda r: (r["predicted_score"], -r["run"]))
        inst["pass@1"] = round(sum(res) / k, 4)
        inst["tts"] = 1 if top["resolved"] else 0
        inst["best"] = 1 if any(res) else 0
        inst_order = ["instance_id", "pass@1", "tts", "best", "runs"]
    per = [{key: inst[key] for key in ["instance_id", "pass@1", "tts", "best", "runs"]} for inst in per]
    pass1 = round(sum(i["pass@1"] for i in per) / n, 4)
    for c in curve:
        c["pass@1"] = pass1
    ev = {"name": name, "k": k, "instances": n, "pass@1": pass1,
          "tts@k": curve[-1]["tts"], "best@k": curve[-1]["best"], "curve": curve, "per_instance": per}
    os.makedirs(name, exist_ok=True)
    with open(os.path.join(name, "eval.json"), "w") as f:
        json.dump(ev, f, indent=1)
        f.write("\n")

make("eval_base", 1, 8, 30, -0.6, 0.25)
make("eval_masked", 2, 8, 30, 0.0, 0.2)
make("eval_curriculum", 3, 8, 30, 0.4, 0.15)
