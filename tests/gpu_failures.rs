//! GPU-side failures, forced: a lost device and an operation over the engine's memory
//! limit. `Backend::Gpu` reports each with its own error; `Backend::Auto` answers on the CPU
//! (logged, shown in the profile); the caller's batch is never changed.

use crate::common;

use std::sync::Arc;

use arrow::array::*;
use arrow::record_batch::RecordBatch;
use arrow_wgpu::{col, lit, Backend, EngineOptions, Error, RanOn};

fn batch(rows: usize) -> RecordBatch {
    RecordBatch::try_from_iter([
        (
            "a",
            Arc::new(Int64Array::from_iter((0..rows as i64).map(|i| {
                if i % 7 == 0 {
                    None
                } else {
                    Some(i * 3 % 1000)
                }
            }))) as ArrayRef,
        ),
        (
            "b",
            Arc::new(Float64Array::from_iter_values(
                (0..rows).map(|i| i as f64 / 3.0),
            )),
        ),
    ])
    .unwrap()
}

fn expected(b: &RecordBatch) -> RecordBatch {
    common::cpu().filter(b, &col("a").lt(lit(500i64))).unwrap()
}

#[test]
fn over_the_memory_limit_is_out_of_memory_on_gpu() {
    let b = batch(100_000);
    let before = b.clone();
    let limited = |o: EngineOptions| EngineOptions {
        gpu_memory_limit: Some(64 * 1024),
        ..o
    };
    for (name, engine) in common::gpu_engines_with(limited) {
        let err = engine.filter(&b, &col("a").lt(lit(500i64))).unwrap_err();
        assert!(matches!(err, Error::OutOfMemory(_)), "{name}: {err}");
        assert!(err.to_string().contains("limit of 65536"), "{name}: {err}");
        let err = engine.upload(&b).unwrap_err();
        assert!(matches!(err, Error::OutOfMemory(_)), "{name}: {err}");
        assert_eq!(b, before, "{name}: the input changed");
    }
}

#[test]
fn within_the_memory_limit_runs_on_gpu() {
    // The same limit holds a small batch: the limit counts one operation, not the engine's
    // whole life (each call starts from zero).
    let b = batch(1000);
    let limited = |o: EngineOptions| EngineOptions {
        gpu_memory_limit: Some(64 * 1024),
        ..o
    };
    for (name, engine) in common::gpu_engines_with(limited) {
        for _ in 0..20 {
            let got = engine.filter(&b, &col("a").lt(lit(500i64))).unwrap();
            assert_eq!(got, expected(&b), "{name}");
        }
    }
}

#[test]
fn over_the_memory_limit_falls_back_to_cpu_on_auto() {
    let b = batch(100_000);
    let before = b.clone();
    let limited = |o: EngineOptions| EngineOptions {
        backend: Backend::Auto,
        gpu_memory_limit: Some(64 * 1024),
        ..o
    };
    for (name, engine) in common::gpu_engines_with(limited) {
        let (got, profile) = engine
            .profiled(|e| e.filter(&b, &col("a").lt(lit(500i64))))
            .unwrap();
        assert_eq!(got, expected(&b), "{name}");
        let step = &profile.steps[0];
        assert_eq!(step.ran_on, RanOn::Cpu, "{name}");
        let why = step.fallback.as_deref().unwrap_or_default();
        assert!(why.contains("out of memory"), "{name}: {why}");
        assert_eq!(b, before, "{name}: the input changed");
    }
}

#[test]
fn lost_device_is_an_error_on_gpu_and_a_cpu_run_on_auto() {
    let b = batch(5000);
    let before = b.clone();
    for backend in [Backend::Gpu, Backend::Auto] {
        let configure = |o: EngineOptions| EngineOptions { backend, ..o };
        for (name, engine) in common::gpu_engines_with(configure) {
            // Works before the loss...
            assert_eq!(
                engine.filter(&b, &col("a").lt(lit(500i64))).unwrap(),
                expected(&b)
            );
            let (device, _) = engine.wgpu_device().expect("a GPU engine has a device");
            device.destroy();
            let got = engine.filter(&b, &col("a").lt(lit(500i64)));
            match backend {
                Backend::Gpu => {
                    let err = got.unwrap_err();
                    assert!(matches!(err, Error::DeviceLost(_)), "{name}: {err}");
                    let err = engine.upload(&b).unwrap_err();
                    assert!(matches!(err, Error::DeviceLost(_)), "{name}: {err}");
                }
                _ => {
                    assert_eq!(got.unwrap(), expected(&b), "{name}");
                    let (_, profile) = engine
                        .profiled(|e| e.evaluate(&b, &col("b").gt(lit(10.0))))
                        .unwrap();
                    assert_eq!(profile.steps[0].ran_on, RanOn::Cpu, "{name}");
                    assert!(profile.steps[0].fallback.is_some(), "{name}");
                }
            }
            assert_eq!(b, before, "{name}: the input changed");
        }
    }
}
