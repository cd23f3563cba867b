//! The probe kernels of `benches/coop_probe.rs`: one WGSL generator for the tensor-core GEMM's
//! loop (`gemm_coop_wide.wgsl`'s shape: 128×256 blocks, 8 subgroups of 64×64 as 4×4 tiles of
//! 16×16, K steps of 16 double-buffered in workgroup memory, two steps in flight in registers,
//! operands as 16-byte units) with each part of the loop switched on or off, so that the time
//! of each part, and the ceiling of the parts that cannot be removed, can be read on a card.
//! Square row-major NN problems whose sides are multiples of 256; no bounds checks.
//! Bindings: 0 uniform vec4<u32>(m, n, k, 0), 1 A (M×K f16), 2 B (K×N f16), 3 C (M×N f32).
#![allow(dead_code)] // the bench and tests/wgsl_translate.rs each use a part

/// Which parts of the GEMM loop a probe keeps.
#[derive(Clone, Copy, Debug)]
pub struct Probe {
    pub name: &'static str,
    /// What the probe measures, for the table.
    pub what: &'static str,
    /// The operands' global loads (else values made from the step and invocation index).
    pub loads: bool,
    /// The staging stores to workgroup memory (else the staged values are summed in registers).
    pub stores: bool,
    /// The tiles' loads from workgroup memory every step (else once, before the loop).
    pub shared_tiles: bool,
    /// The 16 multiply-adds per step.
    pub mma: bool,
    /// One workgroup barrier per step.
    pub barrier: bool,
}

/// The probes, the whole kernel last (its answer is checked against f64).
pub const PROBES: [Probe; 9] = [
    Probe {
        name: "mma",
        what: "multiply-adds on register tiles only",
        loads: false,
        stores: false,
        shared_tiles: false,
        mma: true,
        barrier: false,
    },
    Probe {
        name: "tiles_mma",
        what: "+ tile loads from workgroup memory",
        loads: false,
        stores: false,
        shared_tiles: true,
        mma: true,
        barrier: false,
    },
    Probe {
        name: "tiles_mma_barrier",
        what: "+ one barrier per K step",
        loads: false,
        stores: false,
        shared_tiles: true,
        mma: true,
        barrier: true,
    },
    Probe {
        name: "barrier",
        what: "one barrier per K step, nothing else",
        loads: false,
        stores: false,
        shared_tiles: false,
        mma: false,
        barrier: true,
    },
    Probe {
        name: "loads",
        what: "operand loads only (2 steps ahead, summed)",
        loads: true,
        stores: false,
        shared_tiles: false,
        mma: false,
        barrier: false,
    },
    Probe {
        name: "loads_barrier",
        what: "operand loads + barrier",
        loads: true,
        stores: false,
        shared_tiles: false,
        mma: false,
        barrier: true,
    },
    Probe {
        name: "loads_stores",
        what: "operand loads + staging stores",
        loads: true,
        stores: true,
        shared_tiles: false,
        mma: false,
        barrier: false,
    },
    Probe {
        name: "staging",
        what: "operand loads + staging stores + barrier",
        loads: true,
        stores: true,
        shared_tiles: false,
        mma: false,
        barrier: true,
    },
    Probe {
        name: "full",
        what: "the whole GEMM (checked)",
        loads: true,
        stores: true,
        shared_tiles: true,
        mma: true,
        barrier: true,
    },
];

/// Block of C per workgroup (rows, columns).
pub const BLOCK: (usize, usize) = (128, 256);

const HEAD: &str = "enable f16;
enable wgpu_cooperative_matrix;

@group(0) @binding(0) var<uniform> dims: vec4<u32>;   // (m, n, k, 0)
@group(0) @binding(1) var<storage, read> a8: array<mat2x4<f16>>;   // (M, K) in units of 8
@group(0) @binding(2) var<storage, read> b8: array<mat2x4<f16>>;   // (K, N) in units of 8
@group(0) @binding(3) var<storage, read_write> c: array<f32>;      // (M, N)

// Shared rows in halves: A (128, 16) padded to 24, B (16, 256) padded to 264.
const LDK: u32 = 24u;
const LDB: u32 = 264u;
const BUF_A: u32 = 3072u;
const BUF_B: u32 = 4224u;
var<workgroup> sa: array<vec4<f16>, 1536>;
var<workgroup> sb: array<vec4<f16>, 2112>;

// One K step of this invocation: 1 unit of A (row lid / 2), 2 of B (rows lid / 32 and + 8).
struct Regs {
    a0: mat2x4<f16>,
    b0: mat2x4<f16>,
    b1: mat2x4<f16>,
}

