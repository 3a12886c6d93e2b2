//! Edge cases, each named for what it pins; every one runs on every GPU adapter found and
//! is checked against a literal expected answer (not only against the CPU path).

use crate::common;

use std::sync::Arc;

use arrow::array::*;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use arrow_wgpu::{col, lit, Backend, Engine, EngineOptions, Error, Phase, RanOn};

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    RecordBatch::try_from_iter(columns).unwrap()
}

/// Runs `check` on the CPU engine and on every GPU engine (normal and 64-byte chunks).
fn on_every_backend(check: impl Fn(&str, &Engine)) {
    check("cpu", &common::cpu());
    for (name, engine) in common::gpu_engines(None)
        .iter()
        .chain(common::gpu_engines(Some(64)).iter())
    {
        check(name, engine);
    }
}

#[test]
fn empty_batch_keeps_schema_and_no_rows() {
    let b = batch(vec![
        (
            "a",
            Arc::new(Int32Array::from(Vec::<i32>::new())) as ArrayRef,
        ),
        ("b", Arc::new(Float64Array::from(Vec::<f64>::new()))),
    ]);
    on_every_backend(|name, e| {
        let out = e.filter(&b, &col("a").gt(lit(1))).unwrap();
        assert_eq!(out.num_rows(), 0, "{name}");
        assert_eq!(out.schema(), b.schema(), "{name}");
        assert_eq!(
            e.evaluate(&b, &col("a").gt(lit(1))).unwrap().len(),
            0,
            "{name}"
        );
    });
}

/// No row, nothing evaluated: an expression that would fail on any row (an integer divided
/// by a zero literal) fails on none, on every backend alike (the GPU runs no kernel on an
/// empty batch; the CPU evaluated the constants and failed). Found by the resident-chain
/// property test: a first filter that keeps nothing, then `3 / 0 IS NOT NULL`.
#[test]
fn an_empty_batch_evaluates_nothing() {
    let b = batch(vec![(
        "a",
        Arc::new(UInt8Array::from(Vec::<u8>::new())) as ArrayRef,
    )]);
    let failing = (lit(3u8) / lit(0u8)).is_not_null();
    on_every_backend(|name, e| {
        let out = e
            .filter(&b, &failing)
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(out.num_rows(), 0, "{name}");
        let mask = e
            .evaluate(&b, &failing)
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(mask.len(), 0, "{name}");
        if let Ok(gpu) = e.upload(&b) {
            let out = gpu
                .filter(&failing)
                .unwrap_or_else(|err| panic!("{name}: {err}"));
            assert_eq!(out.num_rows(), 0, "{name}");
        }
    });
    // One row: the division fails, on every backend.
    let one = batch(vec![(
        "a",
        Arc::new(UInt8Array::from(vec![1u8])) as ArrayRef,
    )]);
    on_every_backend(|name, e| {
        assert!(
            matches!(e.filter(&one, &failing), Err(Error::DivideByZero)),
            "{name}"
        );
    });
}

#[test]
fn all_null_column_keeps_nothing_but_is_null_keeps_all() {
    let b = batch(vec![(
        "a",
        Arc::new(Int64Array::from(vec![None::<i64>; 300])) as ArrayRef,
    )]);
    on_every_backend(|name, e| {
        assert_eq!(
            e.filter(&b, &col("a").eq(lit(0i64))).unwrap().num_rows(),
            0,
            "{name}"
        );
        assert_eq!(e.filter(&b, &col("a").is_null()).unwrap(), b, "{name}");
        let mask = e.evaluate(&b, &col("a").lt(lit(5i64))).unwrap();
        assert_eq!(mask.null_count(), 300, "{name}");
    });
}

