# The torch_tiny trainer: a small causal language model over bytes,
# trained on CPU with PyTorch. lego renders the data (windows of byte ids
# with a loss flag per target, see tiny.go); this script only trains and
# writes the weights in the layout model.go reads. Run by `lego tool
# tiny-train`, never by hand.
import json
import math
import os
import random
import struct
import sys

import torch

torch.set_num_threads(1)  # one thread: bit-identical weights run after run
torch.use_deterministic_algorithms(True)


def layer_norm(x, w, b):
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), w, b, 1e-5)


class Tiny(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, v, n = cfg["dim"], cfg["vocab"], cfg["ctx"]
        self.cfg = cfg
        p = torch.nn.Parameter
        self.tok = p(torch.randn(v, d) * 0.02)
        self.pos = p(torch.randn(n, d) * 0.02)
        self.blocks = torch.nn.ParameterList()
        for _ in range(cfg["layers"]):
            for shape, init in [((d,), 1), ((d,), 0), ((d, 3 * d), None), ((3 * d,), 0), ((d, d), None), ((d,), 0),
                                ((d,), 1), ((d,), 0), ((d, 4 * d), None), ((4 * d,), 0), ((4 * d, d), None), ((d,), 0)]:
                if init is None:
                    t = torch.randn(*shape) * (1.0 / math.sqrt(shape[0]))
                else:
                    t = torch.full(shape, float(init))
                self.blocks.append(p(t))
        self.lnf_w = p(torch.ones(d))
        self.lnf_b = p(torch.zeros(d))
        self.out_w = p(torch.randn(d, v) * (1.0 / math.sqrt(d)))
        self.out_b = p(torch.zeros(v))
        self.score_w = p(torch.zeros(d))
        self.score_b = p(torch.zeros(1))

    def hidden(self, x):
        cfg = self.cfg
        d, heads = cfg["dim"], cfg["heads"]
        t = x.shape[1]
        h = self.tok[x] + self.pos[:t]
        causal = torch.triu(torch.ones(t, t, dtype=torch.bool), 1)
        for i in range(cfg["layers"]):
            ln1w, ln1b, wqkv, bqkv, wo, bo, ln2w, ln2b, w1, b1, w2, b2 = self.blocks[12 * i:12 * i + 12]
            a = layer_norm(h, ln1w, ln1b) @ wqkv + bqkv
            q, k, v = a.split(d, dim=-1)
            q = q.view(-1, t, heads, d // heads).transpose(1, 2)
            k = k.view(-1, t, heads, d // heads).transpose(1, 2)
            v = v.view(-1, t, heads, d // heads).transpose(1, 2)
            s = (q @ k.transpose(-1, -2)) / math.sqrt(d // heads)
            s = s.masked_fill(causal, float("-inf"))
            o = (torch.softmax(s, dim=-1) @ v).transpose(1, 2).reshape(-1, t, d)
            h = h + o @ wo + bo
            m = torch.relu(layer_norm(h, ln2w, ln2b) @ w1 + b1)
            h = h + m @ w2 + b2
        return layer_norm(h, self.lnf_w, self.lnf_b)

    def tensors(self):
        out = [("tok", self.tok), ("pos", self.pos)]
        names = ["ln1_w", "ln1_b", "qkv_w", "qkv_b", "o_w", "o_b", "ln2_w", "ln2_b", "fc1_w", "fc1_b", "fc2_w", "fc2_b"]
        for i, t in enumerate(self.blocks):
            out.append(("layer%d.%s" % (i // 12, names[i % 12]), t))
        out += [("lnf_w", self.lnf_w), ("lnf_b", self.lnf_b), ("out_w", self.out_w), ("out_b", self.out_b),
                ("score_w", self.score_w), ("score_b", self.score_b)]
        return out


def save(model, out, extra):
    cfg = dict(model.cfg)
    cfg["tensors"] = []
    with open(os.path.join(out, "weights.bin"), "wb") as f:
        for name, t in model.tensors():
            cfg["tensors"].append({"name": name, "shape": list(t.shape)})
            a = t.detach().contiguous().view(-1).tolist()
            f.write(struct.pack("<%df" % len(a), *a))
    cfg.update(extra)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1, sort_keys=True)
        f.write("\n")


def load(model, src):
    with open(os.path.join(src, "config.json")) as f:
        cfg = json.load(f)
    for key in ("vocab", "dim", "layers", "heads", "ctx"):
        if cfg[key] != model.cfg[key]:
            sys.exit("init checkpoint %s has %s=%s, this model %s" % (src, key, cfg[key], model.cfg[key]))
    with open(os.path.join(src, "weights.bin"), "rb") as f:
        raw = f.read()
    off = 0
    with torch.no_grad():
        for name, t in model.tensors():
            n = t.numel()
            t.copy_(torch.tensor(struct.unpack_from("<%df" % n, raw, off)).view(t.shape))
            off += 4 * n


def main():
    job = json.load(open(sys.argv[1]))
    cfg = job["model"]
    torch.manual_seed(job["seed"])
    rng = random.Random(job["seed"])
    model = Tiny(cfg)
    if job.get("init"):
        load(model, job["init"])
    n, w = job["windows"], cfg["ctx"] + 1
    raw = open(job["data"], "rb").read()
    ids = torch.tensor(list(raw[: n * w]), dtype=torch.long).view(n, w)
    flags = torch.tensor(list(raw[n * w: n * w + n * cfg["ctx"]]), dtype=torch.bool).view(n, cfg["ctx"])
    lengths = list(struct.unpack_from("<%di" % n, raw, n * w + n * cfg["ctx"]))
    labels = list(struct.unpack_from("<%df" % n, raw, n * w + n * cfg["ctx"] + 4 * n))
    opt = torch.optim.AdamW(model.parameters(), lr=job["lr"], weight_decay=0.01)
    steps = max(1, job["epochs"] * math.ceil(n / job["batch"]))
    warm = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps))))
    log = []
    step = 0
    for epoch in range(job["epochs"]):
        order = list(range(n))
        rng.shuffle(order)
        total, count = 0.0, 0
        for b in range(0, n, job["batch"]):
            idx = torch.tensor(order[b:b + job["batch"]])
            x, f = ids[idx], flags[idx]
            if job["mode"] == "regressive":
                h = model.hidden(x[:, :-1])
                last = torch.tensor([lengths[i] - 1 for i in idx.tolist()])
                s = h[torch.arange(len(idx)), last] @ model.score_w + model.score_b
                y = torch.tensor([labels[i] for i in idx.tolist()])
                loss = torch.nn.functional.binary_cross_entropy_with_logits(s, y)
            else:
                logits = model.hidden(x[:, :-1]) @ model.out_w + model.out_b
                per = torch.nn.functional.cross_entropy(logits.reshape(-1, cfg["vocab"]), x[:, 1:].reshape(-1), reduction="none")
                fl = f.reshape(-1).float()
                if fl.sum() == 0:
                    continue
                loss = (per * fl).sum() / fl.sum()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            total += loss.item()
            count += 1
        log.append({"epoch": epoch + 1, "loss": round(total / max(count, 1), 6)})
        print("epoch %d loss %.4f" % (epoch + 1, total / max(count, 1)), flush=True)
    save(model, job["out"], {"mode": job["mode"], "steps": step, "log": log})


if __name__ == "__main__":
    main()
