#!/usr/bin/env python3
"""Cross-check of wgtrain's fused GPU optimizers against real torch.optim, second half.

    cargo run --release --example optim_torch -- OUT.json
    python3 scripts/optim_torch.py OUT.json [TOL]

Replays every configuration that `examples/optim_torch.rs` wrote with real `torch.optim` on float32
CPU tensors (single-tensor implementations: foreach=False), from the same initial parameters and
the same per-step gradients (carried as f32 bits, so bit-identical), and compares our parameters
after every step, our learning rates before every step and our final optimizer state with PyTorch's.

Gradient preprocessing follows `wgtrain::optim::GradOptions`: rescale (a plain multiplication of
`.grad`; PyTorch has no such option), then `clip_grad_norm_` over all parameters of the optimizer,
then `clip_grad_value_`; then `opt.step()`, then `scheduler.step()`.

PASS when every parameter and state element satisfies |ours - torch| <= TOL * max(1, |torch|)
(TOL = 1e-5 by default) and every learning rate matches to 1e-9 relative. Exit status 1 if any
configuration fails. Uses only json, sys and torch.
"""

import json
import sys

import torch

LR_TOL = 1e-9


def f32(bits, shape):
    """A float32 tensor from IEEE-754 bit patterns (u32)."""
    signed = [b - (1 << 32) if b >= (1 << 31) else b for b in bits]
    return torch.tensor(signed, dtype=torch.int32).view(torch.float32).reshape(shape).clone()


def make_scheduler(opt, spec):
    if spec is None:
        return None
    sched = torch.optim.lr_scheduler
    kind = spec["type"]
    if kind == "StepLR":
        return sched.StepLR(opt, step_size=spec["step_size"], gamma=spec["gamma"])
    if kind == "CosineAnnealingLR":
        return sched.CosineAnnealingLR(opt, T_max=spec["T_max"], eta_min=spec["eta_min"])
    if kind == "LinearLR":
        return sched.LinearLR(
            opt,
            start_factor=spec["start_factor"],
            end_factor=spec["end_factor"],
            total_iters=spec["total_iters"],
        )
    if kind == "SequentialLR":
        inner = [make_scheduler(opt, s) for s in spec["schedulers"]]
        return sched.SequentialLR(opt, schedulers=inner, milestones=spec["milestones"])
    raise ValueError("unknown scheduler %r" % kind)


class Diff:
    """Largest differences between our values and torch's, and the worst offender."""

    def __init__(self, tol):
        self.tol = tol
        self.max_abs = 0.0
        self.max_rel = 0.0
        self.worst = None  # (excess over tolerance, description)
        self.failed = False

    def add(self, what, ours, ref):
        ours = ours.double().flatten()
        ref = ref.detach().double().flatten()
        d = (ours - ref).abs()
        # NaN anywhere (ours or torch's) is a failure unless both are NaN at the same place.
        both_nan = ours.isnan() & ref.isnan()
        d = torch.where(both_nan, torch.zeros_like(d), d)
        d = torch.where(d.isnan(), torch.full_like(d, float("inf")), d)
        if d.numel() == 0:
            return
        self.max_abs = max(self.max_abs, d.max().item())
        nz = ref != 0
        rel = torch.where(nz, d / ref.abs().clamp_min(1e-38), torch.where(d > 0, float("inf"), 0.0))
        self.max_rel = max(self.max_rel, rel.max().item())
        bound = self.tol * ref.abs().clamp_min(1.0)
        excess = d / bound
        k = int(excess.argmax().item())
        e = excess[k].item()
        if e > 1.0:
            self.failed = True
        if self.worst is None or e > self.worst[0]:
            self.worst = (
                e,
                "%s[%d]: ours %.9g torch %.9g (diff %.3g)" % (what, k, ours[k].item(), ref[k].item(), d[k].item()),
            )


