#!/usr/bin/env python3
"""Reference fixtures for the optimizer family (Lion, Adan, SophiaG, LOMO, AdaLomo).

Run from the repository root (deterministic; rewrites every file it owns):

    /work/pyref/bin/python tools/reference/make_optimizer_fixtures.py

Every optimizer below is an independent float32 PyTorch implementation written from the
published update rules (the formulas of docs/optimizers.md), not a copy of any library.
Each one trains the tiny LLaMA fixture (collie-models/src/test/resources/fixtures/tiny-llama,
made by make_llama_fixtures.py) for three steps on the three AdamW-parity batches
(`adamw/batch{0,1,2}.input_ids` of tiny-llama/adamw_reference.safetensors, labels = ids,
attention mask all ones, HF causal-LM loss), and stores, per optimizer, in
collie-models/src/test/resources/fixtures/optimizers/<name>.safetensors:

    losses              F32 [3]   loss of step k, computed before its update
    final.<param name>  F32       all 21 parameters after the third step
    hessian.step<k>.labels  I64 [2, 12]   (sophia only) labels sampled from the model's softmax
                                  after step k, used for the Hessian backward (unshifted:
                                  position t's logits against labels[t], mean over all 24)

The metadata entry "info" (JSON) holds the hyper-parameters and tool versions.

LOMO / AdaLomo update each parameter inside backward in the Java port; in exact arithmetic
that equals computing all gradients first and then applying the same per-parameter rule,
which is what this reference does (the global norm for clip_grad_norm is the norm of the
unclipped gradients, as LOMO's first pass measures it).
"""

import argparse
import json
import math
import os

import safetensors
import torch
import torch.nn.functional as F
import transformers
from safetensors.torch import load_file, save_file
from transformers import LlamaForCausalLM

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURES = os.path.join(REPO_ROOT, "collie-models", "src", "test", "resources", "fixtures")

# ---------------------------------------------------------------- the rules, from the math


class Lion:
    """c = b1*m + (1-b1)*g; theta *= 1 - lr*wd; theta -= lr*sign(c); m = b2*m + (1-b2)*g."""

    def __init__(self, params, lr, betas, weight_decay):
        self.params, self.lr, (self.b1, self.b2), self.wd = params, lr, betas, weight_decay
        self.m = [torch.zeros_like(p) for p in params]

    @torch.no_grad()
    def step(self):
        for p, m in zip(self.params, self.m):
            g = p.grad
            p.mul_(1 - self.lr * self.wd)
            c = self.b1 * m + (1 - self.b1) * g
            p.sub_(self.lr * torch.sign(c))
            m.copy_(self.b2 * m + (1 - self.b2) * g)


class Adan:
    """Adan with 'keep' betas (paper beta = 1 - these), optional global clip, proximal weight decay."""

    def __init__(self, params, lr, betas, eps, weight_decay, max_grad_norm, no_prox):
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.wd, self.max_grad_norm, self.no_prox = weight_decay, max_grad_norm, no_prox
        self.t = 0
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.n = [torch.zeros_like(p) for p in params]
        self.prev = [None for _ in params]

    @torch.no_grad()
    def step(self):
        self.t += 1
        b1, b2, b3 = self.betas
        c = 1.0
        if self.max_grad_norm > 0:
            total = torch.sqrt(sum(torch.sum(p.grad * p.grad) for p in self.params))
            c = min(self.max_grad_norm / (float(total) + self.eps), 1.0)
        bc1, bc2, bc3 = (1 - b ** self.t for b in (b1, b2, b3))
        for i, p in enumerate(self.params):
            g = p.grad * c if c < 1.0 else p.grad.clone()
            prev = g if self.prev[i] is None else self.prev[i]
            diff = g - prev
            self.m[i] = b1 * self.m[i] + (1 - b1) * g
            self.v[i] = b2 * self.v[i] + (1 - b2) * diff
            u = g + b2 * diff
            self.n[i] = b3 * self.n[i] + (1 - b3) * u * u
            denom = torch.sqrt(self.n[i]) / math.sqrt(bc3) + self.eps
            if self.no_prox:
                p.mul_(1 - self.lr * self.wd)
            p.sub_((self.lr / bc1) * self.m[i] / denom)
            p.sub_((self.lr * b2 / bc2) * self.v[i] / denom)
            if not self.no_prox:
                p.div_(1 + self.lr * self.wd)
            self.prev[i] = g.clone()


