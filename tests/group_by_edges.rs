//! Group-by edge cases: wrapping sums, empty input, all-null groups, global aggregates,
//! dictionary keys, NaN / -0.0 keys, float min/max in total order, exact means of large
//! integers, many groups, sorted output, errors, and where it runs (`Backend::Gpu` refuses
//! for what the GPU can't run yet; `Backend::Auto` falls back to the CPU, in the profile).

use crate::common;

use std::sync::Arc;

use arrow::array::*;
use arrow::datatypes::{DataType, Float64Type, Int16Type, Int64Type};
use arrow::record_batch::RecordBatch;
use arrow_wgpu::{col, lit, Agg, Backend, Engine, EngineOptions, Error, GroupByOptions, RanOn};

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    RecordBatch::try_from_iter(columns).unwrap()
}

fn f64_bits(a: &ArrayRef) -> Vec<Option<u64>> {
    a.as_any()
        .downcast_ref::<Float64Array>()
        .unwrap()
        .iter()
        .map(|v| v.map(f64::to_bits))
        .collect()
}

#[test]
fn integer_sums_wrap() {
    let b = batch(vec![
        (
            "i",
            Arc::new(Int64Array::from(vec![i64::MAX, 1, i64::MIN])) as _,
        ),
        ("u", Arc::new(UInt64Array::from(vec![u64::MAX, 2, 0])) as _),
        ("s", Arc::new(Int8Array::from(vec![127, 127, 127])) as _),
    ]);
    let out = common::cpu()
        .group_by(
            &b,
            &[],
            &[
                Agg::sum(col("i")),
                Agg::sum(col("u")),
                Agg::sum(col("s")),
                Agg::mean(col("i")),
                Agg::sum(col("i")).filter(col("i").gt(lit(0i64))),
            ],
        )
        .unwrap();
    // i64::MAX + 1 wraps to i64::MIN, + i64::MIN wraps to 0.
    assert_eq!(out.column(0).as_ref(), &Int64Array::from(vec![0]));
    assert_eq!(out.column(1).as_ref(), &UInt64Array::from(vec![1]));
    // Int8 sums in Int64: no wrap at 8 bits.
    assert_eq!(out.column(2).as_ref(), &Int64Array::from(vec![381]));
    // avg is exact, not the wrapped sum over 3: (2^63 - 1 + 1 - 2^63) / 3 = 0.
    assert_eq!(out.column(3).as_ref(), &Float64Array::from(vec![0.0]));
    assert_eq!(out.column(4).as_ref(), &Int64Array::from(vec![i64::MIN]));
}

#[test]
fn means_and_variances_of_large_integers_are_exact() {
    let b = batch(vec![(
        "x",
        Arc::new(Int64Array::from(vec![i64::MAX, i64::MAX - 1])) as _,
    )]);
    let out = common::cpu()
        .group_by(&b, &[], &[Agg::mean(col("x")), Agg::var_pop(col("x"))])
        .unwrap();
    // The exact mean 2^63 - 1.5 rounds to 2^63; a sum in f64 would round each value first.
    assert_eq!(
        out.column(0).as_ref(),
        &Float64Array::from(vec![2f64.powi(63)])
    );
    // Deviations of ±0.5: exactly 0.25.
    assert_eq!(out.column(1).as_ref(), &Float64Array::from(vec![0.25]));
}

#[test]
fn float_sums_are_exact_and_order_independent() {
    let xs = vec![1e100, 1.0, -1e100, 0.1, 0.2, 0.3, 1e-300, -1e-300];
    let b = batch(vec![("x", Arc::new(Float64Array::from(xs.clone())) as _)]);
    let engine = common::cpu();
    let out = engine
        .group_by(&b, &[], &[Agg::sum(col("x")), Agg::mean(col("x"))])
        .unwrap();
    // Exactly 1.6000000000000000055511151231257827 (0.1 + 0.2 + 0.3 are not exact).
    assert_eq!(out.column(0).as_ref(), &Float64Array::from(vec![1.6]));
    assert_eq!(out.column(1).as_ref(), &Float64Array::from(vec![0.2]));
    // A left-to-right sum loses the 1.0 entirely.
    assert_eq!(xs.iter().sum::<f64>(), 0.6000000000000001);
    let mut reversed = xs.clone();
    reversed.reverse();
    let b2 = batch(vec![("x", Arc::new(Float64Array::from(reversed)) as _)]);
    let out2 = engine
        .group_by(&b2, &[], &[Agg::sum(col("x")), Agg::mean(col("x"))])
        .unwrap();
    assert_eq!(out, out2);
}