fn fetch(m0: u32, n0: u32, k0: u32, lid: u32) -> Regs {
    let k = dims.z;
    let n = dims.y;
    let ia = ((m0 + lid / 2u) * k + k0 + 8u * (lid % 2u)) / 8u;
    let ib = ((k0 + lid / 32u) * n + n0 + 8u * (lid % 32u)) / 8u;
    return Regs(a8[ia], b8[ib], b8[ib + n]);
}

// Stand-in values for probes without loads.
fn made(k0: u32, lid: u32) -> Regs {
    let v = vec4<f16>(f16(k0 % 2048u + lid));
    return Regs(mat2x4<f16>(v, v), mat2x4<f16>(v, v), mat2x4<f16>(v, v));
}

fn stash(buf: u32, lid: u32, r: Regs) {
    let ia = (buf * BUF_A + (lid / 2u) * LDK + 8u * (lid % 2u)) / 4u;
    sa[ia] = r.a0[0];
    sa[ia + 1u] = r.a0[1];
    let ib = (buf * BUF_B + (lid / 32u) * LDB + 8u * (lid % 32u)) / 4u;
    sb[ib] = r.b0[0];
    sb[ib + 1u] = r.b0[1];
    sb[ib + 2u * LDB] = r.b1[0];
    sb[ib + 2u * LDB + 1u] = r.b1[1];
}

fn sum(r: Regs) -> vec4<f16> {
    return r.a0[0] + r.a0[1] + r.b0[0] + r.b0[1] + r.b1[0] + r.b1[1];
}

fn tile_a(buf: u32, m: u32) -> coop_mat16x16<f16, A> {
    let i = (buf * BUF_A + m * LDK) / 4u;
    return coopLoadT<coop_mat16x16<f16, A>>(&sa[i], LDK / 4u);
}

fn tile_b(buf: u32, n: u32) -> coop_mat16x16<f16, B> {
    let i = (buf * BUF_B + n) / 4u;
    return coopLoadT<coop_mat16x16<f16, B>>(&sb[i], LDB / 4u);
}