#[test]
fn all_kept_and_none_kept() {
    let n = 1000;
    let b = batch(vec![
        (
            "a",
            Arc::new(UInt16Array::from_iter(
                (0..n).map(|i| (i % 5 != 0).then_some(i as u16)),
            )) as ArrayRef,
        ),
        (
            "f",
            Arc::new(BooleanArray::from_iter((0..n).map(|i| Some(i % 3 == 0)))),
        ),
    ]);
    on_every_backend(|name, e| {
        assert_eq!(e.filter(&b, &lit(true)).unwrap(), b, "{name}: all kept");
        assert_eq!(
            e.filter(&b, &col("a").is_null().or(col("a").is_not_null()))
                .unwrap(),
            b,
            "{name}: all kept by columns"
        );
        assert_eq!(
            e.filter(&b, &lit(false)).unwrap().num_rows(),
            0,
            "{name}: none kept"
        );
        assert_eq!(
            e.filter(&b, &col("a").gt(lit(60000))).unwrap().num_rows(),
            0,
            "{name}: none match"
        );
    });
}

#[test]
fn nan_and_negative_zero_compare_in_total_order() {
    let values = vec![
        f64::NAN,
        -f64::NAN,
        0.0,
        -0.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        1.0,
    ];
    let b = batch(vec![
        (
            "x",
            Arc::new(Float64Array::from(values.clone())) as ArrayRef,
        ),
        (
            "y",
            Arc::new(Float32Array::from(
                values.iter().map(|v| *v as f32).collect::<Vec<_>>(),
            )),
        ),
    ]);
    on_every_backend(|name, e| {
        // NaN equals NaN (same bits), and is above +inf; -NaN is below -inf.
        let eq_nan = e.evaluate(&b, &col("x").eq(lit(f64::NAN))).unwrap();
        assert_eq!(
            eq_nan,
            BooleanArray::from(vec![true, false, false, false, false, false, false]),
            "{name}"
        );
        let gt_inf = e.evaluate(&b, &col("x").gt(lit(f64::INFINITY))).unwrap();
        assert_eq!(
            gt_inf,
            BooleanArray::from(vec![true, false, false, false, false, false, false]),
            "{name}"
        );
        // -0.0 < 0.0, and -0.0 != 0.0.
        let lt_zero = e.evaluate(&b, &col("y").lt(lit(0.0f32))).unwrap();
        assert_eq!(
            lt_zero,
            BooleanArray::from(vec![false, true, false, true, false, true, false]),
            "{name}"
        );
        let eq_neg_zero = e.evaluate(&b, &col("x").eq(lit(-0.0))).unwrap();
        assert_eq!(
            eq_neg_zero,
            BooleanArray::from(vec![false, false, false, true, false, false, false]),
            "{name}"
        );
    });
}

#[test]
fn integer_overflow_wraps_in_every_width() {
    let b = batch(vec![
        ("i8", Arc::new(Int8Array::from(vec![127, -128])) as ArrayRef),
        ("u8", Arc::new(UInt8Array::from(vec![255, 0]))),
        ("i32", Arc::new(Int32Array::from(vec![i32::MAX, i32::MIN]))),
        ("i64", Arc::new(Int64Array::from(vec![i64::MAX, i64::MIN]))),
        ("u64", Arc::new(UInt64Array::from(vec![u64::MAX, 0]))),
    ]);
    on_every_backend(|name, e| {
        let m = |p| e.evaluate(&b, &p).unwrap();
        let both = BooleanArray::from(vec![true, true]);
        assert_eq!(
            m((col("i8") + lit(1i8))
                .eq(lit(-128i8))
                .or((col("i8") - lit(1i8)).eq(lit(127i8)))),
            both,
            "{name} i8"
        );
        assert_eq!(
            m((col("u8") + lit(1u8))
                .eq(lit(0u8))
                .or((col("u8") - lit(1u8)).eq(lit(255u8)))),
            both,
            "{name} u8"
        );
        assert_eq!(
            m((col("i32") + lit(1))
                .eq(lit(i32::MIN))
                .or((col("i32") * lit(2)).eq(lit(0)))),
            both,
            "{name} i32"
        );
        assert_eq!(
            m((col("i64") + lit(1i64))
                .eq(lit(i64::MIN))
                .or((col("i64") - lit(1i64)).eq(lit(i64::MAX)))),
            both,
            "{name} i64"
        );
        assert_eq!(
            m((col("u64") * lit(3u64))
                .eq(lit(u64::MAX - 2))
                .or((col("u64") - lit(1u64)).eq(lit(u64::MAX)))),
            both,
            "{name} u64"
        );
    });
}

