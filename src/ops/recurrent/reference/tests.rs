//! Tests of the recurrent reference: finite differences of every gradient, known values that
//! pin PyTorch's gate orders, reverse vs reversed input, the reserve layout, and bad shapes.

use super::*;
use crate::neuron::UnaryOp;
use crate::ops::conv::reference::testing::{assert_close, assert_fd, dot};
use crate::reference::max_rel_diff;

/// Every forward input of one layer.
#[derive(Clone)]
struct Inputs {
    x: Array,
    w_ih: Array,
    w_hh: Array,
    b_ih: Option<Array>,
    b_hh: Option<Array>,
    h0: Option<Array>,
    c0: Option<Array>,
}

impl Inputs {
    /// Seeded values in [-1, 1) for `T` steps of `N` sequences; inputs the op does not take
    /// are `None`.
    fn seeded(op: &Recurrent, t: usize, n: usize, seed: u64) -> Inputs {
        let state = [n, op.hidden_size];
        let rows = [op.gate_rows().unwrap()];
        Inputs {
            x: Array::seeded(&[t, n, op.input_size], seed),
            w_ih: Array::seeded(&op.weight_ih_shape().unwrap(), seed + 1),
            w_hh: Array::seeded(&op.weight_hh_shape().unwrap(), seed + 2),
            b_ih: op.bias.then(|| Array::seeded(&rows, seed + 3)),
            b_hh: op.bias.then(|| Array::seeded(&rows, seed + 4)),
            h0: op.initial_state.then(|| Array::seeded(&state, seed + 5)),
            c0: (op.initial_state && op.cell.has_cell_state())
                .then(|| Array::seeded(&state, seed + 6)),
        }
    }

    fn forward(&self, op: &Recurrent) -> Result<Forward> {
        forward(
            op,
            &self.x,
            &self.w_ih,
            &self.w_hh,
            self.b_ih.as_ref(),
            self.b_hh.as_ref(),
            self.h0.as_ref(),
            self.c0.as_ref(),
        )
    }

    fn backward(
        &self,
        op: &Recurrent,
        dy: Option<&Array>,
        dh_n: Option<&Array>,
        dc_n: Option<&Array>,
    ) -> Result<Grads> {
        backward(
            op,
            &self.x,
            &self.w_ih,
            &self.w_hh,
            self.b_ih.as_ref(),
            self.b_hh.as_ref(),
            self.h0.as_ref(),
            self.c0.as_ref(),
            dy,
            dh_n,
            dc_n,
        )
    }
}

fn layer(cell: Cell, i: usize, h: usize, bias: bool, reverse: bool, init: bool) -> Recurrent {
    Recurrent {
        bias,
        reverse,
        initial_state: init,
        ..Recurrent::new(cell, i, h)
    }
}

/// Which upstream gradients the loss has.
#[derive(Clone, Copy, Debug)]
enum Upstream {
    All,
    OnlyDy,
    OnlyDhN,
    OnlyDcN,
}

