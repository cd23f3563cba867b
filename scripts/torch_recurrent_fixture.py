"""Writes tests/fixtures/recurrent_torch.safetensors: PyTorch's own recurrent layers, their state
dicts, inputs, outputs and gradients, for tests/recurrent_torch.rs to hold wgtrain's layers to.

Run (any machine with PyTorch; CPU is enough, the numbers do not depend on the device):
    python3 scripts/torch_recurrent_fixture.py [OUTPUT]      (default: the path above)

Contents, all F32, torch.manual_seed(0) once at the start, then drawn in this order (each layer,
then its x, h0 and dy with torch.randn):
  (a) nn.LSTM(input_size=3, hidden_size=4, num_layers=2, bidirectional=True), T = 5, N = 2
  (b) nn.GRU(3, 5), initial state h0 given, T = 4, N = 3
  (c) nn.RNN(3, 4, nonlinearity='relu'), T = 6, N = 2
For each layer <p> (lstm, gru, rnn):
  <p>.<param>        its state dict under the prefix "<p>." (exactly PyTorch's names:
                     lstm.weight_ih_l0, lstm.weight_hh_l0_reverse, ...)
  <p>_x              the input (T, N, I)
  <p>_h0             the initial hidden state (layers·directions, N, H) (gru only)
  <p>_dy             the fixed random upstream gradient of y
  <p>_y, <p>_h_n     PyTorch's outputs y (T, N, D·H) and h_n (layers·directions, N, H)
  <p>_c_n            the final cell state (lstm only)
  <p>_grad.x         d/dx of sum(y · dy); <p>_grad.h0 likewise (gru)
  <p>_grad.<param>   d/d<param> of sum(y · dy), one per state-dict entry
Parameters, x, h0 and dy are drawn in float32 (PyTorch's default initialisation); the forward and
backward run in float64 on exactly those values, and the results are rounded to float32 once, so
the fixture holds PyTorch's answer to within one f32 rounding.

The file is written by hand (8-byte little-endian header length, JSON header, raw little-endian
data) so that only torch is needed; when the `safetensors` package is importable, the file is
read back with safetensors.torch.load_file and compared.
"""
import json
import os
import struct
import sys

import torch
import torch.nn as nn

DEFAULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures",
                       "recurrent_torch.safetensors")


def run(prefix, module, x, dy, h0=None, c0_too=False):
    """Forward and backward of `module` in float64; returns {name: float32 tensor}."""
    out = {}
    for name, p in module.state_dict().items():
        out[f"{prefix}.{name}"] = p.detach().clone()
    m64 = module.double()  # the float32 values, widened exactly
    x64 = x.double().requires_grad_(True)
    args = [x64]
    if h0 is not None:
        h064 = h0.double().requires_grad_(True)
        args.append(h064)
    y, state = m64(*args)
    h_n, c_n = state if c0_too else (state, None)
    assert y.shape == dy.shape, (prefix, y.shape, dy.shape)
    (y * dy.double()).sum().backward()
    out[f"{prefix}_x"] = x
    if h0 is not None:
        out[f"{prefix}_h0"] = h0
        out[f"{prefix}_grad.h0"] = h064.grad
    out[f"{prefix}_dy"] = dy
    out[f"{prefix}_y"] = y
    out[f"{prefix}_h_n"] = h_n
    if c_n is not None:
        out[f"{prefix}_c_n"] = c_n
    out[f"{prefix}_grad.x"] = x64.grad
    for name, p in m64.named_parameters():
        out[f"{prefix}_grad.{name}"] = p.grad
    return {k: v.detach().to(torch.float32).contiguous() for k, v in out.items()}


def relu_margin(rnn, x):
    """The smallest |pre-activation| of a one-layer ReLU RNN (float64): a value near 0 would make
    the gradient depend on rounding (ReLU's kink), so the fixture must keep clear of it."""
    w_ih, w_hh = rnn.weight_ih_l0.double(), rnn.weight_hh_l0.double()
    b = rnn.bias_ih_l0.double() + rnn.bias_hh_l0.double()
    h = torch.zeros(x.shape[1], rnn.hidden_size, dtype=torch.float64)
    margin = float("inf")
    for t in range(x.shape[0]):
        a = x[t].double() @ w_ih.T + h @ w_hh.T + b
        margin = min(margin, a.abs().min().item())
        h = torch.relu(a)
    return margin


def write_safetensors(path, tensors, metadata):
    """The safetensors format by hand: u64 LE header size, JSON header (tensors in name order,
    contiguous data_offsets, padded with spaces to 8 bytes), then the F32 data, little-endian."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name]
        assert t.dtype == torch.float32, name
        data = struct.pack(f"<{t.numel()}f", *t.flatten().tolist())
        header[name] = {"dtype": "F32", "shape": list(t.shape),
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


def read_back(path, tensors):
    """Parses the file again (by hand, and with safetensors if installed) and compares."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__")
    assert sorted(header) == sorted(tensors), "names differ after writing"
    for name, e in header.items():
        a, b = e["data_offsets"]
        vals = struct.unpack(f"<{(b - a) // 4}f", raw[8 + n + a:8 + n + b])
        want = tensors[name].flatten().tolist()
        assert list(vals) == want and e["shape"] == list(tensors[name].shape), name
    try:
        from safetensors.torch import load_file
    except ImportError:
        print("safetensors not installed: read back by hand only")
        return
    loaded = load_file(path)
    assert sorted(loaded) == sorted(tensors)
    for name, t in tensors.items():
        assert torch.equal(loaded[name], t), name
    print("read back with safetensors.torch.load_file: identical")


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else DEFAULT
    torch.manual_seed(0)
    lstm = nn.LSTM(input_size=3, hidden_size=4, num_layers=2, bidirectional=True)
    lstm_x = torch.randn(5, 2, 3)
    lstm_dy = torch.randn(5, 2, 8)
    gru = nn.GRU(3, 5)
    gru_x = torch.randn(4, 3, 3)
    gru_h0 = torch.randn(1, 3, 5)
    gru_dy = torch.randn(4, 3, 5)
    rnn = nn.RNN(3, 4, nonlinearity="relu")
    rnn_x = torch.randn(6, 2, 3)
    rnn_dy = torch.randn(6, 2, 4)
    margin = relu_margin(rnn, rnn_x)
    assert margin > 1e-4, f"a ReLU pre-activation is {margin:.1e} from the kink: pick another seed"

    tensors = {}
    tensors.update(run("lstm", lstm, lstm_x, lstm_dy, c0_too=True))
    tensors.update(run("gru", gru, gru_x, gru_dy, h0=gru_h0))
    tensors.update(run("rnn", rnn, rnn_x, rnn_dy))
    for name, t in tensors.items():
        assert torch.isfinite(t).all(), name
    metadata = {"generator": "scripts/torch_recurrent_fixture.py", "torch": torch.__version__,
                "relu_margin": f"{margin:.3e}"}
    write_safetensors(path, tensors, metadata)
    read_back(path, tensors)
    size = os.path.getsize(path)
    print(f"wrote {path}: {len(tensors)} tensors, {size} bytes (torch {torch.__version__})")
    for name in sorted(tensors):
        print(f"  {name} {list(tensors[name].shape)}")


if __name__ == "__main__":
    main()
