"""PyTorch twin of benches/train_step.rs: images/s of the MNIST network's full training step
(forward, softmax cross-entropy, backward, Adam) in eager CUDA, at batch 64 and 256, same network
and sizes as examples/mnist.rs (`--channels C1 C2 --hidden H`, defaults 8 16 128; `--mps-size` for the
MPS sample's 32 64 1024). TF32 off (true fp32 like wgtrain). Timing: best of 3 runs of ~1 s."""
import sys, time
import torch
import torch.nn as nn

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.backends.cudnn.benchmark = True
dev = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
sync = {"cuda": torch.cuda.synchronize, "mps": lambda: torch.mps.synchronize()}.get(dev, lambda: None)

args = sys.argv[1:]
c1, c2, hidden = 8, 16, 128
if "--mps-size" in args:
    c1, c2, hidden = 32, 64, 1024
if "--channels" in args:
    i = args.index("--channels"); c1, c2 = int(args[i + 1]), int(args[i + 2])
if "--hidden" in args:
    hidden = int(args[args.index("--hidden") + 1])

def net():
    return nn.Sequential(
        nn.Conv2d(1, c1, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(c2 * 7 * 7, hidden), nn.ReLU(), nn.Dropout(0.25),
        nn.Linear(hidden, 10),
    ).to(dev)

name = torch.cuda.get_device_name() if dev == "cuda" else dev
print(f"torch {torch.__version__} on {name}; network conv {c1}, conv {c2}, fc {hidden}")
print("| batch | ms/step | images/s |")
print("|---|---|---|")
for batch in (64, 256):
    torch.manual_seed(0)
    model = net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.rand(batch, 1, 28, 28, device=dev)
    y = torch.randint(0, 10, (batch,), device=dev)
    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
    for _ in range(20):
        step()
    sync()
    t = time.perf_counter(); step(); sync(); once = time.perf_counter() - t
    reps = max(10, int(1.0 / max(once, 1e-6)))
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(reps):
            step()
        sync()
        best = min(best, (time.perf_counter() - t) / reps)
    print(f"| {batch} | {best*1e3:.3f} | {batch/best:.0f} |")