class SophiaG:
    """theta *= 1-lr*wd; m = b1*m+(1-b1)*g; theta -= lr*sign(m)*min(|m|/(rho*bs*h+1e-15), 1);
    update_hessian: h = b2*h + (1-b2)*g*g from the current gradients."""

    def __init__(self, params, lr, betas, rho, weight_decay, bs):
        self.params, self.lr, (self.b1, self.b2), self.rho, self.wd, self.bs = \
            params, lr, betas, rho, weight_decay, bs
        self.m = [torch.zeros_like(p) for p in params]
        self.h = [torch.zeros_like(p) for p in params]
        self.unsaturated = []

    @torch.no_grad()
    def step(self):
        frac_num, frac_den = 0, 0
        for p, m, h in zip(self.params, self.m, self.h):
            g = p.grad
            p.mul_(1 - self.lr * self.wd)
            m.copy_(self.b1 * m + (1 - self.b1) * g)
            ratio = torch.clamp(m.abs() / (self.rho * self.bs * h + 1e-15), max=1.0)
            frac_num += int((ratio < 1).sum())
            frac_den += ratio.numel()
            p.sub_(self.lr * torch.sign(m) * ratio)
        self.unsaturated.append(frac_num / frac_den)

    @torch.no_grad()
    def update_hessian(self):
        for p, h in zip(self.params, self.h):
            h.copy_(self.b2 * h + (1 - self.b2) * p.grad * p.grad)


class Lomo:
    """SGD; per-parameter value clip, then the global-norm coefficient min(1, max/(norm+1e-6)) of the
    unclipped gradients; theta *= 1-lr*wd; theta -= lr*g."""

    def __init__(self, params, lr, clip_grad_norm, clip_grad_value, weight_decay):
        self.params, self.lr, self.clip_norm, self.clip_value, self.wd = \
            params, lr, clip_grad_norm, clip_grad_value, weight_decay

    @torch.no_grad()
    def step(self):
        coef = 1.0
        if self.clip_norm:
            norms = torch.stack([torch.norm(p.grad, 2.0) for p in self.params])
            coef = min(float(self.clip_norm / (torch.norm(norms, 2.0) + 1e-6)), 1.0)
        for p in self.params:
            g = p.grad.clone()
            if self.clip_value:
                g.clamp_(-self.clip_value, self.clip_value)
            if coef < 1.0:
                g.mul_(coef)
            if self.wd:
                p.mul_(1 - self.lr * self.wd)
            p.sub_(self.lr * g)


class AdaLomo:
    """Factored (matrix) or full (vector) second moment, beta2_t = 1 - t^decay_rate, grouped update
    normalisation u / max(1, RMS(u)/clip_threshold), relative step lr*max(eps2, RMS(theta)), no momentum."""

    def __init__(self, params, lr, eps, clip_threshold, decay_rate, clip_grad_norm, clip_grad_value,
                 weight_decay):
        self.params, self.lr, (self.eps1, self.eps2) = params, lr, eps
        self.clip_threshold, self.decay_rate = clip_threshold, decay_rate
        self.clip_norm, self.clip_value, self.wd = clip_grad_norm, clip_grad_value, weight_decay
        self.t = 0
        self.state = []
        for p in params:
            if p.dim() >= 2:
                self.state.append((torch.zeros(p.shape[0]), torch.zeros(p.shape[1])))
            else:
                self.state.append((torch.zeros_like(p),))

    @staticmethod
    def rms(x):
        return x.norm(2) / math.sqrt(x.numel())

    @torch.no_grad()
    def step(self):
        self.t += 1
        beta2t = 1.0 - math.pow(self.t, self.decay_rate)
        coef = 1.0
        if self.clip_norm:
            norms = torch.stack([torch.norm(p.grad, 2.0) for p in self.params])
            coef = min(float(self.clip_norm / (torch.norm(norms, 2.0) + 1e-6)), 1.0)
        for p, st in zip(self.params, self.state):
            g = p.grad.clone()
            if self.clip_value:
                g.clamp_(-self.clip_value, self.clip_value)
            if coef < 1.0:
                g.mul_(coef)
            sq = g * g + self.eps1
            if p.dim() >= 2:
                r, c = st
                r.copy_(beta2t * r + (1 - beta2t) * sq.mean(dim=-1))
                c.copy_(beta2t * c + (1 - beta2t) * sq.mean(dim=-2))
                u = g * torch.rsqrt(r / r.mean()).unsqueeze(-1) * torch.rsqrt(c).unsqueeze(-2)
            else:
                (v,) = st
                v.copy_(beta2t * v + (1 - beta2t) * sq)
                u = g * torch.rsqrt(v)
            u = u / max(1.0, float(self.rms(u)) / self.clip_threshold)
            lr_t = self.lr * max(self.eps2, float(self.rms(p)))
            if self.wd:
                p.mul_(1 - lr_t * self.wd)
            p.sub_(lr_t * u)