/// Every gradient against central differences of `sum(y·Wy) + sum(h_n·Wh) + sum(c_n·Wc)`,
/// with the terms `up` leaves out dropped.
fn check_grads(op: &Recurrent, (t, n): (usize, usize), up: Upstream, seed: u64) {
    let what = format!("{op:?} T={t} N={n} {up:?}");
    let inp = Inputs::seeded(op, t, n, seed);
    let state = [n, op.hidden_size];
    let lstm = op.cell.has_cell_state();
    let (use_y, use_h, use_c) = match up {
        Upstream::All => (true, true, lstm),
        Upstream::OnlyDy => (true, false, false),
        Upstream::OnlyDhN => (false, true, false),
        Upstream::OnlyDcN => (false, false, true),
    };
    let wy = use_y.then(|| Array::seeded(&[t, n, op.hidden_size], seed + 10));
    let wh = use_h.then(|| Array::seeded(&state, seed + 11));
    let wc = use_c.then(|| Array::seeded(&state, seed + 12));
    let loss = |inp: &Inputs| {
        let f = inp.forward(op).unwrap();
        wy.as_ref().map_or(0.0, |w| dot(&f.y, w))
            + wh.as_ref().map_or(0.0, |w| dot(&f.h_n, w))
            + wc.as_ref().map_or(0.0, |w| dot(f.c_n.as_ref().unwrap(), w))
    };
    if let Cell::Rnn(UnaryOp::Relu) = op.cell {
        // Central differences across the kink would disagree with either convention.
        let f = inp.forward(op).unwrap();
        let near = f.reserve.data.iter().fold(f64::MAX, |m, a| m.min(a.abs()));
        assert!(
            near > 1e-4,
            "{what}: a pre-activation is {near} from the kink"
        );
    }
    let g = inp
        .backward(op, wy.as_ref(), wh.as_ref(), wc.as_ref())
        .unwrap();
    let with = |f: &dyn Fn(&mut Inputs)| {
        let mut i = inp.clone();
        f(&mut i);
        loss(&i)
    };
    assert_fd(&format!("{what} dx"), &inp.x, &g.dx, |a| {
        with(&|i| i.x = a.clone())
    });
    assert_fd(&format!("{what} dw_ih"), &inp.w_ih, &g.dw_ih, |a| {
        with(&|i| i.w_ih = a.clone())
    });
    assert_fd(&format!("{what} dw_hh"), &inp.w_hh, &g.dw_hh, |a| {
        with(&|i| i.w_hh = a.clone())
    });
    assert_eq!(g.db_ih.is_some(), op.bias, "{what}");
    assert_eq!(g.db_hh.is_some(), op.bias, "{what}");
    assert_eq!(g.dh0.is_some(), op.initial_state, "{what}");
    assert_eq!(g.dc0.is_some(), op.initial_state && lstm, "{what}");
    if let (Some(b), Some(db)) = (&inp.b_ih, &g.db_ih) {
        assert_fd(&format!("{what} db_ih"), b, db, |a| {
            with(&|i| i.b_ih = Some(a.clone()))
        });
    }
    if let (Some(b), Some(db)) = (&inp.b_hh, &g.db_hh) {
        assert_fd(&format!("{what} db_hh"), b, db, |a| {
            with(&|i| i.b_hh = Some(a.clone()))
        });
    }
    if let (Some(h0), Some(dh0)) = (&inp.h0, &g.dh0) {
        assert_fd(&format!("{what} dh0"), h0, dh0, |a| {
            with(&|i| i.h0 = Some(a.clone()))
        });
    }
    if let (Some(c0), Some(dc0)) = (&inp.c0, &g.dc0) {
        assert_fd(&format!("{what} dc0"), c0, dc0, |a| {
            with(&|i| i.c0 = Some(a.clone()))
        });
    }
}

/// `(T, N, I, H)`, awkward on purpose.
const SIZES: [(usize, usize, usize, usize); 4] =
    [(1, 1, 1, 1), (4, 3, 3, 5), (4, 1, 3, 2), (1, 3, 1, 2)];

/// Every direction × bias × initial state, each at every size with all upstream gradients
/// and at one with a single one (rotating through the sizes and which one).
fn check_cell(cell: Cell) {
    let mut singles = vec![Upstream::OnlyDy, Upstream::OnlyDhN];
    if cell.has_cell_state() {
        singles.push(Upstream::OnlyDcN);
    }
    let mut k = 0;
    for reverse in [false, true] {
        for bias in [false, true] {
            for init in [false, true] {
                let single = (SIZES[(k + 1) % 4], singles[k % singles.len()]);
                let all = SIZES.map(|size| (size, Upstream::All));
                for ((t, n, i, h), up) in all.into_iter().chain([single]) {
                    let op = layer(cell, i, h, bias, reverse, init);
                    check_grads(&op, (t, n), up, 100 * k as u64);
                }
                k += 1;
            }
        }
    }
}

#[test]
fn grads_rnn_tanh() {
    check_cell(Cell::Rnn(UnaryOp::Tanh));
}

#[test]
fn grads_rnn_relu() {
    check_cell(Cell::Rnn(UnaryOp::Relu));
}

#[test]
fn grads_lstm() {
    check_cell(Cell::Lstm);
}

#[test]
fn grads_gru() {
    check_cell(Cell::Gru);
}

#[test]
fn no_upstream_gradient_is_zero() {
    let op = layer(Cell::Lstm, 2, 3, true, false, true);
    let g = Inputs::seeded(&op, 3, 2, 5)
        .backward(&op, None, None, None)
        .unwrap();
    for a in [&g.dx, &g.dw_ih, &g.dw_hh, g.db_hh.as_ref().unwrap()] {
        assert!(a.data.iter().all(|&v| v == 0.0));
    }
    assert!(g.dc0.unwrap().data.iter().all(|&v| v == 0.0));
}