#[test]
fn special_floats_in_sums() {
    let b = batch(vec![
        (
            "k",
            Arc::new(Int32Array::from(vec![1, 1, 2, 2, 3, 3, 4, 4])) as _,
        ),
        (
            "x",
            Arc::new(Float64Array::from(vec![
                f64::INFINITY,
                1.0,
                f64::INFINITY,
                f64::NEG_INFINITY,
                -f64::NAN,
                1.0,
                f64::MAX,
                f64::MAX,
            ])) as _,
        ),
    ]);
    let out = common::cpu()
        .group_by(&b, &["k"], &[Agg::sum(col("x")), Agg::var_pop(col("x"))])
        .unwrap();
    let nan = 0x7ff8_0000_0000_0000u64;
    assert_eq!(
        f64_bits(out.column(1)),
        vec![
            Some(f64::INFINITY.to_bits()),
            Some(nan),
            Some(nan),                     // any NaN gives the canonical positive NaN
            Some(f64::INFINITY.to_bits())  // MAX + MAX overflows
        ]
    );
    assert_eq!(
        f64_bits(out.column(2)),
        vec![Some(nan), Some(nan), Some(nan), Some(0)]
    );
}

#[test]
fn empty_input() {
    let b = batch(vec![
        ("k", Arc::new(Int32Array::from(Vec::<i32>::new())) as _),
        ("x", Arc::new(Float64Array::from(Vec::<f64>::new())) as _),
    ]);
    let aggs = [
        Agg::count_star(),
        Agg::count(col("x")),
        Agg::sum(col("x")),
        Agg::min(col("x")),
        Agg::mean(col("x")),
        Agg::var_samp(col("x")),
    ];
    let engine = common::cpu();
    let grouped = engine.group_by(&b, &["k"], &aggs).unwrap();
    assert_eq!(grouped.num_rows(), 0);
    assert_eq!(grouped.num_columns(), 7);
    assert_eq!(grouped.schema().field(3).data_type(), &DataType::Float64);
    let global = engine.group_by(&b, &[], &aggs).unwrap();
    assert_eq!(global.num_rows(), 1);
    assert_eq!(global.column(0).as_ref(), &Int64Array::from(vec![0]));
    assert_eq!(global.column(1).as_ref(), &Int64Array::from(vec![0]));
    for c in 2..6 {
        assert!(global.column(c).is_null(0), "column {c}");
    }
}

#[test]
fn all_null_groups() {
    let b = batch(vec![
        (
            "k",
            Arc::new(Int32Array::from(vec![None, None, Some(1)])) as _,
        ),
        (
            "x",
            Arc::new(Int64Array::from(vec![None, None, Some(5)])) as _,
        ),
    ]);
    let out = common::cpu()
        .group_by(
            &b,
            &["k"],
            &[
                Agg::count_star(),
                Agg::count(col("x")),
                Agg::sum(col("x")),
                Agg::max(col("x")),
                Agg::mean(col("x")),
                Agg::var_samp(col("x")),
                Agg::var_pop(col("x")),
                Agg::stddev_pop(col("x")),
            ],
        )
        .unwrap();
    // The null key is a group, first.
    assert_eq!(
        out.column(0).as_ref(),
        &Int32Array::from(vec![None, Some(1)])
    );
    assert_eq!(out.column(1).as_ref(), &Int64Array::from(vec![2, 1]));
    assert_eq!(out.column(2).as_ref(), &Int64Array::from(vec![0, 1]));
    assert_eq!(
        out.column(3).as_ref(),
        &Int64Array::from(vec![None, Some(5)])
    );
    assert_eq!(
        out.column(4).as_ref(),
        &Int64Array::from(vec![None, Some(5)])
    );
    assert_eq!(
        out.column(5).as_ref(),
        &Float64Array::from(vec![None, Some(5.0)])
    );
    // One value: the sample variance is null, the population variance 0.
    assert_eq!(
        out.column(6).as_ref(),
        &Float64Array::from(vec![None, None])
    );
    assert_eq!(
        out.column(7).as_ref(),
        &Float64Array::from(vec![None, Some(0.0)])
    );
    assert_eq!(
        out.column(8).as_ref(),
        &Float64Array::from(vec![None, Some(0.0)])
    );
}