# ---------------------------------------------------------------- the runs

CONFIGS = {
    # name: (constructor, hyper-parameters, hessian steps)
    "lion": (Lion, dict(lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1), ()),
    "adan": (Adan, dict(lr=1e-3, betas=(0.98, 0.92, 0.99), eps=1e-8, weight_decay=0.02, max_grad_norm=0.5,
                        no_prox=False), ()),
    "sophia": (SophiaG, dict(lr=1e-3, betas=(0.965, 0.99), rho=0.04, weight_decay=0.1, bs=5120), (0, 1)),
    "lomo": (Lomo, dict(lr=1.0, clip_grad_norm=0.5, clip_grad_value=0.01, weight_decay=0.1), ()),
    "adalomo": (AdaLomo, dict(lr=1e-2, eps=(1e-30, 1e-3), clip_threshold=1.0, decay_rate=-0.8,
                              clip_grad_norm=None, clip_grad_value=None, weight_decay=0.1), ()),
    "adalomo_clip": (AdaLomo, dict(lr=1e-2, eps=(1e-30, 1e-3), clip_threshold=1.0, decay_rate=-0.8,
                                   clip_grad_norm=0.5, clip_grad_value=0.005, weight_decay=0.0), ()),
}


def versions():
    return {"torch": torch.__version__, "transformers": transformers.__version__,
            "safetensors": safetensors.__version__, "generator": "tools/reference/make_optimizer_fixtures.py"}


# Adan and SophiaG normalise every element by a statistic of its own gradient, so in float32 the
# summation-order noise of tiny gradient elements shows at ~1e-5 of the weights. Their rules are also
# checked in float64 on the gradients themselves: the float64 run stores every step's gradients (and
# Sophia's Hessian-estimate gradients), and the Java test feeds those to its optimizer, so the two
# implementations of the rule must agree to rounding. (transformers' model is not float64 throughout:
# RMSNorm and the attention softmax compute in float32, so comparing forward passes would not do.)
FLOAT64 = ("adan", "sophia")


def run(name, tiny_dir, batches, dtype=torch.float32):
    ctor, hp, hessian_steps = CONFIGS[name]
    model = LlamaForCausalLM.from_pretrained(tiny_dir, dtype=dtype, attn_implementation="eager")
    model.train()
    names = [n for n, _ in model.named_parameters()]
    params = [p for _, p in model.named_parameters()]
    start = [p.detach().clone() for p in params]
    opt = ctor(params, **hp)
    out, losses, diag = {}, [], {}
    gen = torch.Generator().manual_seed(2024)
    for k, ids in enumerate(batches):
        model.zero_grad(set_to_none=True)
        loss = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=ids).loss
        loss.backward()
        if dtype == torch.float64:
            for n, p in zip(names, params):
                out[f"grad.step{k}.{n}"] = p.grad.detach().contiguous().clone()
        with torch.no_grad():
            diag.setdefault("grad_norm", []).append(float(torch.sqrt(sum((p.grad * p.grad).sum() for p in params))))
        if name == "lion":
            # how close to zero the sign argument gets (relative to its two terms), for the tolerance note
            with torch.no_grad():
                margin = min(float(((o.b1 * m + (1 - o.b1) * p.grad).abs()
                                    / ((o.b1 * m).abs() + ((1 - o.b1) * p.grad).abs() + 1e-30))
                                   [p.grad != 0].min()) for o in [opt] for p, m in zip(params, opt.m))
            diag.setdefault("lion_min_sign_margin", []).append(margin)
        opt.step()
        losses.append(float(loss.detach()))
        if k in hessian_steps:
            model.zero_grad(set_to_none=True)
            logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
            with torch.no_grad():
                probs = torch.softmax(logits.reshape(-1, logits.shape[-1]).double(), dim=-1)
                labels = torch.multinomial(probs, 1, generator=gen).reshape(ids.shape)
            F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1)).backward()
            if dtype == torch.float64:
                for n, p in zip(names, params):
                    out[f"hessian_grad.step{k}.{n}"] = p.grad.detach().contiguous().clone()
            opt.update_hessian()
            out[f"hessian.step{k}.labels"] = labels.contiguous()
    if name == "sophia":
        diag["sophia_unsaturated_fraction"] = opt.unsaturated
    out["losses"] = torch.tensor(losses, dtype=dtype)
    moved = 0.0
    for n, p, s in zip(names, params, start):
        out["final." + n] = p.detach().to(dtype).contiguous().clone()
        moved = max(moved, float((p.detach() - s).abs().max()))
    diag["max_abs_weight_change"] = moved
    meta = versions()
    meta.update({"optimizer": name, "hyper_parameters": json.dumps(hp), "hessian_after_steps": json.dumps(
        list(hessian_steps)), "losses": json.dumps(losses), "diagnostics": json.dumps(diag)})
    return out, meta, losses, diag