#[test]
fn lstm_gates_in_pytorch_order() {
    // Zero weights: each gate is σ or tanh of its bias (split over b_ih and b_hh), so c and h
    // have a closed form; the four biases differ, so any other gate order gives other values.
    let op = layer(Cell::Lstm, 2, 1, true, false, true);
    let bias = [0.5, -1.0, 2.0, 1.5]; // i, f, g, o
    let inp = Inputs {
        x: Array::seeded(&[2, 1, 2], 1),
        w_ih: Array::zeros(&[4, 2]),
        w_hh: Array::zeros(&[4, 1]),
        b_ih: Some(Array::new(&[4], bias.map(|b| b - 0.25).to_vec())),
        b_hh: Some(Array::new(&[4], vec![0.25; 4])),
        h0: Some(Array::new(&[1, 1], vec![0.3])),
        c0: Some(Array::new(&[1, 1], vec![-0.7])),
    };
    let f = inp.forward(&op).unwrap();
    let expect = |[i, f, g, o]: [f64; 4]| {
        let c1 = f * -0.7 + i * g;
        let c2 = f * c1 + i * g;
        (c1, c2, o * c1.tanh(), o * c2.tanh())
    };
    let gates = [sigmoid(0.5), sigmoid(-1.0), 2f64.tanh(), sigmoid(1.5)];
    let (c1, c2, h1, h2) = expect(gates);
    assert_close("lstm y", &f.y.data, &[h1, h2]);
    assert_close("lstm h_n", &f.h_n.data, &[h2]);
    assert_close("lstm c_n", &f.c_n.unwrap().data, &[c2]);
    let mut reserve = [gates, gates].concat();
    reserve.extend([c1, c2]);
    assert_close("lstm reserve", &f.reserve.data, &reserve);
    // The test can tell: i, f, o, g (g and o swapped) would give another h.
    let swapped = [gates[0], gates[1], 1.5f64.tanh(), sigmoid(2.0)];
    assert!((expect(swapped).3 - h2).abs() > 1e-2);
}

#[test]
fn gru_reset_multiplies_b_hn() {
    // Zero weights: r, z fixed by the biases, n = tanh(b_in + r·b_hn) (PyTorch), not
    // tanh(b_in + b_hn) nor with r and z exchanged.
    let op = layer(Cell::Gru, 1, 1, true, false, true);
    let (bi, bh) = ([0.4, -0.3, 0.2], [-1.0, 1.1, 0.9]); // r, z, n
    let inp = Inputs {
        x: Array::seeded(&[2, 1, 1], 1),
        w_ih: Array::zeros(&[3, 1]),
        w_hh: Array::zeros(&[3, 1]),
        b_ih: Some(Array::new(&[3], bi.to_vec())),
        b_hh: Some(Array::new(&[3], bh.to_vec())),
        h0: Some(Array::new(&[1, 1], vec![0.6])),
        c0: None,
    };
    let f = inp.forward(&op).unwrap();
    let (r, z) = (sigmoid(bi[0] + bh[0]), sigmoid(bi[1] + bh[1]));
    let n = (bi[2] + r * bh[2]).tanh();
    let h1 = (1.0 - z) * n + z * 0.6;
    let h2 = (1.0 - z) * n + z * h1;
    assert_close("gru y", &f.y.data, &[h1, h2]);
    assert_close(
        "gru reserve",
        &f.reserve.data,
        &[r, z, n, r, z, n, bh[2], bh[2]],
    );
    assert!(f.c_n.is_none());
}

#[test]
fn gru_saturated_update_gate_keeps_the_state() {
    // z ≈ 1 whatever the weights: h_t = h0 at every step. Saturating r instead changes h.
    let op = layer(Cell::Gru, 3, 2, true, true, true);
    let mut inp = Inputs::seeded(&op, 4, 3, 7);
    let h0 = inp.h0.clone().unwrap();
    let b = inp.b_ih.as_mut().unwrap();
    b.data[2..4].fill(40.0);
    let f = inp.forward(&op).unwrap();
    for t in 0..4 {
        assert_close("gru z = 1", &f.y.data[t * 6..][..6], &h0.data);
    }
    assert_close("gru z = 1 h_n", &f.h_n.data, &h0.data);
    let b = inp.b_ih.as_mut().unwrap();
    b.data[2..4].fill(0.0);
    b.data[0..2].fill(40.0);
    let f = inp.forward(&op).unwrap();
    assert!(max_rel_diff(&f.h_n.data, &h0.data) > 1e-2);
}

