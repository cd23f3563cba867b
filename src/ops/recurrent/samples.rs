//! Sample cases of the recurrent layers: each cell on awkward sizes (T = 1 and 37, hidden 1, 7
//! and 33, batch 1), reversed, with initial states, through the final states only, stacked and
//! bidirectional.

use super::op::{Merge, RecurrentLayers};
use crate::error::Result;
use crate::graph::{Graph, Value};
use crate::neuron::UnaryOp;
use crate::ops::elementwise::BinaryOp;
use crate::ops::sample::Sample;

/// The sequence input `x (T, N, I)`.
fn seq(g: &mut Graph, t: usize, n: usize, i: usize) -> Result<Value> {
    g.input("x", &[t, n, i])
}

pub fn samples() -> Vec<Sample> {
    vec![
        Sample::new("recurrent/rnn_tanh", |g, s| {
            let x = seq(g, 5, 3, 4)?;
            Ok(g.rnn("rnn", UnaryOp::Tanh, x, RecurrentLayers::new(7 * s))?
                .y)
        }),
        Sample::new("recurrent/rnn_relu_t1", |g, s| {
            let x = seq(g, 1, 2, 3 * s)?;
            Ok(g.rnn("rnn", UnaryOp::Relu, x, RecurrentLayers::new(5))?.y)
        }),
        Sample::new("recurrent/lstm", |g, s| {
            let x = seq(g, 4, 3, 5)?;
            Ok(g.lstm("lstm", x, RecurrentLayers::new(7 * s))?.y)
        }),
        Sample::new("recurrent/lstm_h33", |g, s| {
            let x = seq(g, 3, 2 * s, 3)?;
            Ok(g.lstm("lstm", x, RecurrentLayers::new(33))?.y)
        }),
        Sample::new("recurrent/lstm_t37_batch1", |g, s| {
            let x = seq(g, 37, s, 2)?;
            Ok(g.lstm("lstm", x, RecurrentLayers::new(7))?.y)
        }),
        // The reversed direction's h_n plus the forward one's c_n: both final states' vjp.
        Sample::new("recurrent/lstm_hidden1_bidirectional_states", |g, s| {
            let x = seq(g, 6, 3 * s, 2)?;
            let layers = RecurrentLayers::new(1)
                .with_initial_state()
                .bidirectional(Merge::Sum);
            let o = g.lstm("lstm", x, layers)?;
            g.binary("h_plus_c", BinaryOp::Add, o.h_n[1], o.c_n[0])
        }),
        Sample::new("recurrent/lstm_reverse_final_states", |g, s| {
            let x = seq(g, 5, 2, 3)?;
            let layers = RecurrentLayers::new(4 * s)
                .with_initial_state()
                .bidirectional(Merge::Concat);
            let o = g.lstm("lstm", x, layers)?;
            // The forward direction's h_n times the reversed one's c_n: both final states' vjp.
            g.binary("h_times_c", BinaryOp::Mul, o.h_n[0], o.c_n[1])
        }),
        // 17 sequences: two 16-row tiles, the second with one row.
        Sample::new("recurrent/lstm_batch17", |g, s| {
            let x = seq(g, 3, 17, 2)?;
            let layers = RecurrentLayers::new(9 * s).with_initial_state();
            Ok(g.lstm("lstm", x, layers)?.y)
        }),
        Sample::new("recurrent/gru", |g, s| {
            let x = seq(g, 6, 3, 5)?;
            Ok(g.gru("gru", x, RecurrentLayers::new(7 * s))?.y)
        }),
        Sample::new("recurrent/gru_no_bias_h_n", |g, s| {
            let x = seq(g, 4, 2 * s, 3)?;
            let layers = RecurrentLayers::new(6).without_bias().with_initial_state();
            Ok(g.gru("gru", x, layers)?.h_n[0])
        }),
        Sample::new("recurrent/gru_bidirectional_sum", |g, s| {
            let x = seq(g, 5, 2, 3)?;
            let layers = RecurrentLayers::new(5 * s).bidirectional(Merge::Sum);
            Ok(g.gru("gru", x, layers)?.y)
        }),
        Sample::new("recurrent/lstm_stacked_bidirectional", |g, s| {
            let x = seq(g, 4, 2, 3)?;
            let layers = RecurrentLayers::new(4 * s)
                .layers(2)
                .bidirectional(Merge::Concat);
            Ok(g.lstm("lstm", x, layers)?.last_hidden)
        }),
        Sample::new("recurrent/rnn_stacked", |g, s| {
            let x = seq(g, 3, 2, 2)?;
            let layers = RecurrentLayers::new(3 * s).layers(3);
            Ok(g.rnn("rnn", UnaryOp::Tanh, x, layers)?.y)
        }),
    ]
}
