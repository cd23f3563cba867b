//! The memory plan: intermediates whose lifetimes do not overlap share bytes of an arena.
//! A value is live from the step that writes it to the last step that reads it (inclusive);
//! offsets are chosen first-fit in that order, each aligned for binding.
//!
//! There are two arenas, two buffers, and `colour.rs` says which each value lives in: a node
//! reads from one buffer and writes the other where it can. wgpu tracks usage per buffer, so
//! only then may a launch keep its kernels' bindings read-only (`launch::Shader::source_of`),
//! which the driver loads through its read-only path. Where the two arenas would together need
//! more than `SPLIT_SLACK` beyond one arena's peak, everything stays in the first (the second
//! is empty).

use super::alias::Aliases;
use super::fusion::Fusion;
use super::lifetimes::Lifetimes;
use crate::error::{Error, Result, Unit};
use crate::graph::{Graph, Value};

/// Pass 5, memory: where each arena intermediate lives.
pub struct Memory {
    /// The arenas' values, in value order.
    pub owned: Vec<Value>,
    /// `placement.offsets[k]` is `owned[k]`'s byte offset in the arenas laid end to end: the
    /// first arena holds `[0, split)`, the second `[split, placement.peak)`.
    pub placement: Placement,
    pub split: u64,
}

impl Memory {
    /// Bytes of the first arena and of the second.
    pub fn arena_bytes(&self) -> [u64; 2] {
        [self.split, self.placement.peak - self.split]
    }
}

/// How much more than one arena's peak the two may take together, as a fraction of it: the
/// MNIST nets' two arenas cost 6–7% (BENCHMARKS.md, eighth session), for steps 6–14% faster.
const SPLIT_SLACK: f64 = 0.10;

/// Places the intermediates of `lifetimes` in the two arenas (`colour::arenas` says which each
/// takes under `aliases` and `fusion`); `align` is the binding offset alignment.
pub fn pass(
    g: &Graph,
    lifetimes: &Lifetimes,
    aliases: &Aliases,
    fusion: &Fusion,
    align: u64,
) -> Result<Memory> {
    let mut owned: Vec<Value> = lifetimes.life.keys().copied().collect();
    owned.sort();
    let items = intervals(g, lifetimes, &owned);
    let arena = super::colour::arenas(g, aliases, fusion, &owned, &items);
    let (placement, split) = place_arenas(&items, &arena, align)?;
    Ok(Memory {
        owned,
        placement,
        split,
    })
}

/// The size and lifetime of each of `owned`.
pub fn intervals(g: &Graph, lifetimes: &Lifetimes, owned: &[Value]) -> Vec<Interval> {
    owned
        .iter()
        .map(|&v| Interval {
            bytes: value_bytes(g, v),
            first: lifetimes.life[&v].0,
            last: lifetimes.life[&v].1,
        })
        .collect()
}

/// The two arenas of `place_split` where they cost at most `SPLIT_SLACK` more than one, else one
/// (everything before the split).
fn place_arenas(items: &[Interval], arena: &[usize], align: u64) -> Result<(Placement, u64)> {
    let (two, split) = place_split(items, arena, align)?;
    let one = place(items, align)?;
    if two.peak as f64 <= one.peak as f64 * (1.0 + SPLIT_SLACK) {
        Ok((two, split))
    } else {
        let peak = one.peak;
        Ok((one, peak))
    }
}

/// Places the items of arena 0 and of arena 1 (`arena[i]`) each on its own, and lays the two
/// end to end: the second's offsets start at the first's peak, which it returns (`split`).
pub fn place_split(items: &[Interval], arena: &[usize], align: u64) -> Result<(Placement, u64)> {
    let mut offsets = vec![0u64; items.len()];
    let mut peaks = [0u64; 2];
    let mut naive = 0;
    for (a, peak) in peaks.iter_mut().enumerate() {
        let mine: Vec<usize> = (0..items.len()).filter(|&i| arena[i] == a).collect();
        let p = place(&mine.iter().map(|&i| items[i]).collect::<Vec<_>>(), align)?;
        for (j, &i) in mine.iter().enumerate() {
            offsets[i] = p.offsets[j];
        }
        *peak = p.peak;
        naive = add(naive, p.naive)?;
    }
    // A peak is the end of an aligned size at an aligned offset: aligned itself.
    let split = peaks[0];
    for (o, &a) in offsets.iter_mut().zip(arena) {
        if a == 1 {
            *o = add(*o, split)?;
        }
    }
    let peak = add(split, peaks[1])?;
    Ok((
        Placement {
            offsets,
            peak,
            naive,
        },
        split,
    ))
}

