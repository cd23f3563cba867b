//! The GPU profiler: one step replayed with a timestamp before and after every dispatch, so a
//! step's time can be split by node and kernel (what to make faster, measured on the card).
//! Each dispatch runs in its own compute pass here — the only place `TIMESTAMP_QUERY` alone lets
//! a timestamp go — so the profiled step is a little slower than a replayed one; `gaps` reports
//! the time between consecutive dispatches.

use std::collections::BTreeMap;

use super::exec::Compiled;
use crate::error::{Error, Result};
use crate::launch::Launch;

/// One dispatch of a profiled step.
#[derive(Clone, Debug)]
pub struct DispatchTime {
    /// The graph node it belongs to (`optimizer` for the update).
    pub node: String,
    /// The kernel's entry point.
    pub kernel: &'static str,
    /// Its grid, in workgroups (x, y, z).
    pub groups: [u32; 3],
    /// Its `read` bindings declared read-write (`Variant::read_write`: bit n for binding n),
    /// those whose buffer it also bound writable; 0 when all stayed read-only.
    pub read_write: u32,
    /// GPU time from its start to its end, in microseconds.
    pub micros: f64,
    /// GPU time from the previous dispatch's end to its start, in microseconds.
    pub gap_micros: f64,
}

/// A profiled step: every dispatch in order.
#[derive(Clone, Debug)]
pub struct Profile {
    /// The dispatches, in step order.
    pub dispatches: Vec<DispatchTime>,
}

impl Profile {
    /// GPU time of all dispatches, in microseconds.
    pub fn busy_micros(&self) -> f64 {
        self.dispatches.iter().map(|d| d.micros).sum()
    }

    /// GPU time between dispatches, in microseconds.
    pub fn gap_micros(&self) -> f64 {
        self.dispatches.iter().map(|d| d.gap_micros).sum()
    }

    /// Time per kernel entry point, largest first: `(kernel, dispatches, µs)`.
    pub fn by_kernel(&self) -> Vec<(&'static str, usize, f64)> {
        let mut m: BTreeMap<&'static str, (usize, f64)> = BTreeMap::new();
        for d in &self.dispatches {
            let e = m.entry(d.kernel).or_default();
            e.0 += 1;
            e.1 += d.micros;
        }
        let mut v: Vec<_> = m.into_iter().map(|(k, (n, t))| (k, n, t)).collect();
        v.sort_by(|a, b| b.2.total_cmp(&a.2));
        v
    }

    /// A markdown table of [`Profile::by_kernel`] with each kernel's share of the busy time.
    pub fn table(&self) -> String {
        let busy = self.busy_micros().max(f64::MIN_POSITIVE);
        let mut s = String::from("| kernel | dispatches | µs | share |\n|---|---|---|---|\n");
        for (k, n, t) in self.by_kernel() {
            s += &format!("| {k} | {n} | {t:.1} | {:.1}% |\n", 100.0 * t / busy);
        }
        s += &format!(
            "| (all) | {} | {:.1} busy, {:.1} between dispatches | |\n",
            self.dispatches.len(),
            busy,
            self.gap_micros()
        );
        s
    }

    /// A markdown table of every dispatch in step order: its node, kernel, µs and the gap
    /// before it (where one kernel's time goes by layer).
    pub fn dispatch_table(&self) -> String {
        let mut s = String::from(
            "| # | node | kernel | workgroups | reads | µs | gap µs |\n|---|---|---|---|---|---|---|\n",
        );
        for (i, d) in self.dispatches.iter().enumerate() {
            let [x, y, z] = d.groups;
            let reads = match d.read_write {
                0 => "read-only".to_string(),
                u32::MAX => "read-write".to_string(),
                m => {
                    let slots: Vec<String> = (0..32)
                        .filter(|b| m & (1 << b) != 0)
                        .map(|b| b.to_string())
                        .collect();
                    format!("read-write {}", slots.join(","))
                }
            };
            s += &format!(
                "| {i} | {} | {} | {x}×{y}×{z} | {reads} | {:.1} | {:.1} |\n",
                d.node, d.kernel, d.micros, d.gap_micros
            );
        }
        s
    }
}

