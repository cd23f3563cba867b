"""PyTorch twin of benches/gemm.rs: f32 GEMM GFLOP/s at 256..4096, TF32 off (true fp32), same timing
scheme (best of 3 batches of ~0.5 s). Run on the same card as the Rust bench.
--f16: torch's fp16 matmul (tensor cores, fp32 accumulation) in TFLOP/s at 256..8192, every layout
and the same sizes as `gemm --bench --f16` (TN etc. as views of transposed storage)."""
import sys, time
import torch

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
dev = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
sync = {"cuda": torch.cuda.synchronize, "mps": lambda: torch.mps.synchronize()}.get(dev, lambda: None)
name = torch.cuda.get_device_name() if dev == "cuda" else dev
print(f"torch {torch.__version__} on {name}")
f16 = "--f16" in sys.argv
quick = "--quick" in sys.argv


def best_time(f):
    f()
    sync()
    t = time.perf_counter(); f(); sync(); once = time.perf_counter() - t
    reps = max(1, min(200, int(0.5 / max(once, 1e-6))))
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(reps):
            f()
        sync()
        best = min(best, (time.perf_counter() - t) / reps)
    return best


if f16:
    # fp16 inputs, fp32 accumulation (cuBLAS's default for half; reduced-precision reductions off).
    torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = False
    shapes = [(n, "NN") for n in ([256, 512] if quick else [256, 512, 1024, 2048, 4096, 8192])]
    if not quick:
        shapes += [(4096, l) for l in ("NT", "TN", "TT")]
    print("| size | layout | ms/GEMM | TFLOP/s |")
    print("|---|---|---|---|")
    for n, layout in shapes:
        a = torch.randn(n, n, device=dev, dtype=torch.half)
        b = torch.randn(n, n, device=dev, dtype=torch.half)
        # op(A) = A.t() when stored transposed: a view, as the Rust side reads transposed storage.
        oa = a.t() if layout[0] == "T" else a
        ob = b.t() if layout[1] == "T" else b
        out = {}
        best = best_time(lambda: out.__setitem__("c", oa @ ob))
        want = oa[:4].float() @ ob.float()
        assert torch.allclose(out["c"][:4].float(), want, rtol=1e-2, atol=1e-2 * n ** 0.5)
        print(f"| {n} | {layout} | {best*1e3:.3f} | {2*n**3/best/1e12:.1f} |")
    sys.exit(0)

sizes = [256, 512] if quick else [256, 512, 1024, 2048, 4096]
print("| size | ms/GEMM | GFLOP/s |")
print("|---|---|---|")
for n in sizes:
    a = torch.full((n, n), 0.5, device=dev)
    b = torch.full((n, n), 0.25, device=dev)
    out = {}
    best = best_time(lambda: out.__setitem__("c", a @ b))
    assert torch.allclose(out["c"], torch.full_like(out["c"], n * 0.125), rtol=1e-3)
    print(f"| {n} | {best*1e3:.3f} | {2*n**3/best/1e9:.1f} |")
