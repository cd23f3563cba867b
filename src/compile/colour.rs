//! Which of the two activation arenas each intermediate lives in (`memory.rs` places them). A
//! launch keeps its kernels' read-only bindings only when no buffer it reads is also bound
//! writable (`launch::Shader::source_of`), so each launching node writes the arena that leaves
//! fewer launches read-write: its own (if it reads that arena) and those of its later readers
//! whose output is already placed (a gradient summed in place, a concat slice); then the arena
//! it reads fewer bytes of. Nodes are walked in order and a value takes its arena from its first
//! writer; views, fused neurons and values written in place share their owner's arena, and an
//! elided concat's inputs their output's. A node reading both arenas (a residual sum, say) keeps
//! read-write bindings whichever it writes.

use std::collections::HashMap;

use super::alias::Aliases;
use super::fusion::Fusion;
use super::memory::Interval;
use crate::graph::{Graph, Value};

/// The memory `v` is written into: its owner's, or for an elided concat's input its output's.
pub fn storage(aliases: &Aliases, mut v: Value) -> Value {
    loop {
        let o = aliases.owner(v);
        match aliases.slices.get(&o) {
            Some(&(out, _)) => v = out,
            None => return o,
        }
    }
}

/// The arena (0 or 1) of each of `owned` (whose lifetimes are `items`), for the launching nodes
/// of `g` under `aliases` and `fusion`.
pub fn arenas(
    g: &Graph,
    aliases: &Aliases,
    fusion: &Fusion,
    owned: &[Value],
    items: &[Interval],
) -> Vec<usize> {
    let index: HashMap<Value, usize> = owned.iter().enumerate().map(|(k, &v)| (v, k)).collect();
    let launching = |i: usize| !aliases.alias.get(i).copied().unwrap_or(true);
    // The storage each launching node writes, and the launching nodes reading each storage.
    let writes: Vec<Vec<usize>> = (g.nodes.iter().enumerate())
        .map(|(i, node)| match launching(i) {
            true => (0..node.outputs.len())
                .filter_map(|port| index.get(&storage(aliases, Value { node: i, port })))
                .copied()
                .collect(),
            false => Vec::new(),
        })
        .collect();
    let mut readers: Vec<Vec<usize>> = vec![Vec::new(); owned.len()];
    for i in (0..g.nodes.len()).filter(|&i| launching(i)) {
        for u in fusion.reads(g, i) {
            if let Some(&k) = index.get(&storage(aliases, u)) {
                readers[k].push(i);
            }
        }
    }
    let mut arena: Vec<Option<usize>> = vec![None; owned.len()];
    for i in (0..g.nodes.len()).filter(|&i| launching(i)) {
        let written: Vec<usize> = (writes[i].iter().copied())
            .filter(|&k| arena[k].is_none())
            .collect();
        if written.is_empty() {
            continue;
        }
        // Per arena, were this node to write it: the bytes it reads there (any makes it
        // read-write), and the later readers of its output already writing there (each then
        // read-write). A GEMM loses more to read-write bindings than a norm or a copy, and a
        // node reading both arenas is read-write anyway, so those readers weigh as much as the
        // node itself, and win a tie.
        let mut read = [0u64; 2];
        for u in fusion.reads(g, i) {
            if let Some(&k) = index.get(&storage(aliases, u))
                && let Some(a) = arena[k]
            {
                read[a] = read[a].saturating_add(items[k].bytes);
            }
        }
        let mut readers_clash = [0usize; 2];
        for &k in &written {
            for &j in readers[k].iter().filter(|&&j| j > i) {
                for a in writes[j].iter().filter_map(|&w| arena[w]) {
                    readers_clash[a] += 1;
                }
            }
        }
        let cost = |a: usize| {
            (
                usize::from(read[a] > 0) + readers_clash[a],
                readers_clash[a],
                read[a],
            )
        };
        let pick = if cost(0) != cost(1) {
            usize::from(cost(1) < cost(0))
        } else {
            // Reading neither (or both alike): the arena with fewer bytes live here, so the
            // two stay balanced and their peaks low.
            let mut live = [0u64; 2];
            for (k, a) in arena.iter().enumerate() {
                if let Some(a) = a
                    && items[k].first <= i
                    && i <= items[k].last
                {
                    live[*a] = live[*a].saturating_add(items[k].bytes);
                }
            }
            usize::from(live[1] < live[0])
        };
        for k in written {
            arena[k] = Some(pick);
        }
    }
    arena.into_iter().map(|a| a.unwrap_or(0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::Options;

    /// `g`'s plan for `outputs` under `opts`, and the arena of each of its owned values.
    fn plan_arenas(
        g: &Graph,
        outputs: &[Value],
        opts: &Options,
    ) -> (crate::compile::Plan, Vec<usize>) {
        let p = crate::compile::plan(g, outputs, opts, (256, u32::MAX), None).unwrap();
        let owned = &p.memory.owned;
        let items = crate::compile::memory::intervals(g, &p.lifetimes, owned);
        let arena = arenas(g, &p.aliases, &p.fusion, owned, &items);
        (p, arena)
    }

    /// Every launching node of `g`'s plan for `outputs` (under `opts`) whose reads all lie in
    /// one arena writes the other.
    fn assert_reads_apart(g: &Graph, outputs: &[Value], opts: &Options) -> usize {
        let (p, arena) = plan_arenas(g, outputs, opts);
        let owned = &p.memory.owned;
        let of = |v: Value| {
            owned
                .iter()
                .position(|&o| o == storage(&p.aliases, v))
                .map(|k| arena[k])
        };
        let mut checked = 0;
        for (i, node) in g.nodes.iter().enumerate() {
            if !p.live[i] || p.aliases.alias[i] {
                continue;
            }
            let reads: Vec<usize> = p.fusion.reads(g, i).filter_map(of).collect();
            let writes: Vec<usize> = (0..node.outputs.len())
                .filter_map(|port| of(Value { node: i, port }))
                .collect();
            if reads.is_empty() || writes.is_empty() || reads.iter().any(|&r| r != reads[0]) {
                continue;
            }
            assert!(
                writes.iter().all(|&w| w != reads[0]),
                "node {} reads and writes arena {}",
                node.name,
                reads[0]
            );
            checked += 1;
        }
        checked
    }

    /// Layers with fused neurons: the neuron's output is its producer's memory, one node
    /// deeper, so colouring by depth put a layer's input and output in one arena.
    #[test]
    fn fused_layers_read_one_arena_and_write_the_other() {
        let mut g = Graph::new();
        let x = g.input("x", &[4, 8]).unwrap();
        let mut h = x;
        for l in 0..4 {
            h = g.linear(&format!("fc{l}"), h, 8).unwrap();
            h = g
                .unary(&format!("relu{l}"), crate::UnaryOp::Relu, h)
                .unwrap();
        }
        let y = g.linear("out", h, 3).unwrap();
        assert!(assert_reads_apart(&g, &[y], &Options::default()) >= 3);
    }

    /// The zoo's training steps: a branch's data gradient adds into the block input's gradient,
    /// placed by the branch before it, so the node producing what it reads looks ahead (it
    /// used to pick by its own reads only, and 27 of Inception v3's data gradients and 4 of
    /// ResNet-50's read and wrote one arena).
    #[test]
    fn gradients_summed_in_place_read_the_other_arena() {
        use crate::train::models::{InceptionSize, ResNetSize, inception_v3, resnet50};
        let nets = [
            inception_v3(2, (75, 75), InceptionSize::TORCHVISION).unwrap(),
            resnet50(2, (64, 64), ResNetSize::TORCHVISION).unwrap(),
        ];
        for mut net in nets {
            let tr = net.graph.training(net.loss).unwrap();
            let opts = Options {
                training: Some(&tr),
                ..Options::default()
            };
            assert!(assert_reads_apart(&net.graph, &[net.loss], &opts) > 150);
        }
    }

    /// A plain chain, unfused (each node its own launch), alternates arenas.
    #[test]
    fn a_chain_alternates_arenas() {
        let mut g = Graph::new();
        let x = g.input("x", &[4, 8]).unwrap();
        let a = g.unary("a", crate::UnaryOp::Relu, x).unwrap();
        let b = g.unary("b", crate::UnaryOp::Square, a).unwrap();
        let c = g.unary("c", crate::UnaryOp::Relu, b).unwrap();
        let d = g.unary("d", crate::UnaryOp::Square, c).unwrap();
        let opts = Options {
            fuse: false,
            ..Options::default()
        };
        let (p, arena) = plan_arenas(&g, &[d], &opts);
        let at = |v: Value| arena[p.memory.owned.iter().position(|&o| o == v).unwrap()];
        assert_ne!(at(a), at(b));
        assert_ne!(at(b), at(c));
    }
}