/// Timestamps a query set holds (wgpu's limit per set).
const QUERIES_PER_SET: usize = 4096;

impl Compiled {
    /// Runs one step (it counts as a step: the update runs, `prepare_step` is needed as for any
    /// step) with a GPU timestamp around every dispatch. Needs the adapter's `TIMESTAMP_QUERY`
    /// and resident weights.
    pub fn profile_step(&self) -> Result<Profile> {
        if !self.device().caps().timestamp_query {
            return Err(Error::Device(format!(
                "profile_step: {} has no timestamp queries",
                self.device().name()
            )));
        }
        if self.program.jit.is_some() {
            return Err(Error::Invalid(
                "profile_step: just-in-time weights are written between submits; profile the resident graph".into(),
            ));
        }
        self.check_prepared()?;
        self.wait_all()?;
        let launches: Vec<(&Launch, String)> = self.named_launches().collect();
        let pipelines = (launches.iter().map(|(l, _)| l.pipeline.get()))
            .collect::<Result<Vec<&wgpu::ComputePipeline>>>()?;
        self.begin_step()?;
        let per_set = QUERIES_PER_SET / 2;
        let (_, q) = self.device().wgpu();
        let period = q.get_timestamp_period() as f64;
        let mut ticks: Vec<u64> = Vec::with_capacity(2 * launches.len());
        for (chunk, pipelines) in launches.chunks(per_set).zip(pipelines.chunks(per_set)) {
            let count = 2 * chunk.len() as u32;
            let bytes = u64::from(count) * 8;
            let (resolved, enc) = self.device().scoped(|d| {
                let set = d.create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("profile"),
                    ty: wgpu::QueryType::Timestamp,
                    count,
                });
                let resolved = d.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("profile ticks"),
                    size: bytes,
                    usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                    mapped_at_creation: false,
                });
                let mut enc = d.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("profiled step"),
                });
                for (i, ((l, _), p)) in chunk.iter().zip(pipelines).enumerate() {
                    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some(l.label),
                        timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                            query_set: &set,
                            beginning_of_pass_write_index: Some(2 * i as u32),
                            end_of_pass_write_index: Some(2 * i as u32 + 1),
                        }),
                    });
                    pass.set_pipeline(p);
                    pass.set_bind_group(0, &l.bind_group, &[]);
                    pass.dispatch_workgroups(l.groups[0], l.groups[1], l.groups[2]);
                }
                enc.resolve_query_set(&set, 0..count, &resolved, 0);
                (resolved, enc)
            })?;
            self.device().scoped(|_| q.submit([enc.finish()]))?;
            let raw = self.device().read_buffer(&resolved, 0, bytes)?;
            ticks.extend(bytemuck::cast_slice::<u8, u64>(&raw));
        }
        let mut enc = self.device().scoped(|d| {
            d.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("carried state"),
            })
        })?;
        self.encode_carried(&mut enc);
        self.device().scoped(|_| q.submit([enc.finish()]))?;
        self.device().wait()?;
        let us = |t: u64| t as f64 * period / 1e3;
        let dispatches = launches
            .iter()
            .enumerate()
            .map(|(i, (l, node))| {
                let (start, end) = (ticks[2 * i], ticks[2 * i + 1]);
                let prev_end = if i == 0 { start } else { ticks[2 * i - 1] };
                DispatchTime {
                    node: node.clone(),
                    kernel: l.label,
                    groups: l.groups,
                    read_write: l.read_write,
                    micros: us(end.saturating_sub(start)),
                    gap_micros: us(start.saturating_sub(prev_end)),
                }
            })
            .collect();
        Ok(Profile { dispatches })
    }
}