#[test]
fn integer_division_truncates_and_errors_like_arrow() {
    let b = batch(vec![
        (
            "a",
            Arc::new(Int64Array::from(vec![
                Some(-7),
                Some(7),
                None,
                Some(i64::MIN),
            ])) as ArrayRef,
        ),
        (
            "z",
            Arc::new(Int64Array::from(vec![Some(2), Some(-2), Some(0), Some(3)])),
        ),
        (
            "n",
            Arc::new(Int32Array::from(vec![
                Some(i32::MIN),
                Some(1),
                Some(2),
                Some(3),
            ])),
        ),
    ]);
    on_every_backend(|name, e| {
        let q = e
            .evaluate(&b, &(col("a") / col("z")).eq(lit(-3i64)))
            .unwrap();
        // -7/2 = -3 and 7/-2 = -3 (toward zero); the null row divides by zero but is null.
        assert_eq!(
            q,
            BooleanArray::from(vec![Some(true), Some(true), None, Some(false)]),
            "{name}"
        );
        let zero = e
            .filter(&b, &(col("z") / (col("z") - col("z"))).gt(lit(0i64)))
            .unwrap_err();
        assert!(matches!(zero, Error::DivideByZero), "{name}: {zero}");
        let overflow = e.filter(&b, &(col("n") / lit(-1)).gt(lit(0))).unwrap_err();
        assert!(
            matches!(overflow, Error::ArithmeticOverflow(_)),
            "{name}: {overflow}"
        );
    });
}

#[test]
fn three_valued_logic_truth_table() {
    let t = |v: Option<bool>| v;
    let l: Vec<Option<bool>> = [Some(true), Some(false), None]
        .into_iter()
        .flat_map(|a| [a, a, a])
        .collect();
    let r: Vec<Option<bool>> = (0..3)
        .flat_map(|_| [Some(true), Some(false), None])
        .collect();
    let b = batch(vec![
        ("l", Arc::new(BooleanArray::from(l.clone())) as ArrayRef),
        ("r", Arc::new(BooleanArray::from(r.clone()))),
    ]);
    let and: Vec<Option<bool>> = l
        .iter()
        .zip(&r)
        .map(|(a, b)| match (a, b) {
            (Some(false), _) | (_, Some(false)) => Some(false),
            (Some(true), Some(true)) => Some(true),
            _ => None,
        })
        .collect();
    let or: Vec<Option<bool>> = l
        .iter()
        .zip(&r)
        .map(|(a, b)| match (a, b) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (Some(false), Some(false)) => Some(false),
            _ => None,
        })
        .collect();
    on_every_backend(|name, e| {
        assert_eq!(
            e.evaluate(&b, &col("l").and(col("r"))).unwrap(),
            BooleanArray::from(and.clone()),
            "{name} AND"
        );
        assert_eq!(
            e.evaluate(&b, &col("l").or(col("r"))).unwrap(),
            BooleanArray::from(or.clone()),
            "{name} OR"
        );
        let not: Vec<Option<bool>> = l.iter().map(|v| t(v.map(|x| !x))).collect();
        assert_eq!(
            e.evaluate(&b, &col("l").not()).unwrap(),
            BooleanArray::from(not),
            "{name} NOT"
        );
    });
}

