//! The graph-builder fuzzer's program generator: a seed becomes a random sequence of builder calls
//! over every op family, with shapes and attributes drawn from small valid values and hostile ones
//! (0, 1, 2^31, 2^40, usize::MAX, axes far out of range), inputs given as values of another graph
//! or out of range, and raw ops added through `Graph::add` with any number of inputs. Each call
//! is logged as one line, so a failing program prints as text.
#![allow(dead_code)]

pub mod ops;
pub mod tamper;

use std::sync::{Arc, Mutex};

use wgtrain::graph::{Graph, Value};

/// SplitMix64: tiny, seedable and stable across crate versions, so a seed names one program.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `percent` / 100.
    pub fn percent(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub fn pick<T: Clone>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())].clone()
    }

    pub fn bool(&mut self) -> bool {
        self.next() & 1 == 1
    }
}

/// Sizes the kernels cannot take or whose products overflow.
pub const HUGE: &[usize] = &[
    65_535,
    65_536,
    1 << 20,
    (1 << 30) - 1,
    u32::MAX as usize,
    (1 << 30) + 1,
    1 << 31,
    (1 << 32) + 1,
    1 << 40,
    1 << 62,
    usize::MAX / 5 + 1,
    usize::MAX / 4,
    usize::MAX / 3,
    usize::MAX / 2 + 1,
    usize::MAX - 1,
    usize::MAX,
];

/// One program being built: the graph, the values made so far, and its log.
pub struct Prog {
    pub g: Graph,
    /// Another graph, larger, whose values are passed to this one (out of range here).
    pub other: Graph,
    pub rng: Rng,
    /// Hostile programs draw huge sizes and bad values; mild ones stay small and mostly valid
    /// (those are compiled and stepped).
    pub hostile: bool,
    pub log: Arc<Mutex<Vec<String>>>,
    names: usize,
}

impl Prog {
    pub fn new(seed: u64, log: Arc<Mutex<Vec<String>>>) -> Prog {
        let mut rng = Rng(seed);
        let hostile = rng.percent(60);
        let mut other = Graph::new();
        for k in 0..40 {
            let _ = other.input(&format!("o{k}"), &[1 + k % 3, 2]);
        }
        Prog {
            g: Graph::new(),
            other,
            rng,
            hostile,
            log,
            names: 0,
        }
    }

    pub fn say(&self, line: String) {
        self.log.lock().unwrap().push(line);
    }

    /// A fresh node name (sometimes a used one: names must be unique).
    pub fn name(&mut self) -> String {
        if self.names > 0 && self.rng.percent(3) {
            return format!("n{}", self.rng.below(self.names));
        }
        self.names += 1;
        format!("n{}", self.names - 1)
    }

    /// A dimension: small mostly; in hostile programs sometimes 0 or huge.
    pub fn dim(&mut self) -> usize {
        let r = self.rng.below(100);
        match r {
            _ if !self.hostile => match r {
                0..=1 => 0,
                2..=9 => 5 + self.rng.below(4),
                _ => 1 + self.rng.below(4),
            },
            0..=59 => 1 + self.rng.below(4),
            60..=69 => 0,
            70..=79 => 5 + self.rng.below(60),
            _ => self.rng.pick(HUGE),
        }
    }

    /// An attribute that is mostly 1..=3 (kernels, strides, counts), sometimes 0 or huge.
    pub fn attr(&mut self) -> usize {
        let r = self.rng.below(100);
        match r {
            _ if !self.hostile => 1 + self.rng.below(if r < 90 { 2 } else { 3 }),
            0..=69 => 1 + self.rng.below(3),
            70..=79 => 0,
            _ => self.rng.pick(HUGE),
        }
    }

    /// A signed axis: in range mostly, sometimes far out.
    pub fn axis(&mut self, rank: usize) -> isize {
        if self.hostile && self.rng.percent(15) {
            return self
                .rng
                .pick(&[isize::MIN, isize::MAX, -9, 9, rank as isize]);
        }
        let r = rank.max(1) as isize;
        self.rng.below(2 * r as usize) as isize - r
    }

    /// An unsigned axis (reductions).
    pub fn uaxis(&mut self, rank: usize) -> usize {
        if self.hostile && self.rng.percent(15) {
            return self.rng.pick(&[rank, usize::MAX, 1 << 40]);
        }
        self.rng.below(rank.max(1))
    }