#[test]
fn nan_and_signed_zero_keys() {
    let nan = f64::NAN;
    let neg_nan = -f64::NAN;
    let b = batch(vec![(
        "k",
        Arc::new(Float64Array::from(vec![
            Some(0.0),
            Some(-0.0),
            Some(nan),
            Some(neg_nan),
            Some(nan),
            None,
            Some(0.0),
        ])) as _,
    )]);
    let engine = common::cpu();
    let out = engine.group_by(&b, &["k"], &[Agg::count_star()]).unwrap();
    // -0.0 and 0.0 differ; NaN equals NaN of the same bits; -NaN is its own group.
    assert_eq!(
        f64_bits(out.column(0)),
        vec![
            Some(0),
            Some((-0.0f64).to_bits()),
            Some(nan.to_bits()),
            Some(neg_nan.to_bits()),
            None
        ]
    );
    assert_eq!(
        out.column(1).as_ref(),
        &Int64Array::from(vec![2, 1, 2, 1, 1])
    );
    let sorted = engine
        .group_by_with(&b, &["k"], &[Agg::count_star()], GroupByOptions::sorted())
        .unwrap();
    // Nulls first, then IEEE total order.
    assert_eq!(
        f64_bits(sorted.column(0)),
        vec![
            None,
            Some(neg_nan.to_bits()),
            Some((-0.0f64).to_bits()),
            Some(0),
            Some(nan.to_bits())
        ]
    );
}

#[test]
fn float_min_max_in_total_order() {
    let b = batch(vec![
        ("k", Arc::new(Int32Array::from(vec![1, 1, 2, 2, 3, 3])) as _),
        (
            "x",
            Arc::new(Float32Array::from(vec![
                0.0,
                -0.0,
                f32::NAN,
                1.0,
                -f32::NAN,
                f32::NEG_INFINITY,
            ])) as _,
        ),
    ]);
    let out = common::cpu()
        .group_by(&b, &["k"], &[Agg::min(col("x")), Agg::max(col("x"))])
        .unwrap();
    let bits = |a: &ArrayRef| -> Vec<u32> {
        a.as_any()
            .downcast_ref::<Float32Array>()
            .unwrap()
            .values()
            .iter()
            .map(|v| v.to_bits())
            .collect()
    };
    // As arrow's min/max kernels: -NaN < -inf < -0.0 < 0.0 < 1.0 < NaN.
    assert_eq!(
        bits(out.column(1)),
        vec![(-0.0f32).to_bits(), 1f32.to_bits(), (-f32::NAN).to_bits()]
    );
    assert_eq!(
        bits(out.column(2)),
        vec![0, f32::NAN.to_bits(), f32::NEG_INFINITY.to_bits()]
    );
    let x = b.column(1).as_any().downcast_ref::<Float32Array>().unwrap();
    assert_eq!(
        arrow::compute::max(x).unwrap().to_bits(),
        f32::NAN.to_bits(),
        "arrow's max agrees"
    );
    assert_eq!(
        arrow::compute::min(x).unwrap().to_bits(),
        (-f32::NAN).to_bits(),
        "arrow's min agrees"
    );
}

#[test]
fn dictionary_keys_keep_their_dictionary() {
    // Values "x", "y", "x" (a repeated value) and a null value.
    let dict = DictionaryArray::<Int16Type>::try_new(
        Int16Array::from(vec![Some(0), Some(1), Some(2), None, Some(3), Some(0)]),
        Arc::new(StringArray::from(vec![
            Some("x"),
            Some("y"),
            Some("x"),
            None,
        ])),
    )
    .unwrap();
    let b = batch(vec![
        ("d", Arc::new(dict) as _),
        ("v", Arc::new(Int32Array::from(vec![1, 2, 3, 4, 5, 6])) as _),
    ]);
    let out = common::cpu()
        .group_by(&b, &["d"], &[Agg::sum(col("v")), Agg::min(col("d"))])
        .unwrap();
    assert_eq!(
        out.schema().field(0).data_type(),
        b.schema().field(0).data_type()
    );
    let keys = out
        .column(0)
        .as_any()
        .downcast_ref::<DictionaryArray<Int16Type>>()
        .unwrap();
    let strings: Vec<Option<&str>> = keys
        .downcast_dict::<StringArray>()
        .unwrap()
        .into_iter()
        .collect();
    // Groups by value, as the row format: "x" (codes 0 and 2), "y", null (a null code and
    // a code whose value is null).
    assert_eq!(strings, vec![Some("x"), Some("y"), None]);
    assert_eq!(out.column(1).as_ref(), &Int64Array::from(vec![10, 2, 9]));
}

