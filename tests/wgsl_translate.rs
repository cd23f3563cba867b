//! Every WGSL file parses, validates, and translates to MSL, SPIR-V and HLSL through naga's
//! backends — entry point by entry point, as wgpu compiles them — so a kernel that would break on
//! Metal or DX12 fails here, on Linux, without either. The cooperative-matrix GEMM
//! (`ops::matmul::coop`, only for adapters with the tiles) translates to SPIR-V; its HLSL and
//! MSL outcomes are asserted as the expected failures they are.

use naga::back::{hlsl, msl, spv};
use naga::valid::{Capabilities, ValidationFlags, Validator};
use wgtrain::ops::conv::coop as conv_coop;
use wgtrain::ops::matmul::coop;
use wgtrain::{Accumulator, DType};

#[path = "../benches/coop_probe/probes.rs"]
mod probes;

#[test]
fn every_wgsl_file_is_compiled_by_some_shader() {
    let parts: Vec<&str> = wgtrain::all_shaders()
        .iter()
        .chain(coop::shaders().iter())
        .chain(conv_coop::shaders().iter())
        .flat_map(|s| s.parts.iter().copied())
        .collect();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/wgsl");
    // Every .wgsl file under wgsl/, subfolders included.
    let mut files = Vec::new();
    let mut dirs = vec![std::path::PathBuf::from(dir)];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    let mut n = 0;
    let mut nested = 0;
    for path in files {
        if path.extension().is_some_and(|e| e == "wgsl") {
            let text = std::fs::read_to_string(&path).unwrap();
            // (a part may be files concatenated: `neuron::WGSL` starts with finite.wgsl)
            assert!(
                parts.iter().any(|p| p.contains(text.as_str())),
                "{} is not part of any shader in all_shaders()",
                path.display()
            );
            // The prelude's helpers are defined there alone (a copy would clash where it is
            // included, or drift where it is not).
            let prelude = path.ends_with("prelude.wgsl");
            for f in ["fn linear_id(", "fn group_id("] {
                assert!(
                    prelude || !text.contains(f),
                    "{} defines {f}: use wgsl/prelude.wgsl (launch::PRELUDE)",
                    path.display()
                );
            }
            n += 1;
            nested += (path.parent() != Some(std::path::Path::new(dir))) as usize;
        }
    }
    assert!(n >= 5, "only {n} WGSL files found in {dir}");
    assert!(
        nested >= 5,
        "only {nested} WGSL files found in subfolders of {dir}"
    );
}

/// The cooperative-matrix GEMM: every variant, stored layout (`TA`, `TB`) and fused neuron
/// through naga's SPIR-V writer (what wgpu runs it with on Vulkan), and the expected outcomes
/// elsewhere: naga's HLSL backend has no cooperative matrices (validation against its
/// capabilities fails; its writer would reach `unimplemented!()`), and its MSL writer emits a
/// 16×16 simdgroup type that Metal lacks (its simdgroup matrices are 8×8), so `coop_supported`,
/// which asks the adapter for 16×16 tiles, is what keeps the kernel off DX12 and Metal.
#[test]
fn coop_gemm_translates_to_spirv_and_fails_hlsl_msl_as_expected() {
    let mut translated = 0;
    for shader in coop::shaders() {
        // The operands are f16: the variant wgpu compiles (`act = f16`).
        let (module, info) = parse_and_validate(
            shader.name,
            &shader.source_for(wgtrain::DType::F16, Accumulator::F32),
        );
        assert!(
            Validator::new(ValidationFlags::all(), hlsl::supported_capabilities())
                .validate(&module)
                .is_err(),
            "{}: naga's HLSL backend now takes cooperative matrices: translate them here",
            shader.name
        );
        let ep = &module.entry_points[0];
        assert_eq!(
            (module.entry_points.len(), ep.name.as_str()),
            (1, coop::ENTRY)
        );
        // Only the 128×256 core declares `DEPTH` (K steps in flight): each layout with every
        // depth there.
        let wide = coop::declares_depth(shader);
        let depths: Vec<f64> = if wide {
            (1..=coop::MAX_DEPTH).map(f64::from).collect()
        } else {
            vec![0.0]
        };
        let mut variants = Vec::new();
        for (ta, tb) in [(0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0)] {
            for &depth in &depths {
                let mut c = naga::back::PipelineConstants::default();
                c.insert("TA".to_string(), ta);
                c.insert("TB".to_string(), tb);
                let mut what = format!(" with TA = {ta}, TB = {tb}");
                if wide {
                    c.insert("DEPTH".to_string(), depth);
                    what += &format!(", DEPTH = {depth}");
                }
                variants.push((what, c));
            }
        }
        for code in neuron_codes() {
            let mut c = naga::back::PipelineConstants::default();
            c.insert("POST_OP".to_string(), code as f64);
            variants.push((format!(" with POST_OP = {code}"), c));
        }
        for (what, constants) in &variants {
            let name = format!("{}{what}", shader.name);
            let (m, mi) = spirv_variant(&name, &module, &info, ep, constants);
            let msl = msl::write_string(
                &m,
                &mi,
                &msl::Options {
                    lang_version: (2, 4),
                    ..Default::default()
                },
                &msl::PipelineOptions {
                    entry_point: Some((ep.stage, ep.name.clone())),
                    ..Default::default()
                },
            )
            .unwrap_or_else(|e| panic!("{name}: MSL: {e:?}"));
            assert!(
                msl.0.contains("simdgroup_half16x16"),
                "{name}: naga's MSL of the 16×16 matrices changed: check whether Metal can run it"
            );
            translated += 1;
        }
    }
    // 4 shaders of each core; the 128×256 one at every depth per layout.
    let depths = coop::MAX_DEPTH as usize;
    assert_eq!(
        translated,
        4 * (4 + neuron_codes().len()) + 4 * (4 * depths + neuron_codes().len())
    );
}

