"""PyTorch twin of benches/gemm.rs: f32 GEMM GFLOP/s at 256..4096, TF32 off (true fp32), same timing
scheme (best of 3 batches of ~0.5 s). Run on the same card as the Rust bench."""
import sys, time
import torch

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
dev = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
sync = {"cuda": torch.cuda.synchronize, "mps": lambda: torch.mps.synchronize()}.get(dev, lambda: None)
name = torch.cuda.get_device_name() if dev == "cuda" else dev
print(f"torch {torch.__version__} on {name}")
sizes = [256, 512] if "--quick" in sys.argv else [256, 512, 1024, 2048, 4096]
print("| size | ms/GEMM | GFLOP/s |")
print("|---|---|---|")
for n in sizes:
    a = torch.full((n, n), 0.5, device=dev)
    b = torch.full((n, n), 0.25, device=dev)
    c = a @ b
    sync()
    t = time.perf_counter(); c = a @ b; sync(); once = time.perf_counter() - t
    reps = max(1, min(200, int(0.5 / max(once, 1e-6))))
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(reps):
            c = a @ b
        sync()
        best = min(best, (time.perf_counter() - t) / reps)
    assert torch.allclose(c, torch.full_like(c, n * 0.125), rtol=1e-3)
    print(f"| {n} | {best*1e3:.3f} | {2*n**3/best/1e9:.1f} |")