#[test]
fn many_groups() {
    let n = 300_000u32;
    let b = batch(vec![
        (
            "k",
            Arc::new(UInt32Array::from_iter_values((0..n).map(|i| i % 200_003))) as _,
        ),
        (
            "x",
            Arc::new(Float64Array::from_iter_values(
                (0..n).map(|i| i as f64 * 0.5),
            )) as _,
        ),
    ]);
    let out = common::cpu()
        .group_by(&b, &["k"], &[Agg::count_star(), Agg::sum(col("x"))])
        .unwrap();
    assert_eq!(out.num_rows(), 200_003);
    let counts = out.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
    assert_eq!(counts.values().iter().sum::<i64>(), n as i64);
}

#[test]
fn sorted_by_several_keys() {
    let b = batch(vec![
        (
            "a",
            Arc::new(Int32Array::from(vec![
                Some(2),
                None,
                Some(1),
                Some(2),
                Some(1),
            ])) as _,
        ),
        (
            "b",
            Arc::new(StringArray::from(vec!["z", "q", "y", "a", "y"])) as _,
        ),
    ]);
    let out = common::cpu()
        .group_by_with(
            &b,
            &["a", "b"],
            &[Agg::count_star()],
            GroupByOptions::sorted(),
        )
        .unwrap();
    assert_eq!(
        out.column(0).as_ref(),
        &Int32Array::from(vec![None, Some(1), Some(2), Some(2)])
    );
    assert_eq!(
        out.column(1).as_ref(),
        &StringArray::from(vec!["q", "y", "a", "z"])
    );
    assert_eq!(out.column(2).as_ref(), &Int64Array::from(vec![1, 2, 1, 1]));
}

#[test]
fn names_and_aliases() {
    let b = batch(vec![("x", Arc::new(Int32Array::from(vec![1, 2])) as _)]);
    let out = common::cpu()
        .group_by(
            &b,
            &["x"],
            &[
                Agg::count_star(),
                Agg::sum(col("x") * lit(2)).alias("double"),
                Agg::stddev_samp(col("x")).filter(col("x").gt(lit(1))),
            ],
        )
        .unwrap();
    let names: Vec<String> = out
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(
        names,
        ["x", "count(*)", "double", "stddev(x) FILTER (WHERE x > 1)"]
    );
    assert!(!out.schema().field(1).is_nullable());
}