/// Bytes of value `v` (`Graph::add` checked that the count fits a u64; saturating regardless).
pub fn value_bytes(g: &Graph, v: Value) -> u64 {
    let (s, dt) = &g.nodes[v.node].outputs[v.port];
    s.iter()
        .try_fold(dt.size() as u64, |acc, &d| acc.checked_mul(d as u64))
        // Bindings are whole 4-byte words (an odd count of f16 rounds up).
        .and_then(|b| b.checked_next_multiple_of(4))
        .unwrap_or(u64::MAX)
}

/// One value to place: its size and the first and last step (node positions) it is live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval {
    pub bytes: u64,
    pub first: usize,
    pub last: usize,
}

/// Where each interval lives, and what that costs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub offsets: Vec<u64>,
    /// Arena size: the planned peak.
    pub peak: u64,
    /// The sum of all sizes: what a plan without aliasing would need.
    pub naive: u64,
}

/// `x` rounded up to a multiple of `a`, or an `Err` past u64.
fn align_up(x: u64, a: u64) -> Result<u64> {
    x.div_ceil(a).checked_mul(a).ok_or_else(too_large)
}

/// The arena's byte count overflowed: far past any device's buffer limit.
fn too_large() -> Error {
    Error::TooLarge {
        what: "the activation arena (its byte count overflows a u64)".into(),
        amount: u64::MAX,
        limit: u64::MAX,
        unit: Unit::BufferBytes,
    }
}

/// `a + b`, or an `Err` past u64.
fn add(a: u64, b: u64) -> Result<u64> {
    a.checked_add(b).ok_or_else(too_large)
}

/// Places `items` so that no two simultaneously live ones overlap. `align` is the binding offset
/// alignment (a power of two). Byte counts past u64 are an `Err`.
pub fn place(items: &[Interval], align: u64) -> Result<Placement> {
    let align = align.max(4);
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| (items[i].first, std::cmp::Reverse(items[i].bytes)));
    let mut offsets = vec![0u64; items.len()];
    // Live allocations as (offset, end, last step), kept sorted by offset.
    let mut live: Vec<(u64, u64, usize)> = Vec::new();
    let mut peak = 0;
    for &i in &order {
        let it = items[i];
        live.retain(|&(_, _, last)| last >= it.first);
        let size = align_up(it.bytes.max(4), align)?;
        let mut at = 0;
        for &(o, e, _) in &live {
            if add(at, size)? <= o {
                break;
            }
            at = at.max(align_up(e, align)?);
        }
        offsets[i] = at;
        let end = add(at, size)?;
        let pos = live.partition_point(|&(o, _, _)| o < at);
        live.insert(pos, (at, end, it.last));
        peak = peak.max(end);
    }
    let mut naive = 0u64;
    for it in items {
        naive = add(naive, align_up(it.bytes.max(4), align)?)?;
    }
    Ok(Placement {
        offsets,
        peak,
        naive,
    })
}