    /// A shape: rank 1..=4 mostly (0 and up to 9 in hostile programs).
    pub fn shape(&mut self) -> Vec<usize> {
        let rank = if self.hostile && self.rng.percent(10) {
            self.rng.pick(&[0, 5, 6, 9])
        } else {
            1 + self.rng.below(4)
        };
        (0..rank).map(|_| self.dim()).collect()
    }

    /// An input value: an existing output mostly; in hostile programs sometimes one out of
    /// range, a bad port, or a value of the other graph.
    pub fn value(&mut self) -> Value {
        let n = self.g.nodes.len();
        if n == 0 || (self.hostile && self.rng.percent(6)) {
            return match self.rng.below(4) {
                0 => Value {
                    node: n + self.rng.below(3),
                    port: 0,
                },
                1 => Value {
                    node: usize::MAX,
                    port: usize::MAX,
                },
                2 => Value {
                    node: self.rng.below(n.max(1)),
                    port: 1 + self.rng.below(6),
                },
                _ => Value {
                    node: n + self.rng.below(self.other.nodes.len()),
                    port: 0,
                },
            };
        }
        // Recent values more often, so programs grow chains.
        let node = if self.rng.percent(60) {
            n - 1 - self.rng.below(n.min(4))
        } else {
            self.rng.below(n)
        };
        let ports = self.g.nodes[node].outputs.len();
        let port = if ports == 0 || self.rng.percent(85) {
            0
        } else {
            self.rng.below(ports)
        };
        Value { node, port }
    }

    /// The shape of `v`, or an empty one for a value not in the graph.
    pub fn shape_of(&self, v: Value) -> Vec<usize> {
        self.g.shape(v).map(<[usize]>::to_vec).unwrap_or_default()
    }

    /// A value and its shape, preferring one of rank `rank` when asked.
    pub fn value_of_rank(&mut self, rank: Option<usize>) -> (Value, Vec<usize>) {
        let mut best = self.value();
        if let Some(r) = rank {
            for _ in 0..6 {
                if self.shape_of(best).len() == r {
                    break;
                }
                best = self.value();
            }
        }
        let s = self.shape_of(best);
        (best, s)
    }

    /// Whether to make an operand fit (a fresh source of a compatible shape) rather than draw
    /// any value: mostly in mild programs, so their chains reach training and the GPU.
    pub fn compat(&mut self) -> bool {
        self.rng.percent(if self.hostile { 35 } else { 75 })
    }

    /// A fresh source of `shape` (a parameter or an input), logged.
    pub fn source(&mut self, shape: &[usize], param: bool) -> Value {
        let name = self.name();
        let r = if param {
            self.g.param(&name, shape)
        } else {
            self.g.input(&name, shape)
        };
        let what = if param { "param" } else { "input" };
        let v = r.as_ref().ok().copied();
        self.record(format!("{name} = {what} {shape:?}"), r);
        v.unwrap_or(Value {
            node: usize::MAX,
            port: 0,
        })
    }

    /// A fresh u32 input of `shape` (class-index labels), logged.
    pub fn labels(&mut self, shape: &[usize]) -> Value {
        let name = self.name();
        let r = self.g.input_u32(&name, shape);
        let v = r.as_ref().ok().copied();
        self.record(format!("{name} = input_u32 {shape:?}"), r);
        v.unwrap_or(Value {
            node: usize::MAX,
            port: 0,
        })
    }

    /// A value of exactly rank `rank`: an existing one if there is one, else a fresh input.
    pub fn of_rank(&mut self, rank: usize) -> (Value, Vec<usize>) {
        let (v, s) = self.value_of_rank(Some(rank));
        if s.len() == rank || !self.compat() {
            return (v, s);
        }
        let shape: Vec<usize> = (0..rank)
            .map(|k| {
                if k >= 2 {
                    2 + self.rng.below(5)
                } else {
                    1 + self.rng.below(3)
                }
            })
            .collect();
        let v = self.source(&shape, false);
        (v, shape)
    }

    /// Logs a builder call and its outcome; an Ok value joins the pool.
    pub fn record(&mut self, call: String, r: wgtrain::Result<Value>) {
        match &r {
            Ok(v) => self.say(format!("{call} -> {v:?} {:?}", self.g.shape(*v).ok())),
            Err(e) => self.say(format!("{call} -> Err({e})")),
        }
    }

    /// The largest element count of any value (saturating), to decide what is safe to run.
    pub fn largest(&self) -> u128 {
        (self.g.nodes.iter())
            .flat_map(|n| n.outputs.iter())
            .map(|(s, _)| {
                s.iter()
                    .map(|&d| d as u128)
                    .fold(1u128, u128::saturating_mul)
            })
            .max()
            .unwrap_or(0)
    }
}
