"""PyTorch twin of benches/models.rs: images/s of the full training step (forward, cross-entropy,
backward, SGD lr 0.01 momentum 0.9) of torchvision's inception_v3(aux_logits=False,
init_weights=False) at 299x299 and resnet50 at 224x224, batch 32, eager fp32 with TF32 off and
cudnn.benchmark, in train mode (batch statistics, inception's dropout 0.5) as ours.
`--quick`: batch 8 at 75x75 and 64x64, as `cargo bench --bench models -- --quick`.
`--amp`: autocast fp16 with GradScaler (PyTorch's mixed precision), the twin of `--f16`.
`--profile`: after the table, each network's step under torch.profiler: GPU time of the
convolutions forward and backward per input shape (the twin of `models --profile --dispatches`,
whose nodes carry the layer names), then the busiest kernels.
Timing: best of 3 runs of ~2 s after 20 warm-up steps. Printed in the same table format as
the Rust bench (its plan columns left empty), but for activations: on CUDA, the peak memory one
more step allocates above what it starts with (weights, momentum, the batch) — activations,
their gradients, the weight gradients and cuDNN's workspaces, against our planned arena."""
import sys
import time

import torch
import torch.nn as nn
import torchvision

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.backends.cudnn.benchmark = True
dev = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
sync = {"cuda": torch.cuda.synchronize, "mps": lambda: torch.mps.synchronize()}.get(dev, lambda: None)

quick = "--quick" in sys.argv[1:]
amp = "--amp" in sys.argv[1:]
profile = "--profile" in sys.argv[1:]
batch = 8 if quick else 32
cases = [
    ("inception_v3", (75, 75) if quick else (299, 299),
     lambda: torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False)),
    ("resnet50", (64, 64) if quick else (224, 224), lambda: torchvision.models.resnet50(weights=None)),
]


profiles = []


def profile_step(step):
    """GPU time of one step (after warm-up) per convolution op and input shape, and per kernel."""
    from torch.profiler import ProfilerActivity, profile as torch_profile
    sync()
    with torch_profile(activities=[ProfilerActivity.CUDA, ProfilerActivity.CPU],
                       record_shapes=True) as prof:
        step()
        sync()
    lines = ["| op | input shapes | calls | GPU µs |", "|---|---|---|---|"]
    rows = [e for e in prof.key_averages(group_by_input_shape=True)
            if e.key in ("aten::cudnn_convolution", "aten::convolution_backward")]
    rows.sort(key=lambda e: -e.device_time_total)
    total = 0.0
    for e in rows:
        total += e.device_time_total
        lines.append(f"| {e.key} | {e.input_shapes[:2]} | {e.count} | {e.device_time_total:.1f} |")
    lines.append(f"| all convolutions | | | {total:.1f} |")
    kernels = [e for e in prof.key_averages() if e.device_type.name == "CUDA"]
    kernels.sort(key=lambda e: -e.self_device_time_total)
    step_us = sum(e.self_device_time_total for e in kernels)
    lines += ["", f"kernels, {step_us:.1f} µs of GPU time in all:", "| kernel | calls | GPU µs |",
              "|---|---|---|"]
    for e in kernels[:40]:
        lines.append(f"| {e.key[:90]} | {e.count} | {e.self_device_time_total:.1f} |")
    return "\n".join(lines)


def best_of_3(step):
    for _ in range(20):
        step()
    sync()
    t = time.perf_counter(); step(); sync(); once = time.perf_counter() - t
    reps = min(200, max(3, int(2.0 / max(once, 1e-6))))
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(reps):
            step()
        sync()
        best = min(best, (time.perf_counter() - t) / reps)
    return best


name = torch.cuda.get_device_name() if dev == "cuda" else dev
print(f"torch {torch.__version__}, torchvision {torchvision.__version__} on {name}; "
      f"SGD lr 0.01 momentum 0.9, {'autocast fp16 + GradScaler' if amp else 'fp32 (TF32 off)'}")
print("| network | batch | image | ms/step | images/s | dispatches/step | submits/step | compile s | activations planned | naive |")
print("|---|---|---|---|---|---|---|---|---|---|")
for net_name, (h, w), build in cases:
    torch.manual_seed(0)
    model = build().to(dev).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.rand(batch, 3, h, w, device=dev) - 0.5
    y = (torch.arange(batch, device=dev) * 7) % 1000

    scaler = torch.amp.GradScaler(dev, enabled=amp)

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(dev, dtype=torch.float16, enabled=amp):
            loss = loss_fn(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        return loss

    best = best_of_3(step)
    loss = step().item()
    assert loss == loss and abs(loss) < 1e6, f"{net_name}: training diverged: loss {loss}"
    peak = ""
    if dev == "cuda":
        opt.zero_grad(set_to_none=True)
        sync()
        torch.cuda.reset_peak_memory_stats()
        start = torch.cuda.memory_allocated()
        step()
        sync()
        peak = f"{(torch.cuda.max_memory_allocated() - start) / 1e6:.1f} MB step peak"
    print(f"| {net_name} | {batch} | {h}×{w} | {best*1e3:.2f} | {batch/best:.1f} | | | | {peak} | |")
    if profile and dev == "cuda":
        try:
            profiles.append((net_name, profile_step(step)))
        except Exception as e:  # the table above stands without the profile
            profiles.append((net_name, f"profile failed: {e!r}"))

for net_name, text in profiles:
    print(f"\n{net_name}, one step under torch.profiler:\n{text}")
