#!/usr/bin/env python3
"""Writes tests/fixtures/optim_torch.safetensors: real torch.optim steps, for tests/optim_torch.rs
to hold wgtrain's fused optimizers to under `cargo test` (the full cross-check, more configurations
compared on the GPU's own trajectory, is examples/optim_torch.rs with scripts/optim_torch.py).

Run (any machine with PyTorch; CPU float32, single-tensor implementations, foreach=False):
    python3 scripts/optim_torch_fixture.py [OUTPUT]      (default: the path above)

Each configuration k (listed in CASES below, and in the file's metadata under "k") runs STEPS
steps over two parameter tensors, [7, 5] and [33], laid out one after the other as wgtrain's flat
arena of 68 elements, all in one parameter group. Per step: `.grad` set to the step's gradients,
then clip_grad_norm_ over both tensors, then clip_grad_value_ (where configured), `opt.step()`,
`scheduler.step()`. Stored, with the arena's element order:
  k.init            F32 [68]         the initial parameters
  k.grads           F32 [STEPS, 68]  the gradient of each step (before clipping)
  k.params          F32 [STEPS, 68]  the parameters after each step
  k.lr              F64 [STEPS]      the learning rate each step ran at
  k.state.<slot>    F32 [68]         torch's final optimizer state, by its state_dict names
Inputs are drawn with Python's random.Random(1000 + k), uniform in [-1, 1), rounded to float32.

The metadata value of "k" is the configuration in the form tests/optim_torch.rs parses:
`;`-separated key=value pairs, floats as Python's repr. The file is written by hand
(8-byte little-endian header length, JSON header, raw little-endian data): only torch is needed.
"""
import json
import os
import random
import struct
import sys

import torch

DEFAULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures",
                       "optim_torch.safetensors")
STEPS = 6
SHAPES = [(7, 5), (33,)]

# (name, optimizer, lr, constructor keywords, weight decay, schedule, clip_norm, clip_value).
# schedule: "constant", "step:SIZE:GAMMA", "cosine:T_MAX:ETA_MIN" (T_MAX >= STEPS - 1: ours
# holds at eta_min past it, CosineAnnealingLR rises again), "warmup:STEPS:START:<inner>"
# (LinearLR then the inner schedule, through SequentialLR).
CASES = [
    ("sgd momentum dampening", "SGD", 0.1, dict(momentum=0.9, dampening=0.1), 0.05,
     "step:2:0.5", None, None),
    ("sgd nesterov", "SGD", 0.05, dict(momentum=0.9, nesterov=True), 0.01,
     "cosine:5:0.001", None, None),
    ("adam", "Adam", 0.01, dict(), 0.05, "step:3:0.5", None, None),
    ("adam amsgrad clip_norm", "Adam", 0.01, dict(betas=(0.8, 0.95), eps=1e-6, amsgrad=True), 0.0,
     "cosine:5:0.001", 1.0, None),
    ("adamw warm-up", "AdamW", 0.01, dict(), 0.1, "warmup:2:0.25:step:2:0.5", None, None),
    ("adamw amsgrad clip_value", "AdamW", 0.02, dict(betas=(0.8, 0.95), eps=1e-6, amsgrad=True),
     0.01, "constant", None, 0.5),
    ("rmsprop centered momentum", "RMSprop", 0.01,
     dict(alpha=0.9, eps=1e-6, momentum=0.5, centered=True), 0.05, "step:2:0.5", None, None),
    ("rmsprop clip_norm", "RMSprop", 0.01, dict(), 0.01, "cosine:5:0.0", 2.0, None),
]