#[test]
fn errors() {
    let b = batch(vec![
        ("k", Arc::new(Int32Array::from(vec![1])) as _),
        ("s", Arc::new(StringArray::from(vec!["a"])) as _),
        (
            "d",
            Arc::new(
                Decimal128Array::from(vec![1i128])
                    .with_precision_and_scale(10, 2)
                    .unwrap(),
            ) as _,
        ),
    ]);
    let e = common::cpu();
    let err = e.group_by(&b, &["nope"], &[Agg::count_star()]).unwrap_err();
    assert!(
        matches!(err, Error::UnknownColumn { ref name, .. } if name == "nope"),
        "{err}"
    );
    let err = e
        .group_by(&b, &["k"], &[Agg::sum(col("nope"))])
        .unwrap_err();
    assert!(matches!(err, Error::UnknownColumn { .. }), "{err}");
    let err = e.group_by(&b, &[], &[]).unwrap_err();
    assert!(matches!(err, Error::InvalidExpression(_)), "{err}");
    let err = e.group_by(&b, &["k"], &[Agg::sum(col("s"))]).unwrap_err();
    assert!(
        matches!(err, Error::UnsupportedType { ref column, .. } if column == "sum(s)"),
        "{err}"
    );
    assert!(
        err.to_string().contains("group_by") && err.to_string().contains("Utf8"),
        "{err}"
    );
    assert!(!err.is_gpu_side());
    // Decimals sum (DataFusion's type), where they used to be unsupported.
    let out = e.group_by(&b, &["k"], &[Agg::sum(col("d"))]).unwrap();
    assert_eq!(
        out.schema().field(1).data_type(),
        &arrow::datatypes::DataType::Decimal128(38, 2)
    );
    let err = e.group_by(&b, &["k"], &[Agg::mean(col("s"))]).unwrap_err();
    assert!(matches!(err, Error::UnsupportedType { .. }), "{err}");
    // A filter must be boolean; values must type-check.
    let err = e
        .group_by(&b, &["k"], &[Agg::count_star().filter(col("k") + lit(1))])
        .unwrap_err();
    assert!(matches!(err, Error::InvalidExpression(_)), "{err}");
    let err = e
        .group_by(&b, &["k"], &[Agg::sum(col("k") + col("s"))])
        .unwrap_err();
    assert!(matches!(err, Error::InvalidExpression(_)), "{err}");
    // Keys without aggregates are fine: the distinct keys.
    let out = e.group_by(&b, &["k"], &[]).unwrap();
    assert_eq!(out.num_columns(), 1);
    // Integer division by zero in a value, as arrow's `div`.
    let err = e
        .group_by(&b, &[], &[Agg::sum(col("k") / lit(0))])
        .unwrap_err();
    assert!(matches!(err, Error::DivideByZero), "{err}");
}

fn sample() -> RecordBatch {
    batch(vec![
        ("k", Arc::new(Int32Array::from(vec![1, 2, 1])) as _),
        ("x", Arc::new(Float64Array::from(vec![0.5, 1.5, 2.5])) as _),
        (
            "s",
            Arc::new(BinaryArray::from(vec![&b"a"[..], b"b", b"a"])) as _,
        ),
    ])
}

/// What the GPU doesn't run yet: binary keys.
const UNSUPPORTED_KEYS: &str = "group keys of type Binary";

fn filtered() -> Agg {
    Agg::sum(col("x")).filter(col("k").gt(lit(1)))
}

#[test]
fn gpu_backend_refuses_keys_it_cannot_run_yet() {
    for (name, engine) in common::gpu_engines(None) {
        let err = engine
            .group_by(&sample(), &["s"], &[filtered()])
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::UnsupportedOnGpu {
                    operation: "group_by",
                    ..
                }
            ),
            "{name}: {err}"
        );
        assert!(err.to_string().contains(UNSUPPORTED_KEYS), "{name}: {err}");
    }
}

#[test]
fn auto_falls_back_to_the_cpu_and_says_so() {
    let expected = common::cpu()
        .group_by(&sample(), &["s"], &[filtered()])
        .unwrap();
    let autos = common::gpu_engines_with(|o| EngineOptions {
        backend: Backend::Auto,
        ..o
    });
    for (name, engine) in autos {
        let (out, profile) = engine
            .profiled(|e| e.group_by(&sample(), &["s"], &[filtered()]))
            .unwrap();
        assert_eq!(out, expected, "{name}");
        let step = profile
            .steps
            .iter()
            .find(|s| s.operation == "group_by")
            .expect("a group_by step");
        assert_eq!(step.ran_on, RanOn::Cpu, "{name}");
        assert!(
            step.fallback
                .as_deref()
                .is_some_and(|f| f.contains(UNSUPPORTED_KEYS)),
            "{name}: {:?}",
            step.fallback
        );
    }
    // Without an adapter (or on the CPU backend) there is no fall back to report.
    let (_, profile) = Engine::new(Backend::Cpu)
        .unwrap()
        .profiled(|e| e.group_by(&sample(), &["k"], &[Agg::count_star()]))
        .unwrap();
    assert_eq!(profile.steps[0].fallback, None);
}

