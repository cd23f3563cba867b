"""PyTorch twin of benches/conv.rs: a ResNet-style 3x3 convolution (batch 64, 64->64 channels,
56x56, stride 1, padding 1, bias), forward and backward (data + weights + bias), TF32 off (true
fp32), cudnn.benchmark on, same timing scheme (best of 3 batches of ~0.5 s after a warm-up).
Run on the same card as the Rust bench; --quick uses batch 2; --shape N,CIN,COUT,HW,K another
stride-1 KxK convolution with "same" padding (the MNIST MPS net's conv2 at batch 256:
256,32,64,14,5). On CUDA each pass is timed again captured in a CUDA graph and replayed (no
launch cost on the host, issue 13), as two more rows; the outputs checked are the replays'."""
import sys, time
import torch
import torch.nn.functional as F

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.backends.cudnn.benchmark = True
dev = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
sync = {"cuda": torch.cuda.synchronize, "mps": lambda: torch.mps.synchronize()}.get(dev, lambda: None)
name = torch.cuda.get_device_name() if dev == "cuda" else dev
print(f"torch {torch.__version__} on {name}")

n, cin, cout, hw, k = (2 if "--quick" in sys.argv else 64), 64, 64, 56, 3
# --shape N,CIN,COUT,HW,K: another stride-1 KxK convolution with "same" padding (as the Rust bench).
if "--shape" in sys.argv:
    n, cin, cout, hw, k = (int(v) for v in sys.argv[sys.argv.index("--shape") + 1].split(","))
pad = k // 2
# --f16: every tensor fp16, as autocast runs a convolution (cuDNN's fp16 kernels, tensor cores).
dt = torch.float16 if "--f16" in sys.argv else torch.float32
x = torch.full((n, cin, hw, hw), 0.5, device=dev, dtype=dt)
w = torch.full((cout, cin, k, k), 0.25, device=dev, dtype=dt)
b = torch.full((cout,), 1.0, device=dev, dtype=dt)
dy = torch.full((n, cout, hw, hw), 0.125, device=dev, dtype=dt)


def forward():
    return F.conv2d(x, w, b, stride=1, padding=pad)


def backward():
    # dx, dw, db straight from the aten op autograd calls, without building a graph
    return torch.ops.aten.convolution_backward(
        dy, x, w, [cout], [1, 1], [pad, pad], [1, 1], False, [0, 0], 1, [True, True, True])


def time_it(f):
    f(); sync()  # warm-up (and cudnn.benchmark's algorithm search)
    t = time.perf_counter(); out = f(); sync(); once = time.perf_counter() - t
    reps = max(1, min(200, int(0.5 / max(once, 1e-6))))
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(reps):
            out = f()
        sync()
        best = min(best, (time.perf_counter() - t) / reps)
    return best, out


def graphed(f):
    """`f` captured in a CUDA graph after a warm-up on a side stream (the torch.cuda.graph docs'
    recipe); returns a function replaying it and returning the graph's static outputs."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            f()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        out = f()

    def replay():
        g.replay()
        return out
    return replay


t_fwd, y = time_it(forward)
t_bwd, (dx, dw, db) = time_it(backward)
graph_rows = []
if dev == "cuda":
    t_fwd_g, y = time_it(graphed(forward))
    t_bwd_g, (dx, dw, db) = time_it(graphed(backward))
    graph_rows = [("forward, CUDA graph", t_fwd_g, 1), ("backward, CUDA graph", t_bwd_g, 2)]
# At the centre pixel every tap is inside the image; the centre tap never reaches the padding.
assert torch.allclose(y[0, 0, hw // 2, hw // 2], torch.tensor(cin * k * k * 0.125 + 1.0, device=dev, dtype=dt), rtol=1e-2)
assert torch.allclose(dx[0, 0, hw // 2, hw // 2], torch.tensor(cout * k * k * 0.125 * 0.25, device=dev, dtype=dt), rtol=1e-2)
assert torch.allclose(dw[0, 0, pad, pad], torch.tensor(n * hw * hw * 0.125 * 0.5, device=dev, dtype=dt), rtol=1e-2)
assert torch.allclose(db[0], torch.tensor(n * hw * hw * 0.125, device=dev, dtype=dt), rtol=1e-2)

flop = 2 * n * hw * hw * cin * cout * k * k
print(f"\nconv {k}x{k}, N={n}, {cin}->{cout} ch, {hw}x{hw}, stride 1, pad {pad}, bias, {str(dt)[6:]}")
print("| pass | ms | GFLOP/s |")
print("|---|---|---|")
print(f"| forward | {t_fwd*1e3:.3f} | {flop/t_fwd/1e9:.1f} |")
print(f"| backward (data + weights + bias) | {t_bwd*1e3:.3f} | {2*flop/t_bwd/1e9:.1f} |")
for what, t, passes in graph_rows:
    print(f"| {what} | {t*1e3:.3f} | {passes*flop/t/1e9:.1f} |")
