//! Where the tensor-core GEMM's time goes, and the ceiling of WGSL's cooperative matrices on an
//! adapter: the GEMM loop of `gemm_coop_wide.wgsl` rebuilt with each part switched on or off
//! (`coop_probe/probes.rs`), timed at 4096³ and 2048³ in TFLOP/s of the whole GEMM's work.
//! Run: `cargo bench --bench coop_probe`; without `--bench`, one untimed pass of every probe at
//! 256³, the whole kernel's answer checked. An adapter without 16×16×16 f16→f32 tiles says so and
//! skips. BENCHMARKS.md reads the table (issue 12's f16 GEMM goal).

mod common;
#[path = "coop_probe/probes.rs"]
mod probes;

use common::Mode;
use probes::{BLOCK, PROBES};
use wgpu::util::DeviceExt;
use wgtrain::ops::matmul::coop::coop_supported;
use wgtrain::reference::f16_tol;

fn main() -> Result<(), String> {
    let mode = Mode::from_args();
    let Some(dev) = common::device("coop_probe") else {
        return Ok(());
    };
    println!("adapter: {}", dev.describe());
    mode.announce("coop_probe");
    if let Err(e) = coop_supported(&dev) {
        println!("coop_probe skipped: {e}");
        return Ok(());
    }
    let sizes: &[usize] = if mode.timed() { &[4096, 2048] } else { &[256] };
    println!("| size | probe | keeps | ms | TFLOP/s | share of full |");
    println!("|---|---|---|---|---|---|");
    for &n in sizes {
        let problem = Problem::new(&dev, n);
        // (name, what it keeps, source, whether its answer is a GEMM's), the whole kernel first.
        let mut kernels: Vec<(&str, &str, String, bool)> = PROBES
            .iter()
            .rev()
            .map(|p| (p.name, p.what, probes::source(p), p.name == "full"))
            .collect();
        kernels.push((
            "direct",
            "no workgroup memory: tiles coopLoad-ed from the buffers, 1 step ahead (checked)",
            probes::direct_source(),
            true,
        ));
        let mut full = f64::NAN;
        let flop = 2.0 * (n as f64).powi(3);
        for (name, what, src, checked) in &kernels {
            let t = problem.time(&dev, src, mode)?;
            if *checked {
                problem.check(&dev, name)?;
            }
            if *name == "full" {
                full = t;
            }
            println!(
                "| {n} | {name} | {what} | {:.3} | {:.1} | {:.2} |",
                t * 1e3,
                flop / t / 1e12,
                t / full
            );
        }
    }
    Ok(())
}

/// One square NN problem: f16 operands, f32 C, and the values for the check.
struct Problem {
    n: usize,
    a: Vec<half::f16>,
    b: Vec<half::f16>,
    bufs: [wgpu::Buffer; 4],
}

impl Problem {
    fn new(dev: &wgtrain::Device, n: usize) -> Problem {
        let (d, _) = dev.wgpu();
        let values = |seed| -> Vec<half::f16> {
            common::random(&[n, n], seed)
                .0
                .iter()
                .map(|&x| half::f16::from_f32(x))
                .collect()
        };
        let (a, b) = (values(1), values(2));
        let storage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
        let init = |bytes: &[u8], usage| {
            d.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: None,
                contents: bytes,
                usage,
            })
        };
        let dims = [n as u32, n as u32, n as u32, 0];
        let bufs = [
            init(bytemuck::cast_slice(&dims), wgpu::BufferUsages::UNIFORM),
            init(bytemuck::cast_slice(&a), storage),
            init(bytemuck::cast_slice(&b), storage),
            init(&vec![0u8; n * n * 4], storage),
        ];
        Problem { n, a, b, bufs }
    }

    /// Seconds per dispatch of `src` (best of the mode's runs).
    fn time(&self, dev: &wgtrain::Device, src: &str, mode: Mode) -> Result<f64, String> {
        let (d, q) = dev.wgpu();
        let scope = d.push_error_scope(wgpu::ErrorFilter::Validation);
        // SAFETY: the probes index inside their bindings for sides that are multiples of 256,
        // the only problems this bench makes.
        let module = unsafe {
            d.create_shader_module_trusted(
                wgpu::ShaderModuleDescriptor {
                    label: Some("probe"),
                    source: wgpu::ShaderSource::Wgsl(src.into()),
                },
                wgpu::ShaderRuntimeChecks::unchecked(),
            )
        };
        let pipe = d.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("probe"),
            layout: None,
            module: &module,
            entry_point: Some("probe"),
            compilation_options: Default::default(),
            cache: None,
        });
        let layout = pipe.get_bind_group_layout(0);
        // A probe without loads has no operand bindings in its layout.
        let used: Vec<u32> = if src.contains("fetch(m0, n0") || src.contains("= ga(") {
            vec![0, 1, 2, 3]
        } else {
            vec![0, 3]
        };
        let entries: Vec<wgpu::BindGroupEntry> = used
            .iter()
            .map(|&i| wgpu::BindGroupEntry {
                binding: i,
                resource: self.bufs[i as usize].as_entire_binding(),
            })
            .collect();
        let group = d.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &layout,
            entries: &entries,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(format!("probe build: {e}"));
        }
        let grid = ((self.n / BLOCK.1) as u32, (self.n / BLOCK.0) as u32);
        let submit = |reps: usize| {
            let mut enc = d.create_command_encoder(&Default::default());
            for _ in 0..reps {
                let mut pass = enc.begin_compute_pass(&Default::default());
                pass.set_pipeline(&pipe);
                pass.set_bind_group(0, &group, &[]);
                pass.dispatch_workgroups(grid.0, grid.1, 1);
            }
            q.submit([enc.finish()]);
            d.poll(wgpu::PollType::wait_indefinitely())
                .map_err(|e| e.to_string())
        };
        submit(1)?;
        let reps = mode.reps(20);
        let mut best = f64::MAX;
        for _ in 0..mode.runs() {
            let t0 = std::time::Instant::now();
            submit(reps)?;
            best = best.min(t0.elapsed().as_secs_f64() / reps as f64);
        }
        Ok(best)
    }

    /// C of the last kernel run (a whole GEMM's) against f64 on 16 sampled rows, within
    /// `f16_tol` of the reduction length.
    fn check(&self, dev: &wgtrain::Device, name: &str) -> Result<(), String> {
        let (d, q) = dev.wgpu();
        let n = self.n;
        let bytes = (n * n * 4) as u64;
        let read = d.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = d.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(&self.bufs[3], 0, &read, 0, bytes);
        q.submit([enc.finish()]);
        read.slice(..).map_async(wgpu::MapMode::Read, |_| {});
        d.poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| e.to_string())?;
        let view = read
            .slice(..)
            .get_mapped_range()
            .map_err(|e| e.to_string())?;
        let c: &[f32] = bytemuck::cast_slice(&view);
        let tol = f16_tol(n);
        for t in 0..16 {
            let i = (t * 7919 + 3) % n;
            for j in 0..n {
                let want: f64 = (0..n)
                    .map(|q| self.a[i * n + q].to_f64() * self.b[q * n + j].to_f64())
                    .sum();
                let got = c[i * n + j] as f64;
                let ok = (got - want).abs() <= tol * (1.0 + want.abs());
                if !ok {
                    return Err(format!(
                        "{name} at {n}³: C[{i}][{j}] = {got}, f64 reference {want}"
                    ));
                }
            }
        }
        Ok(())
    }
}