#[test]
fn linear_rnn_sums_the_inputs() {
    // Identity weights and activation: h_t = h0 + the inputs processed so far (a prefix sum
    // forward, a suffix sum reversed).
    let id = Array::new(&[2, 2], vec![1.0, 0.0, 0.0, 1.0]);
    let act = UnaryOp::Linear { a: 1.0, b: 0.0 };
    let x = Array::seeded(&[3, 1, 2], 3);
    let h0 = Array::new(&[1, 2], vec![0.5, -2.0]);
    for reverse in [false, true] {
        let op = layer(Cell::Rnn(act), 2, 2, false, reverse, true);
        let f = forward(&op, &x, &id, &id, None, None, Some(&h0), None).unwrap();
        let mut expect = vec![0.0; 6];
        let mut acc = h0.data.clone();
        let ts: Vec<usize> = if reverse {
            vec![2, 1, 0]
        } else {
            vec![0, 1, 2]
        };
        for t in ts {
            for j in 0..2 {
                acc[j] += x.data[t * 2 + j];
                expect[t * 2 + j] = acc[j];
            }
        }
        assert_close("linear rnn y", &f.y.data, &expect);
        // The pre-activation is the output for the identity.
        assert_close("linear rnn reserve", &f.reserve.data, &expect);
        assert_close("linear rnn h_n", &f.h_n.data, &acc);
    }
}

/// `a` `(T, rest…)` with its time axis reversed.
fn time_reversed(a: &[f64], t: usize) -> Vec<f64> {
    let per = a.len() / t;
    (0..t)
        .rev()
        .flat_map(|s| a[s * per..][..per].to_vec())
        .collect()
}

#[test]
fn reverse_is_forward_on_the_reversed_sequence() {
    let (t, n) = (4, 3);
    for cell in [Cell::Rnn(UnaryOp::Tanh), Cell::Lstm, Cell::Gru] {
        let rev = layer(cell, 3, 2, true, true, true);
        let fwd = Recurrent {
            reverse: false,
            ..rev
        };
        let inp = Inputs::seeded(&rev, t, n, 20);
        let flipped = Inputs {
            x: Array::new(&inp.x.shape, time_reversed(&inp.x.data, t)),
            ..inp.clone()
        };
        let (a, b) = (inp.forward(&rev).unwrap(), flipped.forward(&fwd).unwrap());
        assert_close("reverse y", &a.y.data, &time_reversed(&b.y.data, t));
        assert_close("reverse h_n", &a.h_n.data, &b.h_n.data);
        assert_eq!(a.c_n, b.c_n);
        let split = t * n * rev.gate_rows().unwrap();
        let (ra, rb) = (&a.reserve.data, &b.reserve.data);
        assert_close("reserve 1", &ra[..split], &time_reversed(&rb[..split], t));
        if split < ra.len() {
            assert_close("reserve 2", &ra[split..], &time_reversed(&rb[split..], t));
        }
        let dy = Array::seeded(&a.y.shape, 21);
        let dy_flipped = Array::new(&dy.shape, time_reversed(&dy.data, t));
        let dh_n = Array::seeded(&a.h_n.shape, 22);
        let ga = inp.backward(&rev, Some(&dy), Some(&dh_n), None).unwrap();
        let gb = flipped
            .backward(&fwd, Some(&dy_flipped), Some(&dh_n), None)
            .unwrap();
        assert_close("reverse dx", &ga.dx.data, &time_reversed(&gb.dx.data, t));
        assert_close("reverse dw_hh", &ga.dw_hh.data, &gb.dw_hh.data);
        assert_close("reverse dh0", &ga.dh0.unwrap().data, &gb.dh0.unwrap().data);
    }
}

/// Row `row` of `w` times `v`, plus `b[row]`.
fn row_dot(w: &Array, row: usize, v: &[f64], b: Option<&Array>) -> f64 {
    let k = w.shape[1];
    let s: f64 = (0..k).map(|i| w.data[row * k + i] * v[i]).sum();
    s + b.map_or(0.0, |b| b.data[row])
}

