//! Decimal128 edge cases, each named for what it pins, on the CPU and on every GPU adapter.

use crate::common;

use std::sync::Arc;

use arrow::array::*;
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use arrow_wgpu::{
    col, lit, Agg, Backend, Engine, EngineOptions, Error, Keep, RanOn, ScalarValue, SortKey,
};

fn decimals(values: Vec<Option<i128>>, p: u8, s: i8) -> ArrayRef {
    Arc::new(
        Decimal128Array::from(values)
            .with_precision_and_scale(p, s)
            .unwrap(),
    )
}

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    RecordBatch::try_from_iter(columns).unwrap()
}

/// Every engine: the CPU, then each GPU adapter (also in 4 KiB chunks).
fn engines() -> Vec<(String, Engine)> {
    let mut out = vec![("cpu".to_string(), common::cpu())];
    out.extend(common::gpu_engines_and_small_chunks(4096));
    out
}

#[test]
fn sums_beyond_64_bits_are_exact() {
    // 3000 values of 10^18 - 1 (18 digits) sum to about 3e21, far beyond i64; as columns
    // (64-bit values, a 96-bit sum on the GPU) and as an expression (128-bit values).
    let max = 10i128.pow(18) - 1;
    let rows = 3000;
    let b = batch(vec![
        (
            "k",
            Arc::new(Int32Array::from_iter_values((0..rows).map(|i| i % 3))) as _,
        ),
        ("a", decimals(vec![Some(max); rows as usize], 18, 2)),
        ("n", decimals(vec![Some(-max); rows as usize], 18, 2)),
    ]);
    let aggs = [
        Agg::sum(col("a")),
        Agg::sum(col("a") + lit(0)),
        Agg::sum(col("n")),
        Agg::sum(col("a") * lit(ScalarValue::Decimal128(3, 2, 0))),
        Agg::mean(col("a")),
    ];
    for (name, engine) in engines() {
        let out = engine.group_by(&b, &["k"], &aggs).unwrap();
        let want = 1000 * max;
        let sums = out
            .column(1)
            .as_primitive::<arrow::datatypes::Decimal128Type>();
        assert_eq!(sums.data_type(), &DataType::Decimal128(38, 2), "{name}");
        assert_eq!(sums.values().to_vec(), vec![want; 3], "{name}");
        let expr = out
            .column(2)
            .as_primitive::<arrow::datatypes::Decimal128Type>();
        assert_eq!(expr.values().to_vec(), vec![want; 3], "{name}");
        let negative = out
            .column(3)
            .as_primitive::<arrow::datatypes::Decimal128Type>();
        assert_eq!(negative.values().to_vec(), vec![-want; 3], "{name}");
        let tripled = out
            .column(4)
            .as_primitive::<arrow::datatypes::Decimal128Type>();
        assert_eq!(tripled.values().to_vec(), vec![3 * want; 3], "{name}");
        // The mean of equal values is the value, at four more decimal places.
        let mean = out
            .column(5)
            .as_primitive::<arrow::datatypes::Decimal128Type>();
        assert_eq!(mean.data_type(), &DataType::Decimal128(22, 6), "{name}");
        assert_eq!(mean.values().to_vec(), vec![max * 10_000; 3], "{name}");
    }
}