def replay(cfg, shapes, steps, tol):
    """Replays one configuration; returns (params Diff, state Diff, max lr diff, notes)."""
    notes = []
    params = [torch.nn.Parameter(f32(b, s)) for b, s in zip(cfg["init"], shapes)]
    groups = []
    for g in cfg["param_groups"]:
        groups.append(
            {
                "params": [params[i] for i in g["params"]],
                "lr": g["lr"],
                "weight_decay": g["weight_decay"],
            }
        )
    grouped = [p for g in groups for p in g["params"]]
    kwargs = dict(cfg["kwargs"])
    if "betas" in kwargs:
        kwargs["betas"] = tuple(kwargs["betas"])
    cls = getattr(torch.optim, cfg["optimizer"])
    opt = cls(groups, lr=cfg["lr"], foreach=False, **kwargs)
    scheduler = make_scheduler(opt, cfg["scheduler"])
    grad = cfg["grad"]

    pd, sd = Diff(tol), Diff(tol)
    lr_diff = 0.0
    lr_failed = False
    for t in range(steps):
        for k, (ours, g) in enumerate(zip(cfg["lrs"][t], opt.param_groups)):
            d = abs(ours - g["lr"])
            lr_diff = max(lr_diff, d)
            if d > LR_TOL * max(1.0, abs(g["lr"])):
                if not lr_failed:
                    notes.append("step %d group %d: our lr %r, torch %r" % (t + 1, k, ours, g["lr"]))
                lr_failed = True
        for p, bits in zip(params, cfg["grads"][t]):
            p.grad = f32(bits, p.shape)
        with torch.no_grad():
            if grad["rescale"] != 1.0:
                for p in grouped:
                    p.grad.mul_(grad["rescale"])
        if grad["clip_norm"] is not None:
            torch.nn.utils.clip_grad_norm_(grouped, grad["clip_norm"])
        if grad["clip_value"] is not None:
            torch.nn.utils.clip_grad_value_(grouped, grad["clip_value"])
        opt.step()
        if scheduler is not None:
            scheduler.step()
        for i, (p, bits) in enumerate(zip(params, cfg["params"][t])):
            pd.add("step %d param %d" % (t + 1, i), f32(bits, p.shape), p)

    for name, per_param in cfg["state"].items():
        for i, (p, bits) in enumerate(zip(params, per_param)):
            st = opt.state.get(p, {})
            if name not in st or st[name] is None:
                notes.append("torch has no state %r for param %d (has %s)" % (name, i, sorted(st)))
                sd.failed = True
                continue
            sd.add("state %s param %d" % (name, i), f32(bits, p.shape), st[name])
    # Slots torch keeps that we do not (besides the step count) would be a semantic difference.
    for i, p in enumerate(params):
        extra = [k for k, v in opt.state.get(p, {}).items() if k != "step" and v is not None and k not in cfg["state"]]
        if extra:
            notes.append("torch state of param %d has slots we lack: %s" % (i, extra))
            sd.failed = True
    return pd, sd, lr_diff, lr_failed, notes


def main():
    if len(sys.argv) not in (2, 3):
        print("usage: python3 scripts/optim_torch.py OUT.json [TOL]", file=sys.stderr)
        return 2
    tol = float(sys.argv[2]) if len(sys.argv) == 3 else 1e-5
    with open(sys.argv[1]) as f:
        data = json.load(f)
    torch.set_default_dtype(torch.float32)
    shapes = [tuple(s) for s in data["shapes"]]
    steps = data["steps"]
    print("torch %s; ours on %s; %d steps, shapes %s; tolerance %g * max(1, |torch|)"
          % (torch.__version__, data["device"], steps, shapes, tol))
    w = max(len(c["name"]) for c in data["configs"])
    header = "%-*s  %11s  %11s  %11s  %11s  %s" % (
        w, "config", "param |d|", "param rel", "state |d|", "lr |d|", "result")
    print(header)
    print("-" * len(header))
    failures = 0
    details = []
    for cfg in data["configs"]:
        try:
            pd, sd, lr_diff, lr_failed, notes = replay(cfg, shapes, steps, tol)
        except Exception as e:  # a configuration torch rejects is a failure, not a crash
            failures += 1
            print("%-*s  %s" % (w, cfg["name"], "ERROR: %s: %s" % (type(e).__name__, e)))
            continue
        ok = not (pd.failed or sd.failed or lr_failed)
        failures += 0 if ok else 1
        print("%-*s  %11.3e  %11.3e  %11.3e  %11.3e  %s" % (
            w, cfg["name"], pd.max_abs, pd.max_rel, sd.max_abs, lr_diff, "PASS" if ok else "FAIL"))
        if not ok:
            lines = list(notes)
            for d in (pd, sd):
                if d.worst is not None and d.failed:
                    lines.append("worst: " + d.worst[1])
            details.append((cfg["name"], lines))
    for name, lines in details:
        print("\n%s:" % name)
        for line in lines:
            print("  " + line)
    print("\n%d of %d configurations failed" % (failures, len(data["configs"])))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
