//! Group-by on the GPU, edge cases named for what they pin: each compared with literal
//! answers or with the CPU path, on every adapter found.

use crate::common;

use std::sync::Arc;

use arrow::array::*;
use arrow::record_batch::RecordBatch;
use arrow_wgpu::{col, lit, Agg, EngineOptions, Error, RanOn};

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    RecordBatch::try_from_iter(columns).unwrap()
}

fn same_as_cpu(b: &RecordBatch, keys: &[&str], aggs: &[Agg]) {
    let want = common::cpu().group_by(b, keys, aggs).unwrap();
    for (name, gpu) in common::gpu_engines(None) {
        let got = gpu.group_by(b, keys, aggs).unwrap();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn integer_sums_wrap_and_means_are_exact() {
    let b = batch(vec![
        (
            "i",
            Arc::new(Int64Array::from(vec![i64::MAX, 1, i64::MIN, i64::MAX])) as _,
        ),
        (
            "u",
            Arc::new(UInt64Array::from(vec![u64::MAX, 2, 0, u64::MAX])) as _,
        ),
        (
            "s",
            Arc::new(Int8Array::from(vec![127, 127, -128, 127])) as _,
        ),
    ]);
    let aggs = [
        Agg::sum(col("i")),
        Agg::sum(col("u")),
        Agg::sum(col("s")),
        Agg::mean(col("i")),
        Agg::mean(col("u")),
    ];
    for (name, gpu) in common::gpu_engines(None) {
        let out = gpu.group_by(&b, &[], &aggs).unwrap();
        // i64::MAX + 1 + i64::MIN + i64::MAX wraps to i64::MAX.
        assert_eq!(
            out.column(0).as_ref(),
            &Int64Array::from(vec![i64::MAX]),
            "{name}"
        );
        // 2 * u64::MAX + 2 = 2^65 wraps to 0.
        assert_eq!(
            out.column(1).as_ref(),
            &UInt64Array::from(vec![0]),
            "{name}"
        );
        assert_eq!(
            out.column(2).as_ref(),
            &Int64Array::from(vec![253]),
            "{name}"
        );
        // The means come from the exact (96-bit) sums, not the wrapped ones.
        let exact_i = (i64::MAX as f64 * 2.0 + 1.0 + i64::MIN as f64) / 4.0;
        assert_eq!(
            out.column(3).as_ref(),
            &Float64Array::from(vec![exact_i]),
            "{name}"
        );
        let exact_u = (u64::MAX as f64 * 2.0 + 2.0) / 4.0;
        assert_eq!(
            out.column(4).as_ref(),
            &Float64Array::from(vec![exact_u]),
            "{name}"
        );
    }
    same_as_cpu(&b, &[], &aggs);
}

#[test]
fn empty_input_gives_no_groups_or_one_empty_global_group() {
    let b = batch(vec![
        ("k", Arc::new(Int32Array::from(Vec::<i32>::new())) as _),
        ("x", Arc::new(Int64Array::from(Vec::<i64>::new())) as _),
        ("f", Arc::new(Float32Array::from(Vec::<f32>::new())) as _),
    ]);
    let aggs = [
        Agg::count_star(),
        Agg::count(col("x")),
        Agg::sum(col("x")),
        Agg::min(col("x")),
        Agg::mean(col("x")),
        Agg::sum(col("f")),
        Agg::mean(col("f")),
        Agg::var_samp(col("f")),
        Agg::stddev_pop(col("f")),
    ];
    same_as_cpu(&b, &["k"], &aggs);
    same_as_cpu(&b, &[], &aggs);
    for (name, gpu) in common::gpu_engines(None) {
        let global = gpu.group_by(&b, &[], &aggs).unwrap();
        assert_eq!(global.num_rows(), 1, "{name}");
        assert_eq!(
            global.column(0).as_ref(),
            &Int64Array::from(vec![0]),
            "{name}"
        );
        assert!(global.column(2).is_null(0), "{name}");
    }
}

#[test]
fn all_null_groups_and_the_null_key_group() {
    let b = batch(vec![
        (
            "k",
            Arc::new(Int32Array::from(vec![None, None, Some(1), None])) as _,
        ),
        (
            "x",
            Arc::new(Int64Array::from(vec![None, None, Some(5), None])) as _,
        ),
    ]);
    let aggs = [
        Agg::count_star(),
        Agg::count(col("x")),
        Agg::sum(col("x")),
        Agg::max(col("x")),
        Agg::mean(col("x")),
    ];
    same_as_cpu(&b, &["k"], &aggs);
    for (name, gpu) in common::gpu_engines(None) {
        let out = gpu.group_by(&b, &["k"], &aggs).unwrap();
        assert_eq!(
            out.column(0).as_ref(),
            &Int32Array::from(vec![None, Some(1)]),
            "{name}"
        );
        assert_eq!(
            out.column(1).as_ref(),
            &Int64Array::from(vec![3, 1]),
            "{name}"
        );
        assert_eq!(
            out.column(3).as_ref(),
            &Int64Array::from(vec![None, Some(5)]),
            "{name}"
        );
    }
}

#[test]
fn nan_and_signed_zero_keys_and_float_extremes() {
    let keys = vec![f64::NAN, 0.0, -0.0, f64::NAN, -f64::NAN, 0.0, f64::INFINITY];
    let values = vec![1.0, -0.0, 0.0, f64::NAN, -2.0, f64::NEG_INFINITY, 3.0];
    let b = batch(vec![
        ("k", Arc::new(Float64Array::from(keys)) as _),
        (
            "v",
            Arc::new(Float32Array::from(
                values.iter().map(|v| *v as f32).collect::<Vec<_>>(),
            )) as _,
        ),
        ("w", Arc::new(Float64Array::from(values)) as _),
    ]);
    let aggs = [
        Agg::count_star(),
        Agg::min(col("v")),
        Agg::max(col("v")),
        Agg::min(col("w")),
        Agg::max(col("w")),
    ];
    same_as_cpu(&b, &["k"], &aggs);
    for (name, gpu) in common::gpu_engines(None) {
        // NaN == NaN (same bits), -NaN apart, -0.0 apart from 0.0: five groups.
        assert_eq!(
            gpu.group_by(&b, &["k"], &aggs).unwrap().num_rows(),
            5,
            "{name}"
        );
    }
}

#[test]
fn many_groups_force_the_gpu_table_to_grow() {
    // 200,003 groups in 300,000 rows: more than the first table (sized from the input)
    // holds, so it is grown and rebuilt; every row must still be counted.
    let n = 300_000u32;
    let b = batch(vec![
        (
            "k",
            Arc::new(UInt32Array::from_iter_values((0..n).map(|i| i % 200_003))) as _,
        ),
        (
            "x",
            Arc::new(Int64Array::from_iter_values((0..n).map(|i| i as i64 - 7))) as _,
        ),
    ]);
    let aggs = [Agg::count_star(), Agg::sum(col("x")), Agg::min(col("x"))];
    same_as_cpu(&b, &["k"], &aggs);
    for (name, gpu) in common::gpu_engines(None) {
        let out = gpu.group_by(&b, &["k"], &aggs).unwrap();
        assert_eq!(out.num_rows(), 200_003, "{name}");
        let counts = out.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(counts.values().iter().sum::<i64>(), n as i64, "{name}");
    }
}

#[test]
fn three_keys_of_mixed_types_in_first_appearance_order() {
    let b = batch(vec![
        (
            "a",
            Arc::new(BooleanArray::from(vec![
                Some(true),
                None,
                Some(true),
                Some(false),
                Some(true),
            ])) as _,
        ),
        ("b", Arc::new(Int16Array::from(vec![1, 2, 1, 2, 1])) as _),
        (
            "t",
            Arc::new(TimestampNanosecondArray::from(vec![5, 5, 5, -1, 6]).with_timezone("UTC"))
                as _,
        ),
        ("x", Arc::new(UInt8Array::from(vec![1, 2, 3, 4, 5])) as _),
    ]);
    let aggs = [Agg::count_star(), Agg::sum(col("x")), Agg::max(col("t"))];
    same_as_cpu(&b, &["a", "b", "t"], &aggs);
    for (name, gpu) in common::gpu_engines(None) {
        let out = gpu.group_by(&b, &["a", "b", "t"], &aggs).unwrap();
        assert_eq!(
            out.column(4).as_ref(),
            &UInt64Array::from(vec![4, 2, 4, 5]),
            "{name}"
        );
    }
}

#[test]
fn more_than_one_chunk_merges_partial_aggregates_on_the_gpu() {
    // Chunks of 128 rows: every group spans many chunks, and a group first seen in a late
    // chunk keeps its place (first appearance across the whole batch).
    let n = 1000;
    let b = batch(vec![
        (
            "k",
            Arc::new(Int32Array::from_iter(
                (0..n).map(|i| (i % 13 != 5).then_some(i % 7 + (i / 900) * 100)),
            )) as _,
        ),
        ("x", Arc::new(Int32Array::from_iter_values(0..n)) as _),
        (
            "f",
            Arc::new(Float64Array::from_iter_values(
                (0..n).map(|i| (i as f64 * 0.37).sin() * 1e10),
            )) as _,
        ),
    ]);
    let aggs = [
        Agg::sum(col("x")),
        Agg::var_samp(col("x")),
        Agg::stddev_pop(col("f")),
        Agg::min(col("f")),
        Agg::max(col("x") * lit(-1)),
        Agg::count_star().filter(col("f").gt(lit(0.0))),
    ];
    let want = common::cpu().group_by(&b, &["k"], &aggs).unwrap();
    assert_eq!(want.num_rows(), 8 + 7);
    let gpus = common::gpu_engines_with(|o| EngineOptions {
        max_chunk_bytes: Some(512),
        ..o
    });
    for (name, gpu) in gpus {
        let (got, profile) = gpu.profiled(|e| e.group_by(&b, &["k"], &aggs)).unwrap();
        assert_eq!(got, want, "{name}");
        let step = profile
            .steps
            .iter()
            .find(|s| s.operation == "group_by")
            .unwrap();
        assert!(matches!(step.ran_on, RanOn::Gpu(_)), "{name}");
        // Resident, in the same chunks: the same groups.
        let resident = gpu.upload(&b).unwrap();
        assert!(resident.num_chunks() > 1);
        assert_eq!(resident.group_by(&["k"], &aggs).unwrap(), want, "{name}");
    }
}

#[test]
fn integer_variances_are_exact_beyond_64_bit_squares() {
    // Squares of these need up to 128 bits, and their sums more: the 160-bit sums of
    // squares hold them exactly.
    let i = [i64::MAX, i64::MIN, -3, i64::MAX - 1, 1 << 40, -(1 << 62)];
    let u = [u64::MAX, 0, u64::MAX - 7, 1 << 63, 12345, u64::MAX];
    let b = batch(vec![
        ("k", Arc::new(UInt8Array::from(vec![0, 1, 0, 1, 0, 0])) as _),
        ("i", Arc::new(Int64Array::from(i.to_vec())) as _),
        ("u", Arc::new(UInt64Array::from(u.to_vec())) as _),
        (
            "s",
            Arc::new(Int8Array::from(vec![-128, 127, 5, -5, 0, 1])) as _,
        ),
    ]);
    let aggs = [
        Agg::var_samp(col("i")),
        Agg::var_pop(col("u")),
        Agg::stddev_samp(col("u")),
        Agg::stddev_pop(col("s")),
        Agg::var_samp(col("s") * col("s")),
    ];
    same_as_cpu(&b, &["k"], &aggs);
    same_as_cpu(&b, &[], &aggs);
    // var_pop of {2^63, 0}... a literal check: group 1 of `u` is {0, 2^63}: (2^63/2)^2.
    let out = common::cpu().group_by(&b, &["k"], &aggs).unwrap();
    let var_u = out
        .column(2)
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap();
    assert_eq!(var_u.value(1), 2f64.powi(124));
}

#[test]
fn expressions_and_filters_run_on_the_gpu() {
    // TPC-H Q1's shape: sums of price * (1 - discount) * (1 + tax), filtered counts.
    let b = batch(vec![
        (
            "flag",
            Arc::new(UInt8Array::from(vec![0, 1, 0, 1, 0, 2])) as _,
        ),
        (
            "price",
            Arc::new(Float64Array::from(vec![
                Some(10.0),
                Some(20.0),
                None,
                Some(40.0),
                Some(50.0),
                Some(60.0),
            ])) as _,
        ),
        (
            "discount",
            Arc::new(Float64Array::from(vec![0.1, 0.0, 0.5, 0.25, 0.5, 0.0])) as _,
        ),
        (
            "tax",
            Arc::new(Float32Array::from(vec![0.5, 0.0, 0.0, 0.0, 1.0, 0.0])) as _,
        ),
        (
            "qty",
            Arc::new(Int16Array::from(vec![1, 2, 3, 4, 5, 6])) as _,
        ),
    ]);
    let revenue = col("price") * (lit(1.0) - col("discount"));
    let aggs = [
        Agg::sum(revenue.clone()),
        Agg::sum(revenue.clone() * (lit(1.0) + col("tax"))),
        Agg::mean(col("qty") * lit(2)),
        Agg::sum(col("qty")).filter(col("discount").gt(lit(0.2))),
        Agg::count_star().filter(col("price").gt(lit(15.0))),
        Agg::count(col("price")).filter(col("qty").lt(lit(5))),
        Agg::min(col("qty") - lit(10)),
        Agg::max(col("discount").gt(lit(0.2))),
    ];
    let want = common::cpu().group_by(&b, &["flag"], &aggs).unwrap();
    assert_eq!(
        want.column(1).as_ref(),
        &Float64Array::from(vec![Some(34.0), Some(50.0), Some(60.0)])
    );
    assert_eq!(
        want.column(2).as_ref(),
        &Float64Array::from(vec![Some(63.5), Some(50.0), Some(60.0)])
    );
    assert_eq!(
        want.column(4).as_ref(),
        &Int64Array::from(vec![Some(8), Some(4), None])
    );
    assert_eq!(want.column(5).as_ref(), &Int64Array::from(vec![1, 2, 1]));
    assert_eq!(want.column(7).as_ref(), &Int16Array::from(vec![-9, -8, -4]));
    for (name, gpu) in common::gpu_engines(None) {
        let (got, profile) = gpu.profiled(|e| e.group_by(&b, &["flag"], &aggs)).unwrap();
        assert_eq!(got, want, "{name}");
        assert!(matches!(profile.steps[0].ran_on, RanOn::Gpu(_)), "{name}");
        // A division by zero in a value is an error, as on the CPU.
        let err = gpu
            .group_by(
                &b,
                &["flag"],
                &[Agg::sum(col("qty") / (col("qty") - lit(3)))],
            )
            .unwrap_err();
        assert!(matches!(err, Error::DivideByZero), "{name}: {err}");
    }
}

#[test]
fn dictionary_keys_group_by_value_on_the_gpu() {
    // The dictionary repeats "a" (codes 0 and 2) and holds a null value (code 3): rows
    // with codes 0 and 2 are one group, and code 3 joins the null keys.
    let keys = Int8Array::from(vec![
        Some(0),
        Some(1),
        Some(2),
        Some(3),
        None,
        Some(0),
        Some(1),
    ]);
    let values = StringArray::from(vec![Some("a"), Some("b"), Some("a"), None]);
    let dict =
        DictionaryArray::<arrow::datatypes::Int8Type>::try_new(keys, Arc::new(values)).unwrap();
    let b = batch(vec![
        ("d", Arc::new(dict) as _),
        (
            "x",
            Arc::new(Int32Array::from(vec![1, 2, 3, 4, 5, 6, 7])) as _,
        ),
    ]);
    let aggs = [Agg::sum(col("x")), Agg::count_star()];
    let want = common::cpu().group_by(&b, &["d"], &aggs).unwrap();
    assert_eq!(want.column(1).as_ref(), &Int64Array::from(vec![10, 9, 9]));
    for (name, gpu) in common::gpu_engines(None) {
        let (got, profile) = gpu.profiled(|e| e.group_by(&b, &["d"], &aggs)).unwrap();
        assert_eq!(got, want, "{name}");
        assert!(matches!(profile.steps[0].ran_on, RanOn::Gpu(_)), "{name}");
    }
}

#[test]
fn float_sums_and_variances_of_many_random_values_are_bit_exact() {
    // 20,000 values of random sign and mantissa: `x` spread over 80 binades, `z` within two
    // (where every square's low bits reach the rounded variance), `y` as f32: every carry
    // path of the GPU's exact digits (sums and 106-bit squares) is taken many times.
    let mut s = 0x2545f4914f6cdd1du64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let n = 20_000;
    let mut random = |spread: u64| -> f64 {
        let r = next();
        let exp = (r % spread) as i32 - (spread / 2) as i32;
        let sign = if r & (1 << 40) != 0 { -1.0 } else { 1.0 };
        f64::from_bits(next() >> 12 | 0x3ff0_0000_0000_0000) * 2f64.powi(exp) * sign
    };
    let x: Vec<f64> = (0..n).map(|_| random(80)).collect();
    let z: Vec<f64> = (0..n).map(|_| random(2)).collect();
    let y: Vec<f32> = x.iter().map(|v| *v as f32).collect();
    let k: Vec<u8> = (0..n).map(|i| (i % 3) as u8).collect();
    let b = batch(vec![
        ("k", Arc::new(UInt8Array::from(k)) as _),
        ("x", Arc::new(Float64Array::from(x)) as _),
        ("y", Arc::new(Float32Array::from(y)) as _),
        ("z", Arc::new(Float64Array::from(z)) as _),
    ]);
    let aggs = [
        Agg::sum(col("x")),
        Agg::mean(col("x")),
        Agg::var_samp(col("x")),
        Agg::stddev_pop(col("x")),
        Agg::sum(col("y")),
        Agg::var_pop(col("y")),
        Agg::sum(col("z")),
        Agg::var_pop(col("z")),
        Agg::stddev_samp(col("z")),
    ];
    same_as_cpu(&b, &["k"], &aggs);
    same_as_cpu(&b, &[], &aggs);
}

#[test]
fn few_groups_pre_aggregate_in_workgroup_memory() {
    // Few groups over many rows: each workgroup walks thousands of rows, adding into its
    // own words (carries among them included: the values are near the i64 limits), then
    // adds those into the global state once. 256 groups still pre-aggregate; 257 don't:
    // both sides of the switch must give the CPU's answer.
    let n = 300_000usize;
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let big: Vec<i64> = (0..n)
        .map(|_| {
            let r = next();
            if r & 1 == 0 {
                i64::MAX - (r >> 40) as i64
            } else {
                i64::MIN + (r >> 40) as i64
            }
        })
        .collect();
    let f: Vec<f64> = (0..n)
        .map(|_| (next() >> 11) as f64 * 2f64.powi(-40))
        .collect();
    for groups in [3usize, 256, 257] {
        let b = batch(vec![
            (
                "k",
                Arc::new(UInt16Array::from_iter_values(
                    (0..n).map(|i| (i * 7919 % groups) as u16),
                )) as _,
            ),
            ("i", Arc::new(Int64Array::from(big.clone())) as _),
            ("f", Arc::new(Float64Array::from(f.clone())) as _),
        ]);
        let aggs = [
            Agg::count_star(),
            Agg::sum(col("i")),
            Agg::mean(col("i")),
            Agg::var_pop(col("i")),
            Agg::sum(col("f")),
            Agg::stddev_samp(col("f")),
        ];
        same_as_cpu(&b, &["k"], &aggs);
        if groups == 3 {
            same_as_cpu(&b, &[], &aggs);
        }
    }
}

#[test]
fn count_distinct_counts_values_by_row_format() {
    // NaN equals NaN (the same bits), -0.0 differs from 0.0, nulls don't count, and the
    // filter drops rows before counting.
    let b = batch(vec![
        (
            "k",
            Arc::new(Int32Array::from(vec![1, 1, 1, 1, 1, 1, 2, 2, 2])) as _,
        ),
        (
            "x",
            Arc::new(Float64Array::from(vec![
                Some(f64::NAN),
                Some(f64::NAN),
                Some(-0.0),
                Some(0.0),
                None,
                Some(1.0),
                Some(5.0),
                Some(5.0),
                None,
            ])) as _,
        ),
        (
            "w",
            Arc::new(Int8Array::from(vec![1, 2, 3, 4, 5, 6, 7, 8, 9])) as _,
        ),
    ]);
    let aggs = [
        Agg::count_distinct(col("x")),
        Agg::count_distinct(col("x")).filter(col("w").gt(lit(2))),
        Agg::count_distinct(col("w") - col("w")),
    ];
    let want = common::cpu().group_by(&b, &["k"], &aggs).unwrap();
    assert_eq!(want.column(1).as_ref(), &Int64Array::from(vec![4, 1]));
    assert_eq!(want.column(2).as_ref(), &Int64Array::from(vec![3, 1]));
    assert_eq!(want.column(3).as_ref(), &Int64Array::from(vec![1, 1]));
    same_as_cpu(&b, &["k"], &aggs);
    same_as_cpu(&b, &[], &aggs);
}

#[test]
fn few_groups_go_in_one_pass_and_an_overflow_takes_the_passes() {
    // Integer aggregates of few groups run in one pass: a small table, read back whole with
    // the keys (one host sync for a batch on the GPU). Its slots are set by the record a
    // group needs: with count(*) and sum(i) (seven words) a chunk of 40,000 rows gets
    // 16,384 slots, which 12,288 groups fill to the limit; 12,289 overflow it and the chunk
    // goes through the multi-pass grouping. With nine aggregates (33 words) it gets 4,096.
    // At 300,000 rows each invocation walks more than one row. (The workgroup tables in
    // front of the global one are off on software drivers, as every adapter here is.)
    // Every case against the CPU.
    let mut s = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let all = [
        Agg::count_star(),
        Agg::count(col("i")),
        Agg::sum(col("i")),
        Agg::mean(col("i")),
        Agg::var_pop(col("i")),
        Agg::sum(col("h")),
        Agg::stddev_samp(col("h")),
        Agg::sum(col("h") * lit(3)).filter(col("h").gt(lit(0i16))),
        Agg::count_star().filter(col("h").lt(lit(-100i16))),
    ];
    let two = [Agg::count_star(), Agg::sum(col("i"))];
    let cases: [(usize, usize, &[Agg], bool); 6] = [
        (40_000, 1, &all, true),
        (40_000, 100, &all, true),
        (40_000, 3_000, &all, true),
        (40_000, 12_288, &two, true),
        (40_000, 12_289, &two, false),
        (300_000, 7, &two, true),
    ];
    for (n, groups, aggs, one_pass) in cases {
        let key = |i: usize| (i * 7919 % groups) as u32;
        let b = batch(vec![
            (
                "k",
                Arc::new(UInt32Array::from_iter_values((0..n).map(key))) as _,
            ),
            (
                "s",
                Arc::new(StringArray::from_iter(
                    (0..n).map(|i| (i % 5 != 1).then(|| format!("key {}", key(i) % 97))),
                )) as _,
            ),
            (
                "i",
                Arc::new(Int64Array::from_iter((0..n).map(|i| {
                    let r = next();
                    (i % 11 != 3).then(|| {
                        if r & 1 == 0 {
                            i64::MAX - (r >> 40) as i64
                        } else {
                            i64::MIN + (r >> 40) as i64
                        }
                    })
                }))) as _,
            ),
            (
                "h",
                Arc::new(Int16Array::from_iter_values((0..n).map(|_| next() as i16))) as _,
            ),
        ]);
        same_as_cpu(&b, &["k"], aggs);
        if groups == 100 {
            same_as_cpu(&b, &["s"], aggs);
            same_as_cpu(&b, &["s", "k"], aggs);
            same_as_cpu(&b, &[], aggs);
        }
        // Resident: one wait for the table and the keys, unless the table overflowed.
        let want = common::cpu().group_by(&b, &["k"], aggs).unwrap();
        for (name, gpu) in common::gpu_engines(None) {
            let resident = gpu.upload(&b).unwrap();
            let (got, profile) = gpu.profiled(|_| resident.group_by(&["k"], aggs)).unwrap();
            assert_eq!(got, want, "{name}, {groups} groups");
            let syncs = profile.traffic().host_syncs;
            assert_eq!(syncs == 1, one_pass, "{name}, {groups} groups: {profile}");
        }
    }
}

/// `min` and `max` of values of at most 32 bits (Boolean, Int8..Int32, UInt8..UInt32,
/// Date32, Float32 with NaN of both signs, -0.0, 0.0 and infinities), with nulls and a
/// group whose values are all null, go in the one-pass kernel's single read (their largest
/// order word by one atomic max, decoded on the host), beside counts and integer sums;
/// `min` of an Int64 still takes the passes. Streamed through a `GroupByAccumulator`, they
/// are kept in its table across batches. Every case against the CPU.
#[test]
fn min_and_max_of_one_word_values_go_in_one_pass() {
    let n = 5_000usize;
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mut r: Vec<u64> = (0..n * 9).map(|_| next()).collect();
    let mut take = move || r.pop().unwrap();
    // Group 7's values are all null; every eleventh other row is null.
    let key = |i: usize| (i * 7919 % 50) as u32;
    let valid = |i: usize| key(i) != 7 && i % 11 != 3;
    let floats = [
        f32::NAN,
        -f32::NAN,
        -0.0,
        0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        1.5,
    ];
    let mut cols: Vec<(&str, ArrayRef)> = vec![(
        "k",
        Arc::new(UInt32Array::from_iter_values((0..n).map(key))) as ArrayRef,
    )];
    let bits: Vec<u64> = (0..n).map(|_| take()).collect();
    let at = |i: usize| bits[i];
    cols.push((
        "b",
        Arc::new(BooleanArray::from_iter(
            (0..n).map(|i| valid(i).then(|| at(i) & 1 == 1)),
        )),
    ));
    cols.push((
        "i8",
        Arc::new(Int8Array::from_iter(
            (0..n).map(|i| valid(i).then(|| at(i) as i8)),
        )),
    ));
    cols.push((
        "i16",
        Arc::new(Int16Array::from_iter(
            (0..n).map(|i| valid(i).then(|| (at(i) >> 8) as i16)),
        )),
    ));
    cols.push((
        "i32",
        Arc::new(Int32Array::from_iter(
            (0..n).map(|i| valid(i).then(|| (at(i) >> 16) as i32)),
        )),
    ));
    cols.push((
        "d",
        Arc::new(Date32Array::from_iter(
            (0..n).map(|i| valid(i).then(|| (at(i) >> 20) as i32)),
        )),
    ));
    cols.push((
        "u8",
        Arc::new(UInt8Array::from_iter(
            (0..n).map(|i| valid(i).then(|| (at(i) >> 3) as u8)),
        )),
    ));
    cols.push((
        "u16",
        Arc::new(UInt16Array::from_iter(
            (0..n).map(|i| valid(i).then(|| (at(i) >> 24) as u16)),
        )),
    ));
    cols.push((
        "u32",
        Arc::new(UInt32Array::from_iter(
            (0..n).map(|i| valid(i).then(|| (at(i) >> 28) as u32)),
        )),
    ));
    cols.push((
        "f",
        Arc::new(Float32Array::from_iter((0..n).map(|i| {
            valid(i).then(|| {
                let v = at(i);
                if v % 3 == 0 {
                    floats[(v >> 8) as usize % floats.len()]
                } else {
                    (v >> 40) as i32 as f32 / 7.0
                }
            })
        }))),
    ));
    cols.push((
        "w",
        Arc::new(Int64Array::from_iter_values((0..n).map(|i| at(i) as i64))),
    ));
    let b =
        RecordBatch::try_from_iter_with_nullable(cols.into_iter().map(|(name, a)| (name, a, true)))
            .unwrap();
    // A query a column (with a filtered one and an integer sum beside), so that every
    // adapter's storage bindings hold the kernel's inputs (GL's llvmpipe has 8).
    let mut cases: Vec<(Vec<Agg>, bool)> = ["b", "i8", "i16", "i32", "d", "u8", "u16", "u32", "f"]
        .iter()
        .map(|&c| {
            (
                vec![Agg::count_star(), Agg::min(col(c)), Agg::max(col(c))],
                true,
            )
        })
        .collect();
    cases.push((
        vec![
            Agg::max(col("u8")).filter(col("i8").gt(lit(0i8))),
            Agg::sum(col("i16")),
        ],
        true,
    ));
    // An Int64's order is two words: min takes the passes.
    cases.push((vec![Agg::min(col("i32")), Agg::min(col("w"))], false));
    let want = common::cpu()
        .group_by(&b, &["k"], &[Agg::min(col("b")), Agg::max(col("f"))])
        .unwrap();
    assert_eq!(want.column(1).null_count(), 1, "group 7 has no values");
    assert_eq!(want.column(2).null_count(), 1, "group 7 has no values");
    for (name, gpu) in common::gpu_engines(None) {
        let resident = gpu.upload(&b).unwrap();
        for (aggs, one_pass) in &cases {
            let want = common::cpu().group_by(&b, &["k"], aggs).unwrap();
            let (got, profile) = gpu.profiled(|_| resident.group_by(&["k"], aggs)).unwrap();
            assert_eq!(got, want, "{name}: {aggs:?}");
            let syncs = profile.traffic().host_syncs;
            assert_eq!(syncs == 1, *one_pass, "{name}, {aggs:?}: {profile}");
            // Streamed: kept in one table across the batches.
            let options = arrow_wgpu::GroupByOptions::default();
            let mut acc = gpu
                .group_by_accumulator(b.schema(), &["k"], aggs, options)
                .unwrap();
            for start in (0..n).step_by(700) {
                acc.push(&b.slice(start, 700.min(n - start))).unwrap();
            }
            assert_eq!(acc.finish().unwrap(), want, "{name}: {aggs:?} streamed");
        }
    }
}
