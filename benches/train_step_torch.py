"""PyTorch twin of benches/train_step.rs: images/s of the MNIST network's full training step
(forward, softmax cross-entropy, backward, Adam) in eager CUDA, at batch 64 and 256, same network
and sizes as examples/mnist.rs (`--channels C1 C2 --hidden H`, defaults 8 16 128; `--mps-size` for the
MPS sample's 32 64 1024). TF32 off (true fp32 like wgtrain). Timing: best of 3 runs of ~1 s.

Then (CUDA only, issue 13) the same step captured whole in a CUDA graph and replayed: zero_grad,
forward, loss, backward and Adam(capturable=True) in one graph, static inputs, warm-up on a side
stream first as the torch.cuda.graph docs show; printed as a second table after the eager one
(whose format is unchanged). Dropout draws new masks at every replay (graph-safe RNG).

--amp: mixed precision as PyTorch users run it: autocast(fp16) around forward and loss, eager
with GradScaler (dynamic loss scaling, as wgtrain's --f16); the CUDA graph captures autocast with
a fixed loss scale (GradScaler's overflow check reads back to the host, which a graph cannot).

--profile: then the GPU time of each CUDA kernel of the graph replay (torch.profiler, 20 replays,
per-step µs), the twin of wgtrain's `train_step --profile` kernel table."""
import sys, time
import torch
import torch.nn as nn

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.backends.cudnn.benchmark = True
dev = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
sync = {"cuda": torch.cuda.synchronize, "mps": lambda: torch.mps.synchronize()}.get(dev, lambda: None)

args = sys.argv[1:]
amp = "--amp" in args
def autocast():
    return torch.autocast(device_type=dev, dtype=torch.float16, enabled=amp)
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
print(f"torch {torch.__version__} on {name}; network conv {c1}, conv {c2}, fc {hidden}; {'autocast fp16' if amp else 'fp32'}")
print("| batch | ms/step | images/s |")
print("|---|---|---|")
def best_of_3(step):
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
    return best

def batch_data(batch):
    x = torch.rand(batch, 1, 28, 28, device=dev)
    y = torch.randint(0, 10, (batch,), device=dev)
    return x, y

for batch in (64, 256):
    torch.manual_seed(0)
    model = net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    x, y = batch_data(batch)
    scaler = torch.amp.GradScaler(dev, enabled=amp)
    def step():
        opt.zero_grad(set_to_none=True)
        with autocast():
            loss = loss_fn(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    best = best_of_3(step)
    print(f"| {batch} | {best*1e3:.3f} | {batch/best:.0f} |")

def graphed_step(batch):
    """The whole training step captured in a CUDA graph; returns its replay and the loss tensor."""
    torch.manual_seed(0)
    model = net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, capturable=True)
    # A fixed loss scale under --amp (Adam is invariant to it up to eps); 1 in fp32.
    scale = 1024.0 if amp else 1.0
    loss_fn = nn.CrossEntropyLoss()
    static_x, static_y = batch_data(batch)
    # Warm-up on a side stream (cuDNN autotuning, Adam's state created) before capture.
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            opt.zero_grad(set_to_none=True)
            with autocast():
                l = loss_fn(model(static_x), static_y)
            (l * scale).backward()
            opt.step()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    # Grads None before capture: backward allocates them from the graph's pool and every replay
    # overwrites them (zero_grad's job), as in the docs' whole-network example.
    opt.zero_grad(set_to_none=True)
    with torch.cuda.graph(g):
        with autocast():
            static_loss = loss_fn(model(static_x), static_y)
        (static_loss * scale).backward()
        opt.step()
    return g.replay, static_loss

if dev == "cuda":
    print()
    print("CUDA graph (whole step captured, Adam capturable):")
    print("| batch | ms/step | images/s |")
    print("|---|---|---|")
    for batch in (64, 256):
        try:
            replay, static_loss = graphed_step(batch)
        except Exception as e:  # the eager table above still stands
            print(f"| {batch} | capture failed: {type(e).__name__}: {e} | |")
            continue
        best = best_of_3(replay)
        loss = static_loss.item()
        assert loss == loss and abs(loss) < 1e6, f"graph training diverged: loss {loss}"
        print(f"| {batch} | {best*1e3:.3f} | {batch/best:.0f} |")
        if "--profile" in args:
            from torch.profiler import profile, ProfilerActivity
            reps = 20
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                for _ in range(reps):
                    replay()
                sync()
            rows = {}
            for e in prof.events():
                if e.device_type == torch.autograd.DeviceType.CUDA:
                    n, us = rows.get(e.name, (0, 0.0))
                    rows[e.name] = (n + 1, us + e.time_range.elapsed_us())
            total = sum(us for _, us in rows.values()) / reps
            if total == 0:
                print(f"batch {batch}: the profiler recorded no kernel of the replay")
                continue
            print(f"batch {batch}, GPU time by kernel per replay ({total:.1f} µs busy):")
            print("| kernel | launches | µs | share |")
            print("|---|---|---|---|")
            for name, (n, us) in sorted(rows.items(), key=lambda r: -r[1][1]):
                print(f"| {name[:90]} | {n / reps:g} | {us / reps:.1f} | {100 * us / reps / total:.1f}% |")