/// The convolutions' tensor-core modules: both widths of each, and with every fused neuron, through naga's SPIR-V writer (see the GEMM's test above for HLSL and MSL).
#[test]
fn conv_coop_translates_to_spirv() {
    let mut translated = 0;
    for shader in conv_coop::shaders() {
        let (module, info) = parse_and_validate(
            shader.name,
            &shader.source_for(wgtrain::DType::F16, Accumulator::F32),
        );
        let names: Vec<&str> = module
            .entry_points
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(names, [conv_coop::ENTRY], "{}", shader.name);
        let mut variants = Vec::new();
        for wide in [0.0, 1.0] {
            let mut c = naga::back::PipelineConstants::default();
            c.insert("WIDE".to_string(), wide);
            variants.push((format!(" with WIDE = {wide}"), c));
        }
        // Only the forward-type modules have a fused neuron (POST_OP).
        if shader.parts.contains(&wgtrain::neuron::WGSL) {
            for code in neuron_codes() {
                let mut c = naga::back::PipelineConstants::default();
                c.insert("POST_OP".to_string(), code as f64);
                variants.push((format!(" with POST_OP = {code}"), c));
            }
        }
        for ep in &module.entry_points {
            for (what, constants) in &variants {
                let name = format!("{}::{}{what}", shader.name, ep.name);
                spirv_variant(&name, &module, &info, ep, constants);
                translated += 1;
            }
        }
    }
    assert_eq!(translated, 3 * 2 + 2 * neuron_codes().len());
}

/// The tensor-core probes of `benches/coop_probe.rs` (generated WGSL), through naga's SPIR-V
/// writer: what the bench times on a card must at least translate here.
#[test]
fn coop_probes_translate_to_spirv() {
    for p in &probes::PROBES {
        let src = probes::source(p);
        let (module, info) = parse_and_validate(p.name, &src);
        let ep = &module.entry_points[0];
        spirv_variant(p.name, &module, &info, ep, &Default::default());
        // Each switch shows in the source: a probe that silently kept everything would not.
        assert_eq!(src.contains("fetch(m0, n0"), p.loads, "{}", p.name);
        assert_eq!(src.contains("stash(1u - buf"), p.stores, "{}", p.name);
        assert_eq!(src.contains("coopMultiplyAdd"), p.mma, "{}", p.name);
        assert_eq!(
            src.contains("    workgroupBarrier();"),
            p.barrier,
            "{}",
            p.name
        );
    }
    let src = probes::direct_source();
    let (module, info) = parse_and_validate("direct", &src);
    spirv_variant(
        "direct",
        &module,
        &info,
        &module.entry_points[0],
        &Default::default(),
    );
    assert!(!src.contains("workgroupBarrier") && !src.contains("var<workgroup>"));
}