def rule_alone_f32(name, tiny_dir, f64_tensors):
    """The float32 rule on the float64 run's stored gradients rounded to float32, from the float32 weights:
    the Java test feeds the same rounded gradients to its float32 optimizer, so only the rule's float32
    arithmetic can differ (the end-to-end float32 runs above also differ in the model's gradients)."""
    ctor, hp, hessian_steps = CONFIGS[name]
    model = LlamaForCausalLM.from_pretrained(tiny_dir, dtype=torch.float32, attn_implementation="eager")
    names = [n for n, _ in model.named_parameters()]
    params = [p for _, p in model.named_parameters()]
    opt = ctor(params, **hp)
    for k in range(3):
        for n, p in zip(names, params):
            p.grad = f64_tensors[f"grad.step{k}.{n}"].to(torch.float32)
        opt.step()
        if k in hessian_steps:
            for n, p in zip(names, params):
                p.grad = f64_tensors[f"hessian_grad.step{k}.{n}"].to(torch.float32)
            opt.update_hessian()
    out = {"final." + n: p.detach().contiguous().clone() for n, p in zip(names, params)}
    out["losses"] = f64_tensors["losses"].to(torch.float32)
    meta = versions()
    meta.update({"optimizer": name, "hyper_parameters": json.dumps(hp), "gradients": name + "_f64, rounded to"
                 " float32", "hessian_after_steps": json.dumps(list(hessian_steps))})
    return out, meta


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fixtures", default=FIXTURES)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    transformers.logging.set_verbosity_error()
    tiny = os.path.join(args.fixtures, "tiny-llama")
    ref = load_file(os.path.join(tiny, "adamw_reference.safetensors"))
    batches = [ref[f"adamw/batch{k}.input_ids"] for k in range(3)]
    out_dir = os.path.join(args.fixtures, "optimizers")
    os.makedirs(out_dir, exist_ok=True)
    total = 0
    runs = [(name, torch.float32, name) for name in CONFIGS]
    runs += [(name, torch.float64, name + "_f64") for name in FLOAT64]
    for name, dtype, file in runs:
        tensors, meta, losses, diag = run(name, tiny, batches, dtype)
        if dtype != torch.float32:
            meta["dtype"] = str(dtype)
        path = os.path.join(out_dir, file + ".safetensors")
        save_file(tensors, path, metadata={"info": json.dumps(meta, sort_keys=True)})
        total += os.path.getsize(path)
        print(f"{file:14s} losses {losses}  {diag}")
        if dtype == torch.float64:
            rule, rule_meta = rule_alone_f32(name, tiny, tensors)
            path = os.path.join(out_dir, name + "_rule_f32.safetensors")
            save_file(rule, path, metadata={"info": json.dumps(rule_meta, sort_keys=True)})
            total += os.path.getsize(path)
            print(f"{name}_rule_f32 written")
    print(f"total bytes: {total}")


if __name__ == "__main__":
    main()