#[test]
fn sliced_arrays_with_unaligned_offsets() {
    let full = batch(vec![
        (
            "a",
            Arc::new(Int16Array::from_iter(
                (0..1000).map(|i| (i % 4 != 0).then_some(i as i16)),
            )) as ArrayRef,
        ),
        (
            "b",
            Arc::new(BooleanArray::from_iter(
                (0..1000).map(|i| (i % 6 != 0).then_some(i % 2 == 0)),
            )),
        ),
        (
            "c",
            Arc::new(UInt8Array::from_iter_values((0..1000).map(|i| i as u8))),
        ),
    ]);
    let b = full.slice(13, 700);
    let want = common::cpu()
        .filter(&b, &col("a").gt(lit(100)).or(col("b")))
        .unwrap();
    assert!(want.num_rows() > 100);
    on_every_backend(|name, e| {
        assert_eq!(
            e.filter(&b, &col("a").gt(lit(100)).or(col("b"))).unwrap(),
            want,
            "{name}"
        );
    });
}

#[test]
fn temporal_columns_compare_with_their_literals() {
    let ts =
        TimestampMillisecondArray::from(vec![Some(1_000), None, Some(3_000)]).with_timezone("UTC");
    let b = batch(vec![
        (
            "d",
            Arc::new(Date32Array::from(vec![Some(18_000), Some(19_000), None])) as ArrayRef,
        ),
        ("t", Arc::new(ts)),
    ]);
    on_every_backend(|name, e| {
        let m = e
            .evaluate(
                &b,
                &col("d").lt(lit(arrow_wgpu::ScalarValue::Date32(18_500))),
            )
            .unwrap();
        assert_eq!(
            m,
            BooleanArray::from(vec![Some(true), Some(false), None]),
            "{name}"
        );
        let ts_lit = arrow_wgpu::ScalarValue::Timestamp(
            2_000,
            arrow::datatypes::TimeUnit::Millisecond,
            None,
        );
        let m = e.evaluate(&b, &col("t").gt_eq(lit(ts_lit))).unwrap();
        assert_eq!(
            m,
            BooleanArray::from(vec![Some(false), None, Some(true)]),
            "{name}"
        );
    });
}

#[test]
fn float_arithmetic_runs_on_the_gpu_in_auto_and_gpu() {
    let b = batch(vec![(
        "x",
        Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0])) as ArrayRef,
    )]);
    let p = (col("x") * lit(2.0)).gt(lit(3.0));
    let want = common::cpu().filter(&b, &p).unwrap();
    assert_eq!(want.num_rows(), 2);
    for (name, gpu) in common::gpu_engines(None) {
        assert_eq!(gpu.filter(&b, &p).unwrap(), want, "{name}");
        let options = EngineOptions {
            backend: Backend::Auto,
            wgpu_backends: backend_of(&gpu),
            adapter_name: Some(gpu.adapter().unwrap().name.clone()),
            ..Default::default()
        };
        let auto = Engine::with_options(options).unwrap();
        let (got, profile) = auto.profiled(|e| e.filter(&b, &p)).unwrap();
        assert_eq!(got, want, "{name}");
        assert_ne!(profile.steps[0].ran_on, RanOn::Cpu, "{name}: {profile}");
        assert_eq!(profile.steps[0].fallback, None, "{name}: {profile}");
    }
}