#[test]
fn sums_beyond_38_digits_are_an_error_naming_the_aggregate() {
    // Squares of 10^18 - 1 at scale 4: Decimal128(37, 8) values of 10^36 - 2*10^18 + 1.
    // 100 of them sum to 10^38 - 2*10^20 + 100, inside 38 digits; 101 exceed 38 digits
    // but not 128 bits; 200 exceed 128 bits. On the GPU the squares are 128-bit values
    // summed in 160 bits.
    let max = 10i128.pow(18) - 1;
    let square = max * max;
    let squares = |n: usize| batch(vec![("a", decimals(vec![Some(max); n], 18, 4))]);
    let sum = [Agg::sum(col("a") * col("a"))];
    for (name, engine) in engines() {
        let out = engine.group_by(&squares(100), &[], &sum).unwrap();
        let got = out
            .column(0)
            .as_primitive::<arrow::datatypes::Decimal128Type>();
        assert_eq!(got.value(0), 100 * square, "{name}");
        for n in [101, 200] {
            let err = engine.group_by(&squares(n), &[], &sum).unwrap_err();
            assert!(
                matches!(&err, Error::ArithmeticOverflow(m) if m.contains("sum(") && m.contains("38 digits") || m.contains("128 bits")),
                "{name}, {n} squares: {err}"
            );
            assert!(err.to_string().contains("sum("), "{name}: {err}");
            // Streamed in pieces: the same error at the end.
            let b = squares(n);
            let mut acc = engine
                .group_by_accumulator(b.schema(), &[], &sum, Default::default())
                .unwrap();
            for at in (0..n).step_by(30) {
                acc.push(&b.slice(at, 30.min(n - at))).unwrap();
            }
            assert!(
                matches!(acc.finish(), Err(Error::ArithmeticOverflow(_))),
                "{name}: streamed {n}"
            );
        }
    }
}

#[test]
fn decimal38_sums_are_exact_in_any_order_and_overflow_is_an_error() {
    // Decimal128(38, 2) runs on the CPU (over 18 digits): max + max - max fits, in every
    // order, although two of the values alone overflow 128 bits; max + max does not fit.
    let max = 10i128.pow(38) - 1;
    let cpu = common::cpu();
    let orders = [
        vec![max, max, -max],
        vec![max, -max, max],
        vec![-max, max, max],
    ];
    for values in orders {
        let b = batch(vec![(
            "a",
            decimals(values.iter().map(|v| Some(*v)).collect(), 38, 2),
        )]);
        for engine in [cpu.clone(), threaded_cpu()] {
            let out = engine.group_by(&b, &[], &[Agg::sum(col("a"))]).unwrap();
            let got = out
                .column(0)
                .as_primitive::<arrow::datatypes::Decimal128Type>();
            assert_eq!(got.value(0), max, "{values:?}");
        }
    }
    let b = batch(vec![("a", decimals(vec![Some(max), Some(max)], 38, 2))]);
    let err = cpu.group_by(&b, &[], &[Agg::sum(col("a"))]).unwrap_err();
    assert!(
        matches!(&err, Error::ArithmeticOverflow(m) if m.contains("sum(a)")),
        "{err}"
    );
    // The sum alone, not only with a mean beside it, and the mean of a sum beyond 128
    // bits too.
    let err = cpu.group_by(&b, &[], &[Agg::mean(col("a"))]).unwrap_err();
    assert!(
        matches!(&err, Error::ArithmeticOverflow(m) if m.contains("avg(a)") || m.contains("mean(a)")),
        "{err}"
    );
}

