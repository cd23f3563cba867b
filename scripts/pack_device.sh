#!/bin/bash
# On the build machine: release test binaries, the benches and the previous training-step bench
# (`$BEFORE`, a binary built from the commit to compare against) packed into .bin/bins.tar.xz.
set -euo pipefail
cd "$(dirname "$0")/.."
T=${CARGO_TARGET_DIR:-target}
rm -rf .bin/stage && mkdir -p .bin/stage/tests
cargo test --release --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["executable"])' | while read -r exe; do cp "$exe" .bin/stage/tests/; done
cargo build --release --benches --message-format=json 2>/dev/null \
  | python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m.get("executable") and m["target"]["kind"]==["bench"]:
        print(m["target"]["name"], m["executable"])' | while read -r name exe; do cp "$exe" ".bin/stage/$name"; done
[ -n "${BEFORE:-}" ] && cp "$BEFORE" .bin/stage/train_step_before
strip .bin/stage/* .bin/stage/tests/* 2>/dev/null || true
# One solid stream with a dictionary larger than the tar: the ~60 binaries share most of their
# code (wgpu, naga), so 113 MB at the default 8 MiB dictionary becomes 40 MB.
tar cf - -C .bin/stage . | xz -T1 --lzma2=preset=6,dict=512MiB > .bin/bins.tar.xz
rm -rf .bin/stage
ls -la .bin/bins.tar.xz