/// IEEE-754 corners of float arithmetic in predicates, with literal answers: subnormals
/// are neither flushed nor lost, signed zeros follow IEEE (x - x = +0, -0 + -0 = -0),
/// division is correctly rounded, x / 0 is inf or NaN (no error), integers cast to floats
/// round as Rust's `as`, and every computed NaN is the canonical positive NaN.
#[test]
fn float_arithmetic_corners() {
    let tiny = f64::from_bits(1); // the smallest subnormal
    let nan64 = f64::from_bits(0x7ff8_0000_0000_0000); // the canonical NaNs
    let nan32 = f32::from_bits(0x7fc0_0000);
    let b = batch(vec![
        (
            "x",
            Arc::new(Float64Array::from(vec![tiny, 1.0, -0.0, 0.0, 1.0])) as ArrayRef,
        ),
        (
            "y",
            Arc::new(Float64Array::from(vec![tiny, 3.0, -0.0, 0.0, 0.0])) as ArrayRef,
        ),
        (
            "f",
            Arc::new(Float32Array::from(vec![
                f32::from_bits(1),
                0.1,
                -0.0,
                f32::from_bits(0xffc0_0001), // a negative NaN with a payload
                f32::MIN_POSITIVE,
            ])) as ArrayRef,
        ),
        (
            "i",
            Arc::new(Int64Array::from(vec![
                (1 << 53) + 1, // a tie: rounds to even, 2^53
                (1 << 53) + 3, // a tie: rounds to even, 2^53 + 4
                -1,
                i64::MIN,
                i64::MAX, // rounds up to 2^63
            ])) as ArrayRef,
        ),
    ]);
    on_every_backend(|name, e| {
        let m = |p: arrow_wgpu::Expr| e.evaluate(&b, &p).unwrap();
        let v = |bits: [bool; 5]| BooleanArray::from(bits.to_vec());
        // tiny + tiny = 2 * tiny, not 0 (no flush to zero).
        assert!(
            m((col("x") + col("y")).eq(lit(2.0 * tiny))).value(0),
            "{name}"
        );
        // 1 / 3 correctly rounded.
        assert!(
            m((col("x") / col("y")).eq(lit(1.0 / 3.0))).value(1),
            "{name}"
        );
        // -0 + -0 = -0; 0 - 0 = +0; x - x = +0 (total order tells -0 from +0).
        assert_eq!(
            m((col("x") + col("y")).eq(lit(-0.0))),
            v([false, false, true, false, false]),
            "{name}"
        );
        assert_eq!(
            m((col("x") - col("x")).eq(lit(0.0))),
            v([true, true, true, true, true]),
            "{name}"
        );
        // 1 / 0 = inf, 0 / 0 and -0 / -0 = NaN, no error.
        assert_eq!(
            m((col("x") / col("y")).eq(lit(f64::INFINITY))),
            v([false, false, false, false, true]),
            "{name}"
        );
        assert_eq!(
            m((col("x") / col("y")).eq(lit(nan64))),
            v([false, false, true, true, false]),
            "{name}"
        );
        // Float32 subnormals survive the widening to Float64 (x is Float64) and f32
        // arithmetic.
        assert!(
            m((col("f") - col("x")).eq(lit(f32::from_bits(1) as f64 - tiny))).value(0),
            "{name}"
        );
        assert!(
            m((col("f") * lit(0.5f32)).eq(lit(f32::MIN_POSITIVE / 2.0))).value(4),
            "{name}"
        );
        // A NaN column value keeps its bits; the NaN a cast computes is canonical.
        assert_eq!(
            m(col("f").eq(lit(f32::from_bits(0xffc0_0001)))),
            v([false, false, false, true, false]),
            "{name}"
        );
        assert_eq!(
            m((col("f") + lit(0.0f32)).eq(lit(nan32))),
            v([false, false, false, true, false]),
            "{name}"
        );
        assert!(
            !m(col("f").eq(lit(nan64))).value(3),
            "{name}: a column value is not canonicalised"
        );
        // Widening f to Float64 computes a value: its NaN becomes the canonical NaN, which
        // every computed NaN (x * NaN) is too.
        assert_eq!(
            m(col("f").eq(col("x") * lit(nan64))),
            v([false, false, false, true, false]),
            "{name}"
        );
        // Int64 to Float64 rounds to nearest, ties to even.
        let as_f64: Vec<f64> = [(1i64 << 53) + 1, (1 << 53) + 3, -1, i64::MIN, i64::MAX]
            .iter()
            .map(|&i| i as f64)
            .collect();
        assert_eq!(as_f64[0], 9_007_199_254_740_992.0);
        assert_eq!(as_f64[1], 9_007_199_254_740_996.0);
        for (row, want) in as_f64.iter().enumerate() {
            assert!(
                m(col("i").eq(lit(*want))).value(row),
                "{name}: row {row} as f64 should be {want}"
            );
        }
    });
}

