#!/bin/bash
# On the NVIDIA machine (see ../shared/device/README.md): every test binary, then the training
# step before/after and its PyTorch twin, then the per-op benchmark, all in one command so the
# numbers share a card. Binaries come packed in .bin/bins.tar.xz (made by scripts/pack_device.sh);
# logs go to $OUT. A bench binary times only when given --bench (as `cargo bench` passes it);
# without it, one untimed pass at its smallest size (benches/common).
set -u
. .gl/gpu-env.sh
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
# tests/wgsl_translate.rs reads the shaders through the build machine's path.
mkdir -p /work && { [ -e /work/main ] || ln -s "$PWD" /work/main; }
(cd .bin && tar xJf bins.tar.xz)
nvidia-smi -L | tee "$OUT/gpu.txt"
export WGTRAIN_REQUIRE_GPU=1
for t in .bin/tests/*; do
  echo "== $t"
  timeout 300 "$t" 2>&1 | grep -E "^test result|FAILED|panicked|failed|on NVIDIA" | sort | uniq -c | head -40
done > "$OUT/tests.log" 2>&1
grep -c "test result: ok" "$OUT/tests.log"; grep -E "FAILED|panicked" "$OUT/tests.log" | head
if [ "${SKIP_BENCH:-0}" != 1 ]; then
  {
    for size in "" --mps-size; do
      for b in train_step_before train_step train_step_before train_step; do
        echo "== $b $size"; timeout 120 .bin/$b --bench $size
      done
      echo "== torch eager $size"; timeout 120 python3 benches/train_step_torch.py $size
    done
  } > "$OUT/train_step.log" 2>&1
  timeout 240 .bin/ops --bench > "$OUT/ops.md" 2>&1
fi