/// Checks a placement: every pair live at the same time occupies disjoint bytes.
#[cfg(test)]
pub fn overlaps(items: &[Interval], p: &Placement) -> Option<(usize, usize)> {
    for i in 0..items.len() {
        for j in i + 1..items.len() {
            let (a, b) = (items[i], items[j]);
            let time = a.first <= b.last && b.first <= a.last;
            let (ao, bo) = (p.offsets[i], p.offsets[j]);
            let space = ao < bo + b.bytes.max(4) && bo < ao + a.bytes.max(4);
            if time && space {
                return Some((i, j));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    /// Up to `most` random intervals: sizes below `bytes`, first steps below `steps`, lives of up
    /// to `span` steps.
    fn random_items(
        rng: &mut impl rand::Rng,
        most: usize,
        bytes: u64,
        steps: usize,
        span: usize,
    ) -> Vec<Interval> {
        let n = rng.random_range(1..most);
        (0..n)
            .map(|_| {
                let first = rng.random_range(0..steps);
                Interval {
                    bytes: rng.random_range(1..bytes),
                    first,
                    last: first + rng.random_range(0..span),
                }
            })
            .collect()
    }

    #[test]
    fn random_plans_never_overlap_live_values() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for case in 0..300 {
            let items = random_items(&mut rng, 60, 5000, 40, 15);
            let align = [4, 16, 256][case % 3];
            let p = place(&items, align).unwrap();
            assert_eq!(
                overlaps(&items, &p),
                None,
                "case {case}: {items:?} -> {p:?}"
            );
            assert!(p.peak <= p.naive, "case {case}");
            assert!(
                p.offsets.iter().all(|o| o % align == 0),
                "case {case}: misaligned"
            );
            let max_end = items
                .iter()
                .zip(&p.offsets)
                .map(|(it, o)| o + it.bytes)
                .max()
                .unwrap();
            assert!(max_end <= p.peak);
        }
    }

    #[test]
    fn two_arenas_lie_end_to_end_and_never_overlap() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for case in 0..200 {
            let items = random_items(&mut rng, 50, 3000, 30, 10);
            let arena: Vec<usize> = items.iter().map(|_| rng.random_range(0..2)).collect();
            let align = [4, 256][case % 2];
            let (p, split) = place_split(&items, &arena, align).unwrap();
            assert_eq!(overlaps(&items, &p), None, "case {case}");
            assert_eq!(split % align, 0, "case {case}");
            for ((it, o), a) in items.iter().zip(&p.offsets).zip(&arena) {
                assert_eq!(o % align, 0, "case {case}");
                match a {
                    0 => assert!(o + it.bytes <= split, "case {case}"),
                    _ => assert!(*o >= split && o + it.bytes <= p.peak, "case {case}"),
                }
            }
        }
    }

    #[test]
    fn two_arenas_only_where_they_cost_little() {
        let at = |first, last| Interval {
            bytes: 1000,
            first,
            last,
        };
        // Overlapping neighbours: one arena needs two slots anyway, so the split is free.
        let (p, split) = place_arenas(&[at(0, 1), at(1, 2), at(2, 3)], &[0, 1, 0], 256).unwrap();
        assert_eq!((p.peak, split), (2048, 1024));
        // Values that never overlap share one slot of one arena; split, they would take two.
        let (p, split) = place_arenas(&[at(0, 0), at(1, 1), at(2, 2)], &[0, 1, 0], 256).unwrap();
        assert_eq!((p.peak, split), (1024, 1024));
    }

    #[test]
    fn a_chain_reuses_memory() {
        // x0 -> x1 -> x2 -> x3: each lives two steps, so two slots suffice.
        let items: Vec<Interval> = (0..4)
            .map(|i| Interval {
                bytes: 1000,
                first: i,
                last: i + 1,
            })
            .collect();
        let p = place(&items, 256).unwrap();
        assert_eq!(p.peak, 2 * 1024);
        assert_eq!(p.naive, 4 * 1024);
    }

    #[test]
    fn byte_counts_past_u64_are_an_err() {
        let huge = |first| Interval {
            bytes: u64::MAX / 2 + 1,
            first,
            last: 1,
        };
        // Two values live at once, each half of u64: the second's end overflows.
        let e = place(&[huge(0), huge(0)], 256).unwrap_err().to_string();
        assert!(e.contains("activation arena"), "{e}");
        // One value whose aligned size alone overflows.
        let one = Interval {
            bytes: u64::MAX - 1,
            first: 0,
            last: 0,
        };
        assert!(place(&[one], 256).is_err());
    }
}
