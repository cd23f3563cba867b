//! A model summary: each layer's op, output shape and parameter count, then the totals and
//! what the compiled plan costs — the table a user reads to see the scale of a network.

use crate::compile::PlanStats;
use crate::graph::{Graph, Op};

/// The op of a node in a word: the descriptor's type (`Conv2d`, `Pool2d`) where it has one,
/// else the start of its debug text.
fn op_word(op: &Op) -> String {
    let text = format!("{op:?}");
    // "Forward(D2(Conv2d { in_channels: 1, .. }))" -> "Conv2d"
    if let Some(brace) = text.find(" {") {
        let head = &text[..brace];
        let start = head.rfind(['(', ' ']).map_or(0, |i| i + 1);
        return head[start..].to_string();
    }
    let mut t: String = text.chars().take(28).collect();
    if text.chars().count() > 28 {
        t.push('…');
    }
    t
}

fn mb(bytes: u64) -> String {
    format!("{:.2} MB", bytes as f64 / 1e6)
}

/// The summary of `graph`'s forward nodes (gradient nodes are left out), with the plan's
/// memory when compiled.
pub fn summary(graph: &Graph, stats: Option<&PlanStats>) -> String {
    let mut rows = vec![(
        "layer".to_string(),
        "op".to_string(),
        "output".to_string(),
        "params".to_string(),
    )];
    let (mut total, mut trainable) = (0usize, 0usize);
    for n in &graph.nodes {
        let shape = format!("{:?}", n.outputs.first().map(|o| &o.0[..]).unwrap_or(&[]));
        match n.op {
            Op::Param => {
                let k = n.outputs[0].0.iter().product::<usize>();
                total = total.saturating_add(k);
                trainable = trainable.saturating_add(k);
                continue;
            }
            Op::State => {
                total = total.saturating_add(n.outputs[0].0.iter().product::<usize>());
                continue;
            }
            Op::Input => rows.push((n.name.clone(), "input".into(), shape, String::new())),
            Op::Compute(_) => {
                let params: usize = n
                    .inputs
                    .iter()
                    .filter(|v| graph.nodes.get(v.node).is_some_and(|p| p.op == Op::Param))
                    .map(|v| graph.nodes[v.node].outputs[0].0.iter().product::<usize>())
                    .sum();
                let p = if params > 0 {
                    params.to_string()
                } else {
                    String::new()
                };
                rows.push((n.name.clone(), op_word(&n.op), shape, p));
            }
        }
    }
    let w = |f: fn(&(String, String, String, String)) -> &String| {
        rows.iter().map(|r| f(r).chars().count()).max().unwrap_or(0)
    };
    let (a, b, c, d) = (w(|r| &r.0), w(|r| &r.1), w(|r| &r.2), w(|r| &r.3));
    let mut out = String::new();
    for r in &rows {
        out += &format!("{:a$}  {:b$}  {:c$}  {:>d$}\n", r.0, r.1, r.2, r.3);
    }
    out += &format!(
        "parameters: {trainable} trainable ({}), {} in persistent state\n",
        mb(trainable as u64 * 4),
        total - trainable
    );
    if let Some(s) = stats {
        out += &format!(
            "plan: {} dispatches and {} submit(s) per step; activations {} planned (naive {}); weights {}\n",
            s.dispatches_per_step,
            s.submits_per_step,
            mb(s.arena_bytes),
            mb(s.naive_bytes),
            mb(s.weight_bytes)
        );
    }
    out
}
