#!/usr/bin/env python3
"""Rewrites storage bindings of a WGSL file from array<f32> to array<act> (the storage type of
the f16 variants, see `Shader::source_for`): declarations, every read wrapped in f32(...), every
write's right-hand side in act(...). Usage: wgsl_act.py FILE NAME [NAME ...]"""
import re, sys

def match_bracket(s, i):
    depth = 0
    for j in range(i, len(s)):
        if s[j] == '[': depth += 1
        elif s[j] == ']':
            depth -= 1
            if depth == 0: return j
    raise ValueError("unbalanced")

def convert(src, name):
    src, n = re.subn(r'(var<storage, (?:read|read_write)> %s: array<)f32>' % name, r'\1act>', src)
    assert n == 1, (name, n)
    out, i = [], 0
    pat = re.compile(r'\b%s\[' % name)
    while True:
        m = pat.search(src, i)
        if not m:
            out.append(src[i:]); break
        start, lb = m.start(), m.end() - 1
        rb = match_bracket(src, lb)
        access = src[start:rb + 1]
        rest = src[rb + 1:]
        wm = re.match(r'\s*(\+|-|\*|/)?=(?!=)\s*', rest)
        out.append(src[i:start])
        if wm:
            end = src.index(';', rb + 1)
            rhs = src[rb + 1 + wm.end():end]
            op = wm.group(1)
            if op:
                rhs = 'f32(%s) %s (%s)' % (access, op, rhs)
            out.append('%s = act(%s)' % (access, rhs))
            i = end
        else:
            out.append('f32(%s)' % access)
            i = rb + 1
    return ''.join(out)

path = sys.argv[1]
s = open(path).read()
for name in sys.argv[2:]:
    s = convert(s, name)
open(path, 'w').write(s)