#[test]
fn unsupported_column_type_falls_back_in_auto_and_errors_in_gpu() {
    let b = batch(vec![
        ("a", Arc::new(Int32Array::from(vec![1, 2, 3])) as ArrayRef),
        (
            "s",
            Arc::new(BinaryArray::from(vec![&b"x"[..], b"y", b"z"])),
        ),
    ]);
    let want = common::cpu().filter(&b, &col("a").gt(lit(1))).unwrap();
    for (name, gpu) in common::gpu_engines(None) {
        let err = gpu.filter(&b, &col("a").gt(lit(1))).unwrap_err();
        match &err {
            Error::UnsupportedType {
                operation,
                column,
                data_type,
                ..
            } => {
                assert_eq!(
                    (*operation, column.as_str(), data_type),
                    ("filter", "s", &DataType::Binary),
                    "{name}"
                );
            }
            other => panic!("{name}: {other}"),
        }
        let auto = Engine::with_options(EngineOptions {
            wgpu_backends: backend_of(&gpu),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            auto.filter(&b, &col("a").gt(lit(1))).unwrap(),
            want,
            "{name}"
        );
        // evaluate uploads only the columns it reads, so the binary column doesn't matter.
        assert_eq!(
            gpu.evaluate(&b, &col("a").gt(lit(1))).unwrap(),
            BooleanArray::from(vec![false, true, true])
        );
    }
}

#[test]
fn profile_splits_upload_kernels_download() {
    let b = batch(vec![(
        "a",
        Arc::new(Int32Array::from_iter_values(0..10_000)) as ArrayRef,
    )]);
    for (name, gpu) in common::gpu_engines(None) {
        let (out, profile) = gpu
            .profiled(|e| e.filter(&b, &col("a").lt(lit(10))))
            .unwrap();
        assert_eq!(out.num_rows(), 10);
        let step = &profile.steps[0];
        assert!(matches!(step.ran_on, RanOn::Gpu(_)), "{name}");
        for phase in [Phase::Upload, Phase::Kernels, Phase::Download] {
            assert!(
                step.phases.iter().any(|(p, _)| *p == phase),
                "{name}: no {phase:?} in {profile}"
            );
        }
    }
}

#[test]
fn engine_is_send_and_sync_and_shared_by_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Engine>();
    assert_send_sync::<arrow_wgpu::GpuBatch>();
    let b = batch(vec![(
        "a",
        Arc::new(Int64Array::from_iter_values(0..5000)) as ArrayRef,
    )]);
    for (name, gpu) in common::gpu_engines(None) {
        let gpu = Arc::new(gpu);
        let handles: Vec<_> = (0..4i64)
            .map(|t| {
                let (gpu, b) = (gpu.clone(), b.clone());
                std::thread::spawn(move || {
                    gpu.filter(&b, &col("a").lt(lit(t * 100)))
                        .unwrap()
                        .num_rows()
                })
            })
            .collect();
        let counts: Vec<usize> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(counts, vec![0, 100, 200, 300], "{name}");
    }
}

fn backend_of(engine: &Engine) -> wgpu::Backends {
    match engine.adapter().unwrap().backend {
        wgpu::Backend::Vulkan => wgpu::Backends::VULKAN,
        wgpu::Backend::Gl => wgpu::Backends::GL,
        wgpu::Backend::Metal => wgpu::Backends::METAL,
        wgpu::Backend::Dx12 => wgpu::Backends::DX12,
        _ => wgpu::Backends::all(),
    }
}

#[test]
fn schema_with_metadata_survives_filter() {
    let schema = Arc::new(
        Schema::new(vec![Field::new("a", DataType::Int32, true)]).with_metadata(
            std::collections::HashMap::from([("k".to_string(), "v".to_string())]),
        ),
    );
    let b = RecordBatch::try_new(schema, vec![Arc::new(Int32Array::from(vec![1, 2]))]).unwrap();
    on_every_backend(|name, e| {
        assert_eq!(
            e.filter(&b, &col("a").gt(lit(1))).unwrap().schema(),
            b.schema(),
            "{name}"
        )
    });
}
