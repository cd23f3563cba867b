"""PyTorch twin of benches/rnn.rs: ms per training step and sequences/s of a one-layer nn.LSTM and
nn.GRU (cuDNN) at T = 20, batch 64, input 256, hidden 256: forward over the sequence, MSE against a
fixed random target on every output, backward, Adam (lr 1e-3). Two modes: eager, and the whole step
(zero_grad, forward, loss, backward, Adam(capturable=True) step) captured once in a CUDA graph and
replayed (static input tensors, warm-up on a side stream first, as the torch.cuda.graph docs show).
TF32 off (true fp32 like wgtrain), cudnn.benchmark on. Timing: best of 3 runs of ~1 s.

Before timing, the CUDA graph is checked against eager: the same number of updates from the same
initial weights must give the same loss (a graph that does not really train must not be timed).

Run: python3 benches/rnn_torch.py [--quick]   (--quick: batch 8, 32 units, like the Rust bench's)
"""
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.backends.cudnn.benchmark = True
dev = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
sync = {"cuda": torch.cuda.synchronize, "mps": lambda: torch.mps.synchronize()}.get(dev, lambda: None)

QUICK = "--quick" in sys.argv[1:]
T, N, I, H = (20, 8, 32, 32) if QUICK else (20, 64, 256, 256)
BUDGET_S = 0.3 if QUICK else 1.0
CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}
WARMUP = 3  # eager steps on the side stream before capture (the docs use 3)
CHECK_REPLAYS = 5


def best_of_3(step):
    """Seconds per step: warm up, size a run to ~BUDGET_S, best of 3 such runs."""
    for _ in range(10):
        step()
    sync()
    t = time.perf_counter()
    step()
    sync()
    once = time.perf_counter() - t
    reps = max(10, int(BUDGET_S / max(once, 1e-6)))
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(reps):
            step()
        sync()
        best = min(best, (time.perf_counter() - t) / reps)
    return best


def make(cell, capturable):
    """The layer (same initial weights every time: seeded) and its Adam."""
    torch.manual_seed(0)
    model = CELLS[cell](I, H).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, capturable=capturable)
    return model, opt


def eager(cell, x, target):
    """The eager step, and the loss after WARMUP + CHECK_REPLAYS - 1 updates (for the check)."""
    model, opt = make(cell, False)

    def step():
        opt.zero_grad(set_to_none=True)
        y, _ = model(x)
        loss = F.mse_loss(y, target)
        loss.backward()
        opt.step()
        return loss

    for _ in range(WARMUP + CHECK_REPLAYS):
        loss = step()  # the loss a step returns is that of the weights before its update
    return step, loss.item()


def graphed(cell, x, target):
    """The whole step captured in a CUDA graph: (replay, loss after the same updates as eager)."""
    model, opt = make(cell, True)
    static_x, static_target = x.clone(), target.clone()

    def step():
        opt.zero_grad(set_to_none=True)
        y, _ = model(static_x)
        loss = F.mse_loss(y, static_target)
        loss.backward()
        opt.step()
        return loss

    # Warm up on a side stream (cuDNN and the allocator settle, Adam creates its state), as the
    # torch.cuda.graph docs' whole-network example does.
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(WARMUP):
            step()
    torch.cuda.current_stream().wait_stream(s)
    graph = torch.cuda.CUDAGraph()
    # Grads set to None before capture: backward then allocates them from the graph's pool and
    # each replay overwrites them (no accumulation across replays), which is zero_grad's job.
    opt.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        static_y, _ = model(static_x)
        static_loss = F.mse_loss(static_y, static_target)
        static_loss.backward()
        opt.step()
    for _ in range(CHECK_REPLAYS):
        graph.replay()
    sync()
    return graph.replay, static_loss.item()


def main():
    name = torch.cuda.get_device_name() if dev == "cuda" else dev
    print(f"torch {torch.__version__} on {name}; cudnn {torch.backends.cudnn.version()}; "
          f"T {T}, batch {N}, input {I}, hidden {H}, MSE, Adam lr 1e-3")
    rows = []
    failed = False
    for cell in CELLS:
        torch.manual_seed(1)
        # Uniform in [-1, 1), as the Rust bench's data (the values do not change the timing).
        x = torch.rand(T, N, I, device=dev) * 2 - 1
        target = torch.rand(T, N, H, device=dev) * 2 - 1
        step, eager_loss = eager(cell, x, target)
        rows.append((cell, "eager", best_of_3(step)))
        if dev != "cuda":
            rows.append((cell, "cuda graph", None))
            continue
        try:
            replay, graph_loss = graphed(cell, x, target)
        except Exception as e:  # report and go on: the eager numbers still stand
            print(f"{cell}: CUDA graph capture failed: {type(e).__name__}: {e}")
            rows.append((cell, "cuda graph", None))
            failed = True
            continue
        diff = abs(graph_loss - eager_loss) / abs(eager_loss)
        print(f"{cell}: loss after {WARMUP + CHECK_REPLAYS - 1} updates: eager {eager_loss:.6f}, "
              f"cuda graph {graph_loss:.6f} (relative difference {diff:.1e})")
        if not diff < 1e-3:
            print(f"{cell}: the CUDA graph does not train like eager; not timed")
            rows.append((cell, "cuda graph", None))
            failed = True
            continue
        rows.append((cell, "cuda graph", best_of_3(replay)))
    print("| cell | mode | ms/step | sequences/s |")
    print("|---|---|---|---|")
    for cell, mode, sec in rows:
        if sec is None:
            print(f"| {cell} | {mode} | — | — |")
        else:
            print(f"| {cell} | {mode} | {sec * 1e3:.3f} | {N / sec:.0f} |")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
