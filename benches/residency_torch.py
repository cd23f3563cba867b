"""PyTorch twin of benches/residency.rs: 6 fully connected layers 4096x4096 (+bias, tanh), batch
256, in eager CUDA with every weight resident: ms per forward step, and ms per training step
(sum of squares per sample, summed; backward; Adam). PyTorch has no built-in just-in-time mode, so
only the resident numbers compare. TF32 off (true fp32 like wgtrain). `--quick`: 4 layers of 512,
batch 16. Timing: best of 3 runs."""
import sys, time
import torch
import torch.nn as nn

torch.backends.cuda.matmul.allow_tf32 = False
dev = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
sync = {"cuda": torch.cuda.synchronize, "mps": lambda: torch.mps.synchronize()}.get(dev, lambda: None)
width, layers, batch = (512, 4, 16) if "--quick" in sys.argv else (4096, 6, 256)

torch.manual_seed(0)
model = nn.Sequential(*[m for _ in range(layers) for m in (nn.Linear(width, width), nn.Tanh())]).to(dev)
opt = torch.optim.Adam(model.parameters(), lr=1e-4)
x = torch.full((batch, width), 0.01, device=dev)


def forward():
    with torch.no_grad():
        model(x)


def train():
    opt.zero_grad(set_to_none=True)
    loss = model(x).square().sum(dim=1).sum()
    loss.backward()
    opt.step()


def best_ms(f, reps):
    for _ in range(3):
        f()
    sync()
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(reps):
            f()
        sync()
        best = min(best, (time.perf_counter() - t) * 1e3 / reps)
    return best


name = torch.cuda.get_device_name() if dev == "cuda" else dev
params = sum(p.numel() for p in model.parameters()) * 4
print(f"torch {torch.__version__} on {name}; {layers} layers of {width}x{width}, batch {batch}")
print("| step | weights on GPU | ms/step |")
print("|---|---|---|")
print(f"| forward | {params / 1e6:.2f} MB | {best_ms(forward, 50):.3f} |")
print(f"| training (Adam) | {4 * params / 1e6:.2f} MB (+grads, Adam state) | {best_ms(train, 20):.2f} |")
