"""Writes the state-dict fixtures of the model zoo (tests/fixtures/<model>_state_dict.txt): one
`name shape` line per tensor, in state-dict order, the shape's dims joined by `x` (empty for the
scalar `num_batches_tracked`). tests/resnet.rs and tests/inception.rs hold our networks' parameter
and state names and shapes to these lists.

    python3 scripts/zoo_state_dict.py            # torchvision installed: both fixtures from it
    python3 scripts/zoo_state_dict.py --check    # torchvision: compare, write nothing
    python3 scripts/zoo_state_dict.py --transcribed   # no torch: inception_v3 from the
                                                      # transcription below

The Inception v3 fixture was first written from `transcribed_inception_v3()`, a transcription of
torchvision/models/inception.py (Inception3 with aux_logits=False), since torch was not at hand;
with torchvision installed this script also checks that transcription against the real model,
so a difference shows up as a failure here rather than as a wrong fixture.
"""
import os
import sys

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures")


def lines_of(state_dict_shapes):
    return [f"{k} {'x'.join(str(d) for d in s)}" for k, s in state_dict_shapes]


def transcribed_inception_v3(num_classes=1000):
    """(name, shape) of Inception3(aux_logits=False).state_dict(), in order, without torch."""
    out = []

    def basic(name, cin, cout, kh, kw=None):
        kw = kh if kw is None else kw
        out.append((f"{name}.conv.weight", (cout, cin, kh, kw)))
        for k in ("weight", "bias", "running_mean", "running_var"):
            out.append((f"{name}.bn.{k}", (cout,)))
        out.append((f"{name}.bn.num_batches_tracked", ()))

    def block_a(n, cin, pool_features):
        basic(f"{n}.branch1x1", cin, 64, 1)
        basic(f"{n}.branch5x5_1", cin, 48, 1)
        basic(f"{n}.branch5x5_2", 48, 64, 5)
        basic(f"{n}.branch3x3dbl_1", cin, 64, 1)
        basic(f"{n}.branch3x3dbl_2", 64, 96, 3)
        basic(f"{n}.branch3x3dbl_3", 96, 96, 3)
        basic(f"{n}.branch_pool", cin, pool_features, 1)

    def block_b(n, cin):
        basic(f"{n}.branch3x3", cin, 384, 3)
        basic(f"{n}.branch3x3dbl_1", cin, 64, 1)
        basic(f"{n}.branch3x3dbl_2", 64, 96, 3)
        basic(f"{n}.branch3x3dbl_3", 96, 96, 3)

    def block_c(n, cin, c7):
        basic(f"{n}.branch1x1", cin, 192, 1)
        basic(f"{n}.branch7x7_1", cin, c7, 1)
        basic(f"{n}.branch7x7_2", c7, c7, 1, 7)
        basic(f"{n}.branch7x7_3", c7, 192, 7, 1)
        basic(f"{n}.branch7x7dbl_1", cin, c7, 1)
        basic(f"{n}.branch7x7dbl_2", c7, c7, 7, 1)
        basic(f"{n}.branch7x7dbl_3", c7, c7, 1, 7)
        basic(f"{n}.branch7x7dbl_4", c7, c7, 7, 1)
        basic(f"{n}.branch7x7dbl_5", c7, 192, 1, 7)
        basic(f"{n}.branch_pool", cin, 192, 1)

    def block_d(n, cin):
        basic(f"{n}.branch3x3_1", cin, 192, 1)
        basic(f"{n}.branch3x3_2", 192, 320, 3)
        basic(f"{n}.branch7x7x3_1", cin, 192, 1)
        basic(f"{n}.branch7x7x3_2", 192, 192, 1, 7)
        basic(f"{n}.branch7x7x3_3", 192, 192, 7, 1)
        basic(f"{n}.branch7x7x3_4", 192, 192, 3)

    def block_e(n, cin):
        basic(f"{n}.branch1x1", cin, 320, 1)
        basic(f"{n}.branch3x3_1", cin, 384, 1)
        basic(f"{n}.branch3x3_2a", 384, 384, 1, 3)
        basic(f"{n}.branch3x3_2b", 384, 384, 3, 1)
        basic(f"{n}.branch3x3dbl_1", cin, 448, 1)
        basic(f"{n}.branch3x3dbl_2", 448, 384, 3)
        basic(f"{n}.branch3x3dbl_3a", 384, 384, 1, 3)
        basic(f"{n}.branch3x3dbl_3b", 384, 384, 3, 1)
        basic(f"{n}.branch_pool", cin, 192, 1)

    basic("Conv2d_1a_3x3", 3, 32, 3)
    basic("Conv2d_2a_3x3", 32, 32, 3)
    basic("Conv2d_2b_3x3", 32, 64, 3)
    basic("Conv2d_3b_1x1", 64, 80, 1)
    basic("Conv2d_4a_3x3", 80, 192, 3)
    block_a("Mixed_5b", 192, 32)
    block_a("Mixed_5c", 256, 64)
    block_a("Mixed_5d", 288, 64)
    block_b("Mixed_6a", 288)
    block_c("Mixed_6b", 768, 128)
    block_c("Mixed_6c", 768, 160)
    block_c("Mixed_6d", 768, 160)
    block_c("Mixed_6e", 768, 192)
    block_d("Mixed_7a", 768)
    block_e("Mixed_7b", 1280)
    block_e("Mixed_7c", 2048)
    out.append(("fc.weight", (num_classes, 2048)))
    out.append(("fc.bias", (num_classes,)))
    return out


def torchvision_models():
    import torchvision

    inception = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False)
    return {
        "resnet50": torchvision.models.resnet50(weights=None),
        "inception_v3": inception,
    }


def write(name, lines):
    path = os.path.join(FIXTURES, f"{name}_state_dict.txt")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {path}: {len(lines)} tensors")


def main():
    args = sys.argv[1:]
    if "--transcribed" in args:
        write("inception_v3", lines_of(transcribed_inception_v3()))
        return
    failed = False
    for name, model in torchvision_models().items():
        lines = lines_of((k, tuple(v.shape)) for k, v in model.state_dict().items())
        if name == "inception_v3" and lines != lines_of(transcribed_inception_v3()):
            print("inception_v3: the transcription differs from torchvision's state dict")
            failed = True
        if "--check" in args:
            with open(os.path.join(FIXTURES, f"{name}_state_dict.txt")) as f:
                if f.read().splitlines() != lines:
                    print(f"{name}: tests/fixtures/{name}_state_dict.txt differs from torchvision")
                    failed = True
        else:
            write(name, lines)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