#[test]
fn reserve_holds_what_the_doc_says() {
    // Each step redone from y (the previous step's output, in processing order) and, for
    // the LSTM, the reserve's previous cell.
    let (t_len, n, isz, hs) = (3, 2, 3, 2);
    for cell in [Cell::Rnn(UnaryOp::Tanh), Cell::Lstm, Cell::Gru] {
        for reverse in [false, true] {
            let op = layer(cell, isz, hs, true, reverse, true);
            let inp = Inputs::seeded(&op, t_len, n, 30);
            let f = inp.forward(&op).unwrap();
            let g = cell.gates();
            assert_eq!(f.reserve.len(), op.reserve_len(t_len, n).unwrap());
            let (first, second) = f.reserve.data.split_at(t_len * n * g * hs);
            let mut prev: Option<usize> = None;
            for t in order(&op, t_len) {
                for b in 0..n {
                    let h_prev = match prev {
                        Some(p) => f.y.data[(p * n + b) * hs..][..hs].to_vec(),
                        None => inp.h0.as_ref().unwrap().data[b * hs..][..hs].to_vec(),
                    };
                    let x_t = &inp.x.data[(t * n + b) * isz..][..isz];
                    let pre = |k: usize, j: usize| {
                        let row = k * hs + j;
                        row_dot(&inp.w_ih, row, x_t, inp.b_ih.as_ref())
                            + row_dot(&inp.w_hh, row, &h_prev, inp.b_hh.as_ref())
                    };
                    for j in 0..hs {
                        let gate = |k: usize| first[((t * n + b) * g + k) * hs + j];
                        let extra = second.get((t * n + b) * hs + j).copied();
                        let y = f.y.data[(t * n + b) * hs + j];
                        match cell {
                            Cell::Rnn(_) => {
                                assert_close("rnn a", &[gate(0)], &[pre(0, j)]);
                                assert_close("rnn y", &[y], &[pre(0, j).tanh()]);
                            }
                            Cell::Lstm => {
                                let [i, ff, gg, o] = [
                                    sigmoid(pre(0, j)),
                                    sigmoid(pre(1, j)),
                                    pre(2, j).tanh(),
                                    sigmoid(pre(3, j)),
                                ];
                                assert_close(
                                    "lstm gates",
                                    &[0, 1, 2, 3].map(gate),
                                    &[i, ff, gg, o],
                                );
                                let c_prev = match prev {
                                    Some(p) => second[(p * n + b) * hs + j],
                                    None => inp.c0.as_ref().unwrap().data[b * hs + j],
                                };
                                let c = ff * c_prev + i * gg;
                                assert_close("lstm c", &[extra.unwrap()], &[c]);
                                assert_close("lstm y", &[y], &[o * c.tanh()]);
                            }
                            Cell::Gru => {
                                let hn = row_dot(&inp.w_hh, 2 * hs + j, &h_prev, inp.b_hh.as_ref());
                                assert_close("gru hn", &[extra.unwrap()], &[hn]);
                                let r = sigmoid(pre(0, j));
                                let z = sigmoid(pre(1, j));
                                let xn = row_dot(&inp.w_ih, 2 * hs + j, x_t, inp.b_ih.as_ref());
                                let nn = (xn + r * hn).tanh();
                                assert_close("gru gates", &[0, 1, 2].map(gate), &[r, z, nn]);
                                assert_close("gru y", &[y], &[(1.0 - z) * nn + z * h_prev[j]]);
                            }
                        }
                    }
                }
                prev = Some(t);
            }
            let last = if reverse { 0 } else { t_len - 1 };
            assert_close("h_n", &f.h_n.data, &f.y.data[last * n * hs..][..n * hs]);
            if let Some(c_n) = f.c_n {
                assert_close("c_n", &c_n.data, &second[last * n * hs..][..n * hs]);
            }
        }
    }
}