#[test]
fn sliced_input() {
    let b = batch(vec![
        ("k", Arc::new(Int8Array::from(vec![9, 1, 2, 1, 9])) as _),
        (
            "x",
            Arc::new(Float64Array::from(vec![100.0, 1.0, 2.0, 3.0, 100.0])) as _,
        ),
    ])
    .slice(1, 3);
    let out = common::cpu()
        .group_by(&b, &["k"], &[Agg::sum(col("x")), Agg::max(col("x"))])
        .unwrap();
    assert_eq!(out.column(0).as_ref(), &Int8Array::from(vec![1, 2]));
    assert_eq!(out.column(1).as_ref(), &Float64Array::from(vec![4.0, 2.0]));
    assert_eq!(out.column(2).as_ref(), &Float64Array::from(vec![3.0, 2.0]));
}

/// The table `k`, `i`, `f` of the tests that carry state across chunks.
fn keys_ints_floats(keys: &[i64], ints: &[Option<i64>], floats: Vec<Option<f64>>) -> RecordBatch {
    batch(vec![
        ("k", Arc::new(Int64Array::from(keys.to_vec())) as _),
        ("i", Arc::new(Int64Array::from(ints.to_vec())) as _),
        ("f", Arc::new(Float64Array::from(floats)) as _),
    ])
}