/// The CPU on 3 threads of one row each: partial sums merged.
fn threaded_cpu() -> Engine {
    Engine::with_options(EngineOptions {
        backend: Backend::Cpu,
        cpu_threads: Some(3),
        cpu_rows_per_thread: Some(1),
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn overflow_beyond_128_bits_is_an_error_on_every_backend() {
    // (10^17)^3 = 10^51 > 2^127: arrow's checked decimal multiply errors; so must the GPU.
    let big = 10i128.pow(17);
    let b = batch(vec![
        ("a", decimals(vec![Some(1), Some(big)], 18, 0)),
        ("b", decimals(vec![Some(1), Some(big)], 18, 0)),
        ("c", decimals(vec![Some(1), Some(big)], 18, 0)),
    ]);
    let product = col("a") * col("b") * col("c");
    for (name, engine) in engines() {
        let err = engine.filter(&b, &product.clone().gt(lit(0))).unwrap_err();
        assert!(matches!(err, Error::ArithmeticOverflow(_)), "{name}: {err}");
        let err = engine
            .group_by(&b, &[], &[Agg::sum(product.clone())])
            .unwrap_err();
        assert!(matches!(err, Error::ArithmeticOverflow(_)), "{name}: {err}");
        // A null operand is never checked: the overflow needs both sides valid.
        let with_null = batch(vec![
            ("a", decimals(vec![Some(1), None], 18, 0)),
            ("b", decimals(vec![Some(1), Some(big)], 18, 0)),
            ("c", decimals(vec![Some(1), Some(big)], 18, 0)),
        ]);
        let out = engine
            .filter(&with_null, &product.clone().gt(lit(0)))
            .unwrap();
        assert_eq!(out.num_rows(), 1, "{name}");
    }
}

#[test]
fn mean_of_decimals_truncates_toward_zero() {
    // DataFusion's decimal average: the sum at four more decimal places over the count,
    // truncated: (1 + 1 + 2) / 3 = 1.3333, and -1.3333 for the negatives.
    let b = batch(vec![
        (
            "k",
            Arc::new(Int32Array::from(vec![0, 0, 0, 1, 1, 1, 2])) as _,
        ),
        (
            "a",
            decimals(
                vec![
                    Some(1),
                    Some(1),
                    Some(2),
                    Some(-1),
                    Some(-1),
                    Some(-2),
                    None,
                ],
                5,
                0,
            ),
        ),
    ]);
    for (name, engine) in engines() {
        let out = engine.group_by(&b, &["k"], &[Agg::mean(col("a"))]).unwrap();
        let want = Decimal128Array::from(vec![Some(13_333), Some(-13_333), None])
            .with_precision_and_scale(9, 4)
            .unwrap();
        assert_eq!(out.column(1).as_ref(), &want, "{name}");
    }
}

#[test]
fn scales_are_aligned_in_comparisons_and_arithmetic() {
    // 1.5 (scale 1) = 1.50 (scale 2); 1.5 + 0.25 = 1.75 at scale 2; 1.5 * 0.25 = 0.375 at
    // scale 3; an integer column meets decimals as scale 0.
    let b = batch(vec![
        ("x", decimals(vec![Some(15), Some(20), None], 4, 1)),
        ("y", decimals(vec![Some(150), Some(25), Some(1)], 6, 2)),
        ("i", Arc::new(Int64Array::from(vec![2, 2, 2])) as _),
    ]);
    let cases = [
        (col("x").eq(col("y")), vec![0]),
        (
            (col("x") + col("y")).eq(lit(ScalarValue::Decimal128(300, 5, 2))),
            vec![0],
        ),
        (
            (col("x") * col("y")).eq(lit(ScalarValue::Decimal128(500, 9, 3))),
            vec![1],
        ),
        (
            (col("x") * col("i")).eq(lit(ScalarValue::Decimal128(30, 5, 1))),
            vec![0],
        ),
        (col("y").gt(lit(1)), vec![0]),
        (col("x").between(lit(1.4), lit(1.6)), vec![0]),
    ];
    for (name, engine) in engines() {
        for (p, rows) in &cases {
            let out = engine.filter(&b, p).unwrap();
            let want = arrow::compute::take_record_batch(
                &b,
                &UInt32Array::from_iter_values(rows.iter().map(|r| *r as u32)),
            )
            .unwrap();
            assert_eq!(out, want, "{name}: {p}");
        }
    }
}

#[test]
fn wide_decimals_run_on_the_cpu_under_auto_and_error_under_gpu() {
    // Precision 38 doesn't fit the GPU's 64-bit decimals.
    let b = batch(vec![(
        "w",
        decimals(vec![Some(10i128.pow(30)), Some(1), None], 38, 2),
    )]);
    let p = col("w").gt(lit(ScalarValue::Decimal128(5, 38, 2)));
    let want = common::cpu().filter(&b, &p).unwrap();
    for (name, gpu) in common::gpu_engines(None) {
        let err = gpu.filter(&b, &p).unwrap_err();
        assert!(
            matches!(
                err,
                Error::UnsupportedType { .. } | Error::UnsupportedOnGpu { .. }
            ),
            "{name}: {err}"
        );
        let auto = Engine::with_options(EngineOptions {
            backend: Backend::Auto,
            wgpu_backends: gpu.adapter().unwrap().backend.into(),
            adapter_name: Some(gpu.adapter().unwrap().name.clone()),
            ..Default::default()
        })
        .unwrap();
        let (out, profile) = auto.profiled(|e| e.filter(&b, &p)).unwrap();
        assert_eq!(out, want, "{name}");
        let step = &profile.steps[0];
        assert_eq!(step.ran_on, RanOn::Cpu, "{name}");
        assert!(step.fallback.is_some(), "{name}: the fall back is shown");
    }
}

#[test]
fn variance_of_decimals_is_that_of_their_float_values() {
    let values = vec![Some(12_345), Some(-99_999), None, Some(1), Some(77_777)];
    let b = batch(vec![
        ("d", decimals(values.clone(), 7, 3)),
        (
            "f",
            Arc::new(Float64Array::from_iter(
                values.iter().map(|v| v.map(|v| v as f64 / 1000.0)),
            )) as _,
        ),
    ]);
    let want = common::cpu()
        .group_by(
            &b,
            &[],
            &[Agg::var_samp(col("f")), Agg::stddev_pop(col("f"))],
        )
        .unwrap();
    for (name, engine) in engines() {
        let out = engine
            .group_by(
                &b,
                &[],
                &[Agg::var_samp(col("d")), Agg::stddev_pop(col("d"))],
            )
            .unwrap();
        assert_eq!(out.columns(), want.columns(), "{name}");
    }
}

#[test]
fn decimal_keys_group_sort_and_distinct_by_value() {
    let b = batch(vec![
        (
            "d",
            decimals(
                vec![Some(5), Some(-5), None, Some(5), Some(0), None, Some(-999)],
                3,
                2,
            ),
        ),
        ("v", Arc::new(Int64Array::from_iter_values(0..7)) as _),
    ]);
    let cpu = common::cpu();
    let grouped = cpu
        .group_by(
            &b,
            &["d"],
            &[Agg::count_star(), Agg::min(col("d")), Agg::sum(col("v"))],
        )
        .unwrap();
    assert_eq!(grouped.num_rows(), 5);
    let sorted = cpu.sort(&b, &[SortKey::asc("d")], None).unwrap();
    let distinct = cpu.distinct(&b, &["d"], Keep::Last).unwrap();
    for (name, engine) in engines() {
        let out = engine
            .group_by(
                &b,
                &["d"],
                &[Agg::count_star(), Agg::min(col("d")), Agg::sum(col("v"))],
            )
            .unwrap();
        assert_eq!(out, grouped, "{name}");
        assert_eq!(
            engine.sort(&b, &[SortKey::asc("d")], None).unwrap(),
            sorted,
            "{name}"
        );
        assert_eq!(
            engine.distinct(&b, &["d"], Keep::Last).unwrap(),
            distinct,
            "{name}"
        );
    }
}

#[test]
fn literals_adopt_the_column_scale_or_widen() {
    // 0.05 as a literal of scale 2 next to a scale-2 column; 0.055 (scale 3) widens the
    // comparison to scale 3 instead of rounding.
    let b = batch(vec![("d", decimals(vec![Some(5), Some(6)], 15, 2))]);
    for (name, engine) in engines() {
        let eq = engine
            .filter(&b, &col("d").eq(lit(ScalarValue::Decimal128(5, 3, 2))))
            .unwrap();
        assert_eq!(eq.num_rows(), 1, "{name}");
        let gt = engine
            .filter(&b, &col("d").gt(lit(ScalarValue::Decimal128(55, 3, 3))))
            .unwrap();
        assert_eq!(gt.num_rows(), 1, "{name}");
        let none = engine
            .filter(&b, &col("d").eq(lit(ScalarValue::Decimal128(55, 3, 3))))
            .unwrap();
        assert_eq!(none.num_rows(), 0, "{name}");
    }
}