@compute @workgroup_size(256)
fn probe(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
         @builtin(subgroup_id) sg: u32) {
    let m0 = wid.y * 128u;
    let n0 = wid.x * 256u;
    let wm = (sg / 4u) * 64u;
    let wn = (sg % 4u) * 64u;
    let steps = dims.z / 16u;
    var acc = vec4<f16>();
";

/// The 16 accumulator tiles c00..c33 stored to C from row `m`, column `n` (WGSL expressions).
fn store_tiles(m: &str, n: &str) -> String {
    let mut s = String::new();
    for i in 0..4 {
        for j in 0..4 {
            s += &format!(
                "    {{\n        let i = ({m} + {}u) * dims.y + {n} + {}u;\n        let ld = dims.y;\n        coopStoreT(c{i}{j}, &c[i], ld);\n    }}\n",
                16 * i,
                16 * j
            );
        }
    }
    s
}

/// The WGSL of `p`.
pub fn source(p: &Probe) -> String {
    let mut s = String::from(HEAD);
    let fetch = |k: &str| {
        if p.loads {
            format!("fetch(m0, n0, {k}, lid)")
        } else {
            format!("made({k}, lid)")
        }
    };
    let sink = |buf: &str, r: &str| {
        if p.stores {
            format!("stash({buf}, lid, {r});")
        } else {
            format!("acc = acc + sum({r});")
        }
    };
    let barrier = if p.barrier {
        "    workgroupBarrier();\n"
    } else {
        ""
    };
    let tiles = |buf: &str, indent: &str| {
        let mut t = String::new();
        for i in 0..4 {
            t += &format!("{indent}let a{i} = tile_a({buf}, wm + {}u);\n", 16 * i);
        }
        for j in 0..4 {
            t += &format!("{indent}let b{j} = tile_b({buf}, wn + {}u);\n", 16 * j);
        }
        t
    };
    if p.mma {
        for i in 0..4 {
            for j in 0..4 {
                s += &format!("    var c{i}{j} = coop_mat16x16<f32, C>();\n");
            }
        }
        if !p.shared_tiles {
            s += &tiles("0u", "    ");
        }
    }
    s += &format!("    var r0 = {};\n    {}\n", fetch("0u"), sink("0u", "r0"));
    s += &format!("    var r1 = {};\n{barrier}", fetch("16u"));
    s += "    for (var s = 0u; s < steps; s = s + 1u) {\n        let buf = s % 2u;\n";
    s += &format!(
        "        if (s + 2u < steps) {{\n            if (s % 2u == 0u) {{\n                r0 = {};\n            }} else {{\n                r1 = {};\n            }}\n        }}\n",
        fetch("(s + 2u) * 16u"),
        fetch("(s + 2u) * 16u")
    );
    if p.mma {
        if p.shared_tiles {
            s += &tiles("buf", "        ");
        }
        for i in 0..4 {
            for j in 0..4 {
                s += &format!("        c{i}{j} = coopMultiplyAdd(a{i}, b{j}, c{i}{j});\n");
            }
        }
    }
    s += &format!(
        "        if (s + 1u < steps) {{\n            if ((s + 1u) % 2u == 0u) {{\n                {}\n            }} else {{\n                {}\n            }}\n        }}\n",
        sink("1u - buf", "r0"),
        sink("1u - buf", "r1")
    );
    s += &format!("    {barrier}    }}\n");
    if p.mma {
        s += &store_tiles("m0 + wm", "n0 + wn");
    } else {
        // Keeps the staged values (and so the loads and stores) alive.
        s += "    c[(m0 + lid / 8u) * dims.y + n0 + lid % 8u] = f32(sa[lid].x) + f32(sb[lid].y) + f32(acc.x + acc.w);\n";
    }
    s += "}\n";
    s
}

/// A GEMM without workgroup memory or barriers: each subgroup loads its 4 A and 4 B tiles
/// straight from the storage buffers with `coopLoad`, one K step ahead in two register sets,
/// the workgroup's subgroups sharing operands through the L1 cache only. The loop takes two
/// steps per pass with no branch (cooperative-matrix operations need uniform control flow,
/// which naga does not grant a branch on the loop counter): the last pass reloads step K − 16.
pub fn direct_source() -> String {
    let mut s = String::from(
        "enable f16;
enable wgpu_cooperative_matrix;

@group(0) @binding(0) var<uniform> dims: vec4<u32>;   // (m, n, k, 0)
@group(0) @binding(1) var<storage, read> a4: array<vec4<f16>>;   // (M, K) in units of 4
@group(0) @binding(2) var<storage, read> b4: array<vec4<f16>>;   // (K, N) in units of 4
@group(0) @binding(3) var<storage, read_write> c: array<f32>;    // (M, N)

fn ga(m: u32, k: u32) -> coop_mat16x16<f16, A> {
    let i = (m * dims.z + k) / 4u;
    let ld = dims.z / 4u;
    return coopLoadT<coop_mat16x16<f16, A>>(&a4[i], ld);
}

fn gb(k: u32, n: u32) -> coop_mat16x16<f16, B> {
    let i = (k * dims.y + n) / 4u;
    let ld = dims.y / 4u;
    return coopLoadT<coop_mat16x16<f16, B>>(&b4[i], ld);
}

@compute @workgroup_size(256)
fn probe(@builtin(workgroup_id) wid: vec3<u32>, @builtin(subgroup_id) sg: u32) {
    let m = wid.y * 128u + (sg / 4u) * 64u;
    let n = wid.x * 256u + (sg % 4u) * 64u;
    let last = dims.z - 16u;
",
    );
    for i in 0..4 {
        for j in 0..4 {
            s += &format!("    var c{i}{j} = coop_mat16x16<f32, C>();\n");
        }
    }
    let load = |set: usize, k: &str, indent: &str, decl: &str| {
        let mut t = String::new();
        for i in 0..4 {
            t += &format!("{indent}{decl}a{i}_{set} = ga(m + {}u, {k});\n", 16 * i);
        }
        for j in 0..4 {
            t += &format!("{indent}{decl}b{j}_{set} = gb({k}, n + {}u);\n", 16 * j);
        }
        t
    };
    s += &load(0, "0u", "    ", "var ");
    s += &load(1, "0u", "    ", "var ");
    s += "    for (var k = 0u; k < dims.z; k = k + 32u) {\n";
    s += &load(1, "min(k + 16u, last)", "        ", "");
    let mma = |set: usize| {
        let mut t = String::new();
        for i in 0..4 {
            for j in 0..4 {
                t += &format!(
                    "        c{i}{j} = coopMultiplyAdd(a{i}_{set}, b{j}_{set}, c{i}{j});\n"
                );
            }
        }
        t
    };
    s += &mma(0);
    s += &load(0, "min(k + 32u, last)", "        ", "");
    s += &mma(1);
    s += "    }\n";
    s += &store_tiles("m", "n");
    s += "}\n";
    s
}