/// `ep` of `module` with its overrides set to `constants`, through naga's SPIR-V writer (what
/// wgpu runs on Vulkan); returns the specialised module for further backends.
fn spirv_variant(
    name: &str,
    module: &naga::Module,
    info: &naga::valid::ModuleInfo,
    ep: &naga::EntryPoint,
    constants: &naga::back::PipelineConstants,
) -> (naga::Module, naga::valid::ModuleInfo) {
    let (m, mi) = naga::back::pipeline_constants::process_overrides(
        module,
        info,
        Some((ep.stage, &ep.name)),
        constants,
    )
    .unwrap_or_else(|e| panic!("{name}: overrides: {e:?}"));
    spv::write_vec(
        &m,
        &mi,
        &spv::Options::default(),
        Some(&spv::PipelineOptions {
            shader_stage: ep.stage,
            entry_point: ep.name.clone(),
        }),
    )
    .unwrap_or_else(|e| panic!("{name}: SPIR-V: {e:?}"));
    (m.into_owned(), mi.into_owned())
}

/// Every neuron's op code: the `POST_OP` values a fused epilogue can be specialised for.
fn neuron_codes() -> Vec<u32> {
    wgtrain::neuron::UnaryOp::all()
        .iter()
        .map(|op| op.code().0)
        .collect()
}

#[test]
fn every_shader_translates_to_msl_spirv_hlsl() {
    let mut specialised = 0;
    let mut accumulating = Vec::new();
    for shader in wgtrain::all_shaders() {
        translate(
            shader,
            &shader.source(),
            hlsl::ShaderModel::V6_0,
            &mut specialised,
        );
        // The variant with its `read` bindings read-only (launches whose buffers allow it).
        let kept = wgtrain::dtype::Variant {
            read_write: 0,
            ..wgtrain::dtype::Variant::F32
        };
        translate(
            shader,
            &shader.source_of(kept),
            hlsl::ShaderModel::V6_0,
            &mut 0,
        );
        // The f16 variant (`act = f16`) of every kernel that has one; HLSL needs SM 6.2 for f16.
        if shader.has_f16() {
            let mut f16_variants = 0;
            translate(
                shader,
                &shader.source_for(wgtrain::DType::F16, Accumulator::F32),
                hlsl::ShaderModel::V6_2,
                &mut f16_variants,
            );
        }
        // The f16-accumulator variants (`accum = f16`), with f32 and with f16 storage.
        if shader.has_f16_accumulator() {
            accumulating.push(shader.name);
            for act in [DType::F32, DType::F16] {
                let mut acc_variants = 0;
                translate(
                    shader,
                    &shader.source_for(act, Accumulator::F16),
                    hlsl::ShaderModel::V6_2,
                    &mut acc_variants,
                );
            }
        }
    }
    assert!(
        specialised >= 4 * neuron_codes().len(),
        "only {specialised} neuron-specialised variants (matmul, conv, norm, elementwise)"
    );
    // The families that sum have their f16-accumulator variants, and nothing else does.
    accumulating.sort();
    assert_eq!(
        accumulating,
        [
            "conv_bias",
            "conv_dgrad",
            "conv_fwd",
            "conv_wgrad",
            "conv_winograd_gemm",
            "conv_winograd_gemm_vec4",
            "conv_winograd_wgrad_gemm",
            "conv_winograd_wgrad_gemm_vec4",
            "matmul",
            "matmul_vec4",
            "norm",
            "norm_dy",
            "norm_dy_lane4",
            "norm_lane4",
            "reduce"
        ]
    );
}

/// The workgroup memory each entry point of `src` uses (what a pipeline of it allocates: the
/// backends write an entry's own globals only).
fn workgroup_bytes_per_entry(name: &str, src: &str) -> Vec<(String, u32)> {
    let (module, info) = parse_and_validate(name, src);
    (module.entry_points.iter().enumerate())
        .map(|(i, ep)| {
            let used = info.get_entry_point(i);
            let bytes = (module.global_variables.iter())
                .filter(|(h, v)| v.space == naga::AddressSpace::WorkGroup && !used[*h].is_empty())
                .map(|(_, v)| module.types[v.ty].inner.size(module.to_ctx()))
                .sum();
            (ep.name.clone(), bytes)
        })
        .collect()
}