def f32(x):
    """x rounded to the nearest float32 (what the tensors hold)."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def scheduler(opt, spec):
    s = torch.optim.lr_scheduler
    parts = spec.split(":")
    if parts[0] == "constant":
        return None
    if parts[0] == "step":
        return s.StepLR(opt, step_size=int(parts[1]), gamma=float(parts[2]))
    if parts[0] == "cosine":
        assert int(parts[1]) >= STEPS - 1, "never past T_max (see CASES)"
        return s.CosineAnnealingLR(opt, T_max=int(parts[1]), eta_min=float(parts[2]))
    if parts[0] == "warmup":
        n = int(parts[1])
        warm = s.LinearLR(opt, start_factor=float(parts[2]), end_factor=1.0, total_iters=n)
        then = scheduler(opt, ":".join(parts[3:]))
        return s.SequentialLR(opt, schedulers=[warm, then], milestones=[n])
    raise ValueError(spec)


def describe(name, optimizer, lr, kwargs, wd, schedule, clip_norm, clip_value):
    """The configuration as `;`-separated key=value pairs (see the module doc)."""
    fields = [("name", name), ("optimizer", optimizer), ("lr", repr(lr)), ("weight_decay", repr(wd)),
              ("schedule", schedule), ("clip_norm", "" if clip_norm is None else repr(clip_norm)),
              ("clip_value", "" if clip_value is None else repr(clip_value))]
    defaults = {"SGD": dict(momentum=0.0, dampening=0.0, nesterov=False),
                "Adam": dict(betas=(0.9, 0.999), eps=1e-8, amsgrad=False),
                "AdamW": dict(betas=(0.9, 0.999), eps=1e-8, amsgrad=False),
                "RMSprop": dict(alpha=0.99, eps=1e-8, momentum=0.0, centered=False)}[optimizer]
    full = dict(defaults, **kwargs)
    for k in sorted(full):
        v = full[k]
        if isinstance(v, bool):
            v = "true" if v else "false"
        elif isinstance(v, tuple):
            v = ",".join(repr(float(x)) for x in v)
        else:
            v = repr(float(v))
        fields.append((k, v))
    for k, v in fields:
        assert ";" not in v and "=" not in v, (k, v)
    return ";".join("%s=%s" % kv for kv in fields)


def run(k, case):
    name, optimizer, lr, kwargs, wd, schedule, clip_norm, clip_value = case
    rng = random.Random(1000 + k)
    n = sum(torch.Size(s).numel() for s in SHAPES)
    draw = lambda count: torch.tensor([f32(rng.uniform(-1.0, 1.0)) for _ in range(count)])
    init = draw(n)
    grads = torch.stack([draw(n) for _ in range(STEPS)])
    params, a = [], 0
    for s in SHAPES:
        m = torch.Size(s).numel()
        params.append(torch.nn.Parameter(init[a:a + m].reshape(s).clone()))
        a += m
    opt = getattr(torch.optim, optimizer)(
        [{"params": params, "lr": lr, "weight_decay": wd}], foreach=False, **kwargs)
    sched = scheduler(opt, schedule)
    after, lrs = [], []
    for t in range(STEPS):
        lrs.append(opt.param_groups[0]["lr"])
        a = 0
        for p in params:
            p.grad = grads[t, a:a + p.numel()].reshape(p.shape).clone()
            a += p.numel()
        if clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, clip_norm)
        if clip_value is not None:
            torch.nn.utils.clip_grad_value_(params, clip_value)
        opt.step()
        if sched is not None:
            sched.step()
        after.append(torch.cat([p.detach().flatten() for p in params]))
    out = {"%d.init" % k: init, "%d.grads" % k: grads, "%d.params" % k: torch.stack(after),
           "%d.lr" % k: torch.tensor(lrs, dtype=torch.float64)}
    slots = sorted({s for p in params for s, v in opt.state[p].items()
                    if s != "step" and isinstance(v, torch.Tensor)})
    for s in slots:
        out["%d.state.%s" % (k, s)] = torch.cat([opt.state[p][s].flatten() for p in params])
    return out, describe(*case)


def write_safetensors(path, tensors, metadata):
    """The safetensors format by hand: u64 LE header size, JSON header (tensors in name order,
    contiguous data_offsets, padded with spaces to 8 bytes), then the data, little-endian."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        code, dtype = {torch.float32: ("f", "F32"), torch.float64: ("d", "F64")}[t.dtype]
        data = struct.pack("<%d%s" % (t.numel(), code), *t.flatten().tolist())
        header[name] = {"dtype": dtype, "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else DEFAULT
    torch.set_default_dtype(torch.float32)
    tensors, metadata = {}, {"torch": torch.__version__, "steps": str(STEPS),
                             "cases": str(len(CASES))}
    for k, case in enumerate(CASES):
        t, desc = run(k, case)
        tensors.update(t)
        metadata[str(k)] = desc
        print("%d: %s" % (k, desc))
    write_safetensors(path, tensors, metadata)
    print("wrote %d tensors to %s (torch %s)" % (len(tensors), path, torch.__version__))


if __name__ == "__main__":
    main()
