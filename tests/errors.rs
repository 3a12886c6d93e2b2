//! Bad input: each gets its own clear error, never a panic, and the input is unchanged.

use crate::common;

use std::sync::Arc;

use arrow::array::*;
use arrow::record_batch::RecordBatch;
use arrow_wgpu::{col, lit, Backend, Engine, EngineOptions, Error};

fn sample() -> RecordBatch {
    RecordBatch::try_from_iter([
        ("a", Arc::new(Int32Array::from(vec![1, 2, 3])) as ArrayRef),
        (
            "s",
            Arc::new(BinaryArray::from(vec![&b"x"[..], b"y", b"z"])),
        ),
        ("d", Arc::new(Date32Array::from(vec![1, 2, 3]))),
    ])
    .unwrap()
}

fn every_engine() -> Vec<(String, Engine)> {
    let mut all = vec![("cpu".to_string(), common::cpu())];
    all.extend(common::gpu_engines(None));
    all
}

#[test]
fn unknown_column_names_it_and_the_available_ones() {
    let b = sample();
    for (name, e) in every_engine() {
        match e.filter(&b, &col("nope").gt(lit(1))).unwrap_err() {
            Error::UnknownColumn { name: n, available } => {
                assert_eq!(n, "nope", "{name}");
                assert_eq!(available, "a, s, d", "{name}");
            }
            other => panic!("{name}: {other}"),
        }
    }
}

#[test]
fn mismatched_mask_length() {
    let b = sample();
    for (name, e) in every_engine() {
        let err = e
            .filter_by_mask(&b, &BooleanArray::from(vec![true]))
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::LengthMismatch {
                    expected: 3,
                    actual: 1,
                    ..
                }
            ),
            "{name}: {err}"
        );
    }
}

#[test]
fn invalid_expressions() {
    let b = sample();
    for (name, e) in every_engine() {
        for bad in [
            col("s").eq(lit(1)),               // binary with number
            col("a") + col("d"),               // not boolean, and date arithmetic
            col("d").gt(lit(1)),               // date with number
            col("a").and(lit(true)),           // AND on an integer
            (col("a") + lit(true)).gt(lit(1)), // arithmetic on a boolean
        ] {
            let err = e.filter(&b, &bad).unwrap_err();
            assert!(
                matches!(err, Error::InvalidExpression(_)),
                "{name}: {bad}: {err}"
            );
        }
    }
}

#[test]
fn gpu_backend_without_adapter_is_an_error() {
    // No adapter's name contains this, so Backend::Gpu must fail and Auto must not.
    let options = EngineOptions {
        backend: Backend::Gpu,
        adapter_name: Some("no such adapter 0xdead".into()),
        ..Default::default()
    };
    assert!(matches!(
        Engine::with_options(options.clone()),
        Err(Error::NoAdapter(_))
    ));
    let auto = Engine::with_options(EngineOptions {
        backend: Backend::Auto,
        ..options
    })
    .unwrap();
    assert!(auto.adapter().is_none());
    assert_eq!(
        auto.filter(&sample(), &col("a").gt(lit(1)))
            .unwrap()
            .num_rows(),
        2
    );
    assert!(matches!(auto.upload(&sample()), Err(Error::NoAdapter(_))));
}

#[test]
fn backend_names_parse_and_bad_ones_error() {
    assert_eq!("GPU".parse::<Backend>().unwrap(), Backend::Gpu);
    assert_eq!("cpu".parse::<Backend>().unwrap(), Backend::Cpu);
    assert_eq!("auto".parse::<Backend>().unwrap(), Backend::Auto);
    assert!("tpu".parse::<Backend>().is_err());
}

#[test]
fn upload_of_unsupported_type_names_column_and_type() {
    for (name, e) in common::gpu_engines(None) {
        match e.upload(&sample()).unwrap_err() {
            Error::UnsupportedType {
                column, operation, ..
            } => assert_eq!((operation, column.as_str()), ("upload", "s"), "{name}"),
            other => panic!("{name}: {other}"),
        }
    }
}

#[test]
fn input_is_unchanged_after_errors() {
    let b = sample();
    let copy = b.clone();
    for (_, e) in every_engine() {
        let _ = e.filter(&b, &(col("a") / lit(0)).gt(lit(1)));
        let _ = e.filter(&b, &col("nope").gt(lit(1)));
    }
    assert_eq!(b, copy);
}

/// `Auto` never picks a software adapter (an emulation, slower than the CPU path) unless
/// it is named; `Backend::Gpu` does.
#[test]
fn auto_takes_a_software_adapter_only_when_named() {
    if std::env::var_os("WGPU_ADAPTER_NAME").is_some() {
        return; // the environment names one: Auto takes it
    }
    for (name, gpu) in common::gpu_engines(None) {
        let adapter = gpu.adapter().unwrap();
        let on_this = |adapter_name| EngineOptions {
            backend: Backend::Auto,
            wgpu_backends: adapter.backend.into(),
            adapter_name,
            ..Default::default()
        };
        let auto = Engine::with_options(on_this(None)).unwrap();
        if adapter.is_software() {
            assert!(
                auto.adapter().is_none(),
                "{name}: Auto took {}",
                adapter.name
            );
            let (out, profile) = auto
                .profiled(|e| e.filter(&sample(), &col("a").gt(lit(1))))
                .unwrap();
            assert_eq!(out.num_rows(), 2, "{name}");
            assert_eq!(profile.steps[0].ran_on, arrow_wgpu::RanOn::Cpu, "{name}");
        }
        let named = Engine::with_options(on_this(Some(adapter.name.clone()))).unwrap();
        assert_eq!(named.adapter().unwrap().name, adapter.name, "{name}");
    }
}