#[test]
fn no_shader_uses_more_workgroup_memory_than_declared() {
    let mut most = 0;
    for shader in wgtrain::all_shaders() {
        for (entry, bytes) in workgroup_bytes_per_entry(shader.name, &shader.source()) {
            assert!(
                bytes <= wgtrain::launch::MAX_WORKGROUP_BYTES,
                "{}::{entry} uses {bytes} bytes of workgroup memory, more than \
                 MAX_WORKGROUP_BYTES",
                shader.name
            );
            most = most.max(bytes);
        }
    }
    assert_eq!(
        most,
        wgtrain::launch::MAX_WORKGROUP_BYTES,
        "MAX_WORKGROUP_BYTES is stale"
    );
    // The cooperative-matrix GEMM runs only where `coop_supported` found room for its own size.
    for shader in coop::shaders() {
        let src = shader.source_for(wgtrain::DType::F16, Accumulator::F32);
        for (entry, bytes) in workgroup_bytes_per_entry(shader.name, &src) {
            assert_eq!(
                bytes,
                coop::WORKGROUP_BYTES,
                "{}::{entry}: coop::WORKGROUP_BYTES is stale",
                shader.name
            );
        }
    }
}

/// Parses, validates and translates one variant of a shader (MSL, SPIR-V, HLSL), every override
/// specialisation included; counts the neuron-specialised variants.
fn translate(
    shader: &wgtrain::launch::Shader,
    src: &str,
    hlsl_model: hlsl::ShaderModel,
    specialised: &mut usize,
) {
    let (module, info) = parse_and_validate(shader.name, src);
    assert!(
        !module.entry_points.is_empty(),
        "{} has no entry point",
        shader.name
    );
    for ep in &module.entry_points {
        let name = format!("{}::{}", shader.name, ep.name);
        // Bindings an entry point uses must be distinct (duplicates across entry points are fine).
        let mut seen = std::collections::HashSet::new();
        let fi = info.get_entry_point(
            module
                .entry_points
                .iter()
                .position(|e| e.name == ep.name)
                .unwrap(),
        );
        for (h, var) in module.global_variables.iter() {
            if let (Some(b), false) = (&var.binding, fi[h].is_empty()) {
                assert!(
                    seen.insert((b.group, b.binding)),
                    "{name}: binding {b:?} used twice"
                );
            }
        }
        let stage = ep.stage;
        // Overrides are fixed per pipeline, as wgpu does: the defaults, and every fused
        // neuron a GEMM epilogue can be specialised for (`POST_OP`, neuron.wgsl).
        let mut variants = vec![(String::new(), naga::back::PipelineConstants::default())];
        if module
            .overrides
            .iter()
            .any(|(_, o)| o.name.as_deref() == Some("POST_OP"))
        {
            for code in neuron_codes() {
                let mut c = naga::back::PipelineConstants::default();
                c.insert("POST_OP".to_string(), code as f64);
                variants.push((format!(" with POST_OP = {code}"), c));
                *specialised += 1;
            }
        }
        for (what, constants) in &variants {
            let (m, mi) = naga::back::pipeline_constants::process_overrides(
                &module,
                &info,
                Some((stage, &ep.name)),
                constants,
            )
            .unwrap_or_else(|e| panic!("{name}{what}: overrides: {e:?}"));
            msl::write_string(
                &m,
                &mi,
                &msl::Options {
                    lang_version: (2, 4),
                    ..Default::default()
                },
                &msl::PipelineOptions {
                    entry_point: Some((stage, ep.name.clone())),
                    ..Default::default()
                },
            )
            .unwrap_or_else(|e| panic!("{name}{what}: MSL: {e:?}"));
            spv::write_vec(
                &m,
                &mi,
                &spv::Options::default(),
                Some(&spv::PipelineOptions {
                    shader_stage: stage,
                    entry_point: ep.name.clone(),
                }),
            )
            .unwrap_or_else(|e| panic!("{name}{what}: SPIR-V: {e:?}"));
            let mut out = String::new();
            let opts = hlsl::Options {
                shader_model: hlsl_model,
                ..Default::default()
            };
            let popts = hlsl::PipelineOptions {
                entry_point: Some((stage, ep.name.clone())),
            };
            hlsl::Writer::new(&mut out, &opts, &popts)
                .write(&m, &mi, None)
                .unwrap_or_else(|e| panic!("{name}{what}: HLSL: {e:?}"));
        }
    }
}

/// The module and naga's analysis of `src`, panicking with naga's diagnostic on an error.
fn parse_and_validate(name: &str, src: &str) -> (naga::Module, naga::valid::ModuleInfo) {
    let module = naga::front::wgsl::parse_str(src)
        .unwrap_or_else(|e| panic!("{name}: parse error:\n{}", e.emit_to_string(src)));
    let info = Validator::new(ValidationFlags::all(), Capabilities::all())
        .validate(&module)
        .unwrap_or_else(|e| panic!("{name}: validation error:\n{}", e.emit_to_string(src)));
    (module, info)
}
