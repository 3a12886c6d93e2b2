//! `arrow-wgpu info`: the adapters wgpu finds, their backend, features and limits.

use anyhow::Result;
use arrow_wgpu::{Backend, Engine, EngineOptions};

use crate::args::InfoArgs;

pub fn run(args: InfoArgs) -> Result<()> {
    let adapters = Engine::adapters(arrow_wgpu::wgpu::Backends::all());
    if adapters.is_empty() {
        println!(
            "No GPU adapter found: every operation runs on the CPU path (--backend auto or cpu)."
        );
        println!(
            "Without a GPU, Mesa's software drivers (mesa-vulkan-drivers) give one for testing."
        );
        return Ok(());
    }
    println!(
        "{} adapter(s), best first (--backend auto and gpu use the first; WGPU_BACKEND and WGPU_ADAPTER_NAME choose another):",
        adapters.len()
    );
    for (i, (name, backend)) in adapters.iter().enumerate() {
        println!("\n{}. {name} ({backend:?})", i + 1);
        let options = EngineOptions {
            backend: Backend::Gpu,
            wgpu_backends: arrow_wgpu::wgpu::Backends::from(*backend),
            adapter_name: Some(name.clone()),
            ..Default::default()
        };
        let engine = match Engine::with_options(options) {
            Ok(engine) => engine,
            Err(e) => {
                println!("   can't open it: {e}");
                continue;
            }
        };
        let a = engine.adapter().expect("a GPU engine has an adapter");
        println!("   device type: {:?}", a.device_type);
        println!("   driver:      {}", a.driver);
        if a.is_software() {
            println!("   note:        a software driver running on the CPU: right answers, emulated speed");
        }
        println!(
            "   shader int64: {}, f64: {}, subgroups: {}",
            a.shader_int64, a.shader_f64, a.subgroups
        );
        println!("   largest column chunk: {} MiB", a.max_chunk_bytes >> 20);
        let l = &a.limits;
        if args.all {
            println!("   features: {:?}", a.features);
            println!("   limits: {l:#?}");
        } else {
            println!("   features: {}", feature_names(a.features));
            println!(
                "   limits: storage binding {} MiB, buffer {} MiB, storage buffers per stage {}, workgroup {}x{}x{} (≤ {} invocations, {} KiB shared), {} workgroups per dimension",
                l.max_storage_buffer_binding_size >> 20,
                l.max_buffer_size >> 20,
                l.max_storage_buffers_per_shader_stage,
                l.max_compute_workgroup_size_x,
                l.max_compute_workgroup_size_y,
                l.max_compute_workgroup_size_z,
                l.max_compute_invocations_per_workgroup,
                l.max_compute_workgroup_storage_size >> 10,
                l.max_compute_workgroups_per_dimension,
            );
        }
    }
    Ok(())
}

/// The features that arrow-wgpu's kernels look for, by name.
fn feature_names(features: arrow_wgpu::wgpu::Features) -> String {
    let wanted = [
        (arrow_wgpu::wgpu::Features::SHADER_INT64, "SHADER_INT64"),
        (arrow_wgpu::wgpu::Features::SHADER_F64, "SHADER_F64"),
        (
            arrow_wgpu::wgpu::Features::SHADER_INT64_ATOMIC_ALL_OPS,
            "SHADER_INT64_ATOMIC_ALL_OPS",
        ),
        (arrow_wgpu::wgpu::Features::SUBGROUP, "SUBGROUP"),
        (
            arrow_wgpu::wgpu::Features::TIMESTAMP_QUERY,
            "TIMESTAMP_QUERY",
        ),
    ];
    let names: Vec<&str> = wanted
        .iter()
        .filter(|(f, _)| features.contains(*f))
        .map(|(_, n)| *n)
        .collect();
    if names.is_empty() {
        "none of SHADER_INT64, SHADER_F64, 64-bit atomics, SUBGROUP, TIMESTAMP_QUERY (the kernels emulate them)".into()
    } else {
        format!("{} (--all lists every feature)", names.join(", "))
    }
}
