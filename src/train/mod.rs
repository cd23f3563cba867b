//! The training loop and what it leaves behind (metrics file, plot, checkpoints).

pub mod metrics;
