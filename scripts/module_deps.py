#!/usr/bin/env python3
"""Prints the crate's module dependency graph (top-level modules, and op families inside
`src/ops/`) from `crate::` paths, and exits non-zero on a cycle. Run from the repo root."""
import glob, re, sys

def module_of(path):
    parts = path[len("src/"):].removesuffix(".rs").split("/")
    if parts[0] == "ops" and len(parts) > 1 and parts[1] not in ("mod", "axis"):
        return "ops::" + parts[1]
    return parts[0] if parts[0] != "lib" else None

deps = {}
for f in glob.glob("src/**/*.rs", recursive=True):
    m = module_of(f)
    if m is None:
        continue
    src = open(f).read()
    # doc comments and tests do not count as dependencies
    src = re.sub(r"(?m)^\s*//.*$", "", src)
    src = src.split("#[cfg(test)]")[0]
    for a, b in re.findall(r"crate::([a-z_]+)(?:::([a-z_]+))?", src):
        d = "ops::" + b if a == "ops" and b and b not in ("axis",) and not b[0].isupper() else a
        if d == "ops::FAMILIES":
            d = "ops"
        if d != m and not (m.startswith("ops") and d == "ops"):
            deps.setdefault(m, set()).add(d)
        deps.setdefault(d, set())

def find_cycle():
    state = {}
    stack = []
    def visit(n):
        state[n] = 1
        stack.append(n)
        for d in sorted(deps.get(n, ())):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state:
                c = visit(d)
                if c:
                    return c
        stack.pop()
        state[n] = 2
        return None
    for n in sorted(deps):
        if n not in state:
            c = visit(n)
            if c:
                return c
    return None

for m in sorted(deps):
    print(f"{m:20} -> {', '.join(sorted(deps[m]))}")
cycle = find_cycle()
if cycle:
    print("CYCLE: " + " -> ".join(cycle))
    sys.exit(1)
print("no cycles")