/// A CPU engine with `threads` threads of at least `min_rows` rows each.
fn cpu_with_threads(threads: usize, min_rows: Option<usize>) -> Engine {
    Engine::with_options(EngineOptions {
        backend: Backend::Cpu,
        cpu_threads: Some(threads),
        cpu_rows_per_thread: min_rows,
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn threaded_cpu_gives_one_threads_bits() {
    // 300k rows, cut into pieces by 2 to 7 threads: groups in order of first appearance
    // (groups first seen in a later piece), exact float sums of wild magnitudes, min/max
    // ties between -0.0 and 0.0 and between NaNs (the first row's value stays), wrapping
    // integer sums, count(DISTINCT), dictionary keys, filters. (Few groups: a batch of many
    // is grouped on one thread; `k2` has one group in three rows.)
    let n = 300_000usize;
    let key = Int32Array::from_iter((0..n).map(|i| {
        let k = ((i * 7919) % 131) as i32 + (i / 100_000) as i32 * 1_000;
        (i % 97 != 0).then_some(k)
    }));
    let many = UInt32Array::from_iter_values((0..n).map(|i| (i / 3) as u32));
    let x = Float64Array::from_iter_values((0..n).map(|i| match i % 5 {
        0 => 1e300 / (i as f64 + 1.0),
        1 => -0.0,
        2 => 0.0,
        3 => f64::from_bits(0x7ff8_0000_0000_0000 | i as u64),
        _ => (i as f64).sqrt() * 1e-300,
    }));
    let big = Int64Array::from_iter_values((0..n).map(|i| i64::MAX - i as i64));
    let dict = DictionaryArray::<Int16Type>::try_new(
        Int16Array::from_iter_values((0..n).map(|i| (i % 3) as i16)),
        Arc::new(StringArray::from(vec!["a", "b", "a"])),
    )
    .unwrap();
    let b = batch(vec![
        ("k", Arc::new(key) as _),
        ("k2", Arc::new(many) as _),
        ("x", Arc::new(x) as _),
        ("big", Arc::new(big) as _),
        ("d", Arc::new(dict) as _),
    ]);
    let finite = col("x").lt(lit(f64::INFINITY));
    let aggs = [
        Agg::count_star(),
        Agg::sum(col("x")).filter(finite.clone()),
        Agg::mean(col("x")).filter(finite.clone()),
        Agg::var_samp(col("x")).filter(finite),
        Agg::min(col("x")),
        Agg::max(col("x")),
        Agg::sum(col("big")),
        Agg::count_distinct(col("d")),
    ];
    let one = cpu_with_threads(1, None);
    for keys in [vec!["k"], vec!["d", "k"], vec![], vec!["k2"]] {
        let want = one.group_by(&b, &keys, &aggs).unwrap();
        for engine in [
            cpu_with_threads(2, None),
            cpu_with_threads(4, None),
            cpu_with_threads(7, Some(1000)),
        ] {
            let got = engine.group_by(&b, &keys, &aggs).unwrap();
            assert_eq!(got.num_rows(), want.num_rows(), "keys {keys:?}");
            for (c, (g, w)) in got.columns().iter().zip(want.columns()).enumerate() {
                if w.data_type() == &DataType::Float64 {
                    assert_eq!(f64_bits(g), f64_bits(w), "keys {keys:?}, column {c}");
                } else {
                    assert_eq!(g, w, "keys {keys:?}, column {c}");
                }
            }
        }
    }
}

/// Counts of kept rows stay right when the first chunks keep every row and a later one
/// drops some (a null value, a FILTER): the grouping's own row counts serve until then,
/// and must be carried into the aggregate's own. Chunks of 4 rows (one thread, one row a
/// thread's minimum), against the counts and sums written out.
#[test]
fn kept_counts_carry_across_chunks() {
    // Keys 0, 1 alternate; the values are null only from row 12 on.
    let rows = 20;
    let keys: Vec<i64> = (0..rows).map(|i| i % 2).collect();
    let ints: Vec<Option<i64>> = (0..rows)
        .map(|i| (i < 12 || i % 3 != 0).then_some(i))
        .collect();
    let floats: Vec<Option<f64>> = ints.iter().map(|v| v.map(|v| v as f64)).collect();
    let b = keys_ints_floats(&keys, &ints, floats);
    let aggs = [
        Agg::count(col("i")),
        Agg::mean(col("i")),
        Agg::mean(col("f")),
        Agg::count_star().filter(col("k").eq(lit(0i64)).or(col("i").gt(lit(10i64)))),
    ];
    // One thread of one row at least: chunks of 4 rows.
    let chunked = cpu_with_threads(1, Some(1));
    for engine in [common::cpu(), chunked] {
        let out = engine.group_by(&b, &["k"], &aggs).unwrap();
        for (row, key) in [0i64, 1].into_iter().enumerate() {
            let kept: Vec<i64> = (0..rows)
                .filter(|&i| keys[i as usize] == key)
                .filter_map(|i| ints[i as usize])
                .collect();
            let n = kept.len() as i64;
            let mean = kept.iter().sum::<i64>() as f64 / n as f64;
            let filtered = (0..rows)
                .filter(|&i| {
                    keys[i as usize] == key
                        && (key == 0 || ints[i as usize].is_some_and(|v| v > 10))
                })
                .count() as i64;
            let int = |c: usize| out.column(c).as_primitive::<Int64Type>().value(row);
            let float = |c: usize| out.column(c).as_primitive::<Float64Type>().value(row);
            assert_eq!(int(1), n, "count(i), key {key}");
            assert_eq!(float(2), mean, "avg(i), key {key}");
            assert_eq!(float(3), mean, "avg(f), key {key}");
            assert_eq!(int(4), filtered, "count(*) FILTER, key {key}");
        }
    }
}

/// Which groups have a `min`/`max` is known without a pass of its own until the first
/// chunk that drops a row; from then on it is tracked per group. Chunks of 4 rows (one
/// thread): values kept in full for 12 rows, then nulls, a group (1) whose values all come
/// before them, a group (2) that appears only after them with no value, another (3) that
/// appears after them with values, a FILTER that drops every row of group 0, and no rows
/// at all; against the answers written out.
#[test]
fn groups_with_a_min_or_max_carry_across_chunks() {
    let rows = 28i64;
    let keys: Vec<i64> = (0..rows)
        .map(|i| if i < 12 { i % 2 } else { i % 4 })
        .collect();
    let ints: Vec<Option<i64>> = (0..rows)
        .map(|i| match i {
            0..12 => Some(i),
            _ if i % 4 == 1 || i % 4 == 2 => None,
            _ => Some(100 - i),
        })
        .collect();
    let floats: Vec<Option<f64>> = ints.iter().map(|v| v.map(|v| -(v as f64))).collect();
    let b = keys_ints_floats(&keys, &ints, floats);
    let aggs = [
        Agg::min(col("i")),
        Agg::max(col("i")),
        Agg::max(col("f")),
        Agg::min(col("i")).filter(col("k").not_eq(lit(0i64))),
    ];
    // One thread of one row at least: chunks of 4 rows.
    let chunked = cpu_with_threads(1, Some(1));
    for engine in [common::cpu(), chunked] {
        let out = engine.group_by(&b, &["k"], &aggs).unwrap();
        let got_keys: Vec<i64> = out.column(0).as_primitive::<Int64Type>().values().to_vec();
        assert_eq!(got_keys, [0, 1, 2, 3]);
        for (row, &key) in got_keys.iter().enumerate() {
            let values = |keep: &dyn Fn(i64) -> bool| -> Vec<i64> {
                (0..rows as usize)
                    .filter(|&i| keys[i] == key && keep(key))
                    .filter_map(|i| ints[i])
                    .collect()
            };
            let all = values(&|_| true);
            let filtered = values(&|k| k != 0);
            let int = |c: usize| {
                let a = out.column(c).as_primitive::<Int64Type>();
                a.is_valid(row).then(|| a.value(row))
            };
            let float = out.column(3).as_primitive::<Float64Type>();
            assert_eq!(int(1), all.iter().copied().min(), "min(i), key {key}");
            assert_eq!(int(2), all.iter().copied().max(), "max(i), key {key}");
            assert_eq!(
                float.is_valid(row).then(|| float.value(row)),
                all.iter().map(|&v| -(v as f64)).reduce(f64::max),
                "max(f), key {key}"
            );
            assert_eq!(
                int(4),
                filtered.iter().copied().min(),
                "min(i) FILTER, key {key}"
            );
        }
        assert!(out.column(1).is_null(2) && out.column(4).is_null(0));
        assert!(out.column(1).is_valid(1) && out.column(1).is_valid(3));
        // No rows, no keys: one group, no value.
        let none = engine.group_by(&b.slice(0, 0), &[], &aggs).unwrap();
        assert_eq!(none.num_rows(), 1);
        assert!((0..4).all(|c| none.column(c).is_null(0)));
    }
}

#[test]
fn many_groups_on_threads_give_one_threads_bits() {
    // Many groups (one in about three rows) on 2 to 5 threads of few rows each: the rows
    // are split by a hash of their key, each thread groups its own keys, and the groups
    // are interleaved by first row. Float sums of values whose scale differs from group
    // to group (so that each thread's sums start at a scale of their own), with and
    // without spilled values (1e300, NaN), means, variances, min/max of strings,
    // count(DISTINCT), filters, and null keys.
    let n = 6_000usize;
    let id =
        Int64Array::from_iter((0..n).map(|i| (i % 101 != 0).then_some((i * 7) as i64 % 2_003)));
    let name = StringArray::from_iter(
        (0..n).map(|i| (i % 89 != 0).then(|| format!("name-{}", (i * 13) % 4_001))),
    );
    let scale = |i: usize| 2f64.powi((i % 9) as i32 - 4);
    let x = Float64Array::from_iter_values((0..n).map(|i| (i % 37) as f64 * 0.375 * scale(i)));
    let wild = Float64Array::from_iter_values((0..n).map(|i| match i % 211 {
        0 => 1e300,
        1 => f64::NAN,
        _ => (i % 23) as f64 * 1.5e-3 * scale(i),
    }));
    // Keys over the whole u64 range with nulls: more codes than a u64 word holds, so they
    // are numbered by their row format (each thread numbering only its own rows).
    let wide = UInt64Array::from_iter((0..n).map(|i| match i % 97 {
        0 => None,
        5 => Some(u64::MAX),
        _ => Some(((i * 7) as u64 % 2_003).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
    }));
    let b = batch(vec![
        ("id", Arc::new(id) as _),
        ("name", Arc::new(name) as _),
        ("x", Arc::new(x) as _),
        ("wild", Arc::new(wild) as _),
        ("wide", Arc::new(wide) as _),
    ]);
    let aggs = [
        Agg::sum(col("x")),
        Agg::mean(col("x")),
        Agg::sum(col("wild")),
        Agg::var_samp(col("x")),
        Agg::max(col("name")),
        Agg::min(col("x")),
        Agg::count_distinct(col("name")),
        Agg::count_star(),
        Agg::sum(col("x")).filter(col("x").gt(lit(3.0))),
    ];
    for keys in [
        &["id"][..],
        &["id", "name"][..],
        &["name"][..],
        &["wide"][..],
    ] {
        let one = cpu_with_threads(1, Some(1))
            .group_by(&b, keys, &aggs)
            .unwrap();
        assert!(one.num_rows() > n / 4, "{keys:?}: many groups");
        for threads in 2..=5 {
            let got = cpu_with_threads(threads, Some(16))
                .group_by(&b, keys, &aggs)
                .unwrap();
            assert_eq!(got, one, "{keys:?} on {threads} threads");
        }
    }
}