#[test]
fn shape_errors() {
    // Each case breaks one input of a valid call; forward and backward both refuse it with
    // a message holding `msg`.
    let lstm = layer(Cell::Lstm, 3, 2, true, false, true);
    let gru = layer(Cell::Gru, 3, 2, true, false, true);
    let no_bias = Recurrent {
        bias: false,
        ..lstm
    };
    let no_init = Recurrent {
        initial_state: false,
        ..lstm
    };
    let zero_hidden = Recurrent {
        hidden_size: 0,
        ..lstm
    };
    let s = |shape: &[usize]| Some(Array::zeros(shape));
    let check = |op: &Recurrent, edit: &dyn Fn(&mut Inputs), msg: &str| {
        let mut inp = Inputs::seeded(if op.cell == Cell::Gru { &gru } else { &lstm }, 2, 4, 1);
        edit(&mut inp);
        let f = inp.forward(op).map(|_| ());
        let b = inp.backward(op, None, None, None).map(|_| ());
        for r in [f, b] {
            let m = r.expect_err(msg).to_string();
            assert!(m.contains(msg) && m.contains("recurrent"), "{msg}: {m}");
        }
    };
    check(
        &lstm,
        &|i| i.x = s(&[2, 12]).unwrap(),
        "input [2, 12] must be",
    );
    check(
        &lstm,
        &|i| i.x = s(&[2, 4, 2]).unwrap(),
        "2 features per step",
    );
    check(&lstm, &|i| i.x = s(&[0, 4, 3]).unwrap(), "empty (T = 0)");
    check(
        &lstm,
        &|i| i.x = s(&[2, 0, 3]).unwrap(),
        "input [2, 0, 3] must be",
    );
    check(
        &lstm,
        &|i| i.w_ih = s(&[8, 2]).unwrap(),
        "w_ih has shape [8, 2], expected [8, 3]",
    );
    check(
        &lstm,
        &|i| i.w_hh = s(&[6, 2]).unwrap(),
        "w_hh has shape [6, 2], expected [8, 2]",
    );
    check(
        &lstm,
        &|i| i.b_ih = s(&[6]),
        "b_ih has shape [6], expected [8]",
    );
    check(
        &lstm,
        &|i| i.b_hh = s(&[8, 1]),
        "b_hh has shape [8, 1], expected [8]",
    );
    check(&lstm, &|i| i.b_ih = None, "b_ih [8] is missing");
    check(&lstm, &|i| i.b_hh = None, "b_hh [8] is missing");
    check(&no_bias, &|i| i.b_hh = None, "b_ih [8] was given");
    check(&no_bias, &|i| i.b_ih = None, "b_hh [8] was given");
    check(
        &lstm,
        &|i| i.h0 = s(&[2, 3]),
        "h0 has shape [2, 3], expected [4, 2]",
    );
    check(&lstm, &|i| i.h0 = None, "h0 [4, 2] is missing");
    check(&no_init, &|i| i.c0 = None, "h0 [4, 2] was given");
    check(
        &lstm,
        &|i| i.c0 = s(&[4, 3]),
        "c0 has shape [4, 3], expected [4, 2]",
    );
    check(&lstm, &|i| i.c0 = None, "c0 [4, 2] is missing");
    check(&no_init, &|i| i.h0 = None, "c0 [4, 2] was given");
    check(
        &gru,
        &|i| i.c0 = s(&[4, 2]),
        "c0 [4, 2] was given but a gru layer",
    );
    check(&zero_hidden, &|_| {}, "hidden_size 0");

    // The upstream gradients.
    let inp = Inputs::seeded(&lstm, 2, 4, 1);
    let refuse = |op: &Recurrent, inp: &Inputs, d: [Option<Array>; 3], msg: &str| {
        let [dy, dh, dc] = d;
        let m = inp.backward(op, dy.as_ref(), dh.as_ref(), dc.as_ref());
        let m = m.expect_err(msg).to_string();
        assert!(m.contains(msg) && m.contains("recurrent"), "{msg}: {m}");
    };
    let msg = "dy has shape [2, 4, 3], expected [2, 4, 2]";
    refuse(&lstm, &inp, [s(&[2, 4, 3]), None, None], msg);
    refuse(
        &lstm,
        &inp,
        [None, s(&[2, 4]), None],
        "dh_n has shape [2, 4], expected [4, 2]",
    );
    refuse(
        &lstm,
        &inp,
        [None, None, s(&[4])],
        "dc_n has shape [4], expected [4, 2]",
    );
    let inp = Inputs::seeded(&gru, 2, 4, 1);
    refuse(
        &gru,
        &inp,
        [None, None, s(&[4, 2])],
        "dc_n [4, 2] was given but a gru layer",
    );
}
