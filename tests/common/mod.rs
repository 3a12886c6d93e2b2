//! Shared test set-up: one engine per GPU adapter that wgpu finds.

//!
//! `ARROW_WGPU_REQUIRE_GPU=1` (CI sets it) turns "no adapter" into a failure instead of a
//! skip; `ARROW_WGPU_TEST_BACKENDS=vulkan,gl` names the wgpu backends that must each have
//! an adapter.

#![allow(dead_code)]

pub mod gen;

use arrow_wgpu::{Backend, Engine, EngineOptions};

/// The wgpu backends the GPU tests run on, each with an engine (optionally with small
/// chunks). Panics when CI requires a backend and it has no adapter.
pub fn gpu_engines(max_chunk_bytes: Option<u64>) -> Vec<(String, Engine)> {
    gpu_engines_with(|o| EngineOptions {
        max_chunk_bytes,
        ..o
    })
}

/// [`gpu_engines`] with the options changed by `configure` (from `Backend::Gpu` on one
/// wgpu backend).
pub fn gpu_engines_with(
    configure: impl Fn(EngineOptions) -> EngineOptions,
) -> Vec<(String, Engine)> {
    let required: Vec<String> = std::env::var("ARROW_WGPU_TEST_BACKENDS")
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_lowercase())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let require_any = std::env::var("ARROW_WGPU_REQUIRE_GPU").is_ok_and(|v| v == "1");
    let mut engines = Vec::new();
    for (name, backends) in [
        ("vulkan", arrow_wgpu::wgpu::Backends::VULKAN),
        ("gl", arrow_wgpu::wgpu::Backends::GL),
        ("metal", arrow_wgpu::wgpu::Backends::METAL),
        ("dx12", arrow_wgpu::wgpu::Backends::DX12),
    ] {
        // Named, so that `Auto` (which takes a software adapter only when named) uses it.
        let adapter_name = Engine::adapters(backends).into_iter().next().map(|a| a.0);
        let options = configure(EngineOptions {
            backend: Backend::Gpu,
            wgpu_backends: backends,
            adapter_name,
            ..Default::default()
        });
        match Engine::with_options(options) {
            // An `Auto` engine without an adapter runs on the CPU: not a GPU engine.
            Ok(engine) if engine.adapter().is_some() => engines.push((name.to_string(), engine)),
            Ok(_) => assert!(
                !required.iter().any(|r| r == name),
                "required wgpu backend {name} has no adapter"
            ),
            Err(e) => {
                assert!(
                    !required.iter().any(|r| r == name),
                    "required wgpu backend {name} has no adapter: {e}"
                );
            }
        }
    }
    assert!(
        !(require_any && engines.is_empty()),
        "ARROW_WGPU_REQUIRE_GPU=1 but no GPU adapter was found"
    );
    if engines.is_empty() {
        eprintln!(
            "no GPU adapter: GPU tests skipped (set ARROW_WGPU_REQUIRE_GPU=1 to fail instead)"
        );
    }
    engines
}

/// [`gpu_engines`] as the adapter allows, then again in chunks of `chunk_bytes` (named
/// with their size), so that small batches cross chunk boundaries.
pub fn gpu_engines_and_small_chunks(chunk_bytes: u64) -> Vec<(String, Engine)> {
    let mut all = gpu_engines(None);
    all.extend(
        gpu_engines(Some(chunk_bytes))
            .into_iter()
            .map(|(n, e)| (format!("{n}, {chunk_bytes}-byte chunks"), e)),
    );
    all
}

pub fn cpu() -> Engine {
    Engine::new(Backend::Cpu).unwrap()
}

/// The CPU engine (named "cpu"), then each GPU engine of [`gpu_engines`], shareable.
pub fn all_engines() -> Vec<(String, std::sync::Arc<Engine>)> {
    std::iter::once(("cpu".to_string(), cpu()))
        .chain(gpu_engines(None))
        .map(|(n, e)| (n, std::sync::Arc::new(e)))
        .collect()
}
