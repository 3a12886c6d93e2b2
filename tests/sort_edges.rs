//! Sort edge cases, each named for the case it pins, on the CPU and on every GPU adapter.

use crate::common;

use std::sync::Arc;

use arrow::array::*;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use arrow_wgpu::{col, lit, Backend, Engine, EngineOptions, Error, RanOn, SortKey};

fn every_engine() -> Vec<(String, Engine)> {
    let mut all = vec![("cpu".to_string(), common::cpu())];
    all.extend(common::gpu_engines_and_small_chunks(1024));
    all
}

fn one(name: &str, array: ArrayRef) -> RecordBatch {
    RecordBatch::try_from_iter([(name, array)]).unwrap()
}

fn indices(engine: &Engine, b: &RecordBatch, keys: &[SortKey], limit: Option<usize>) -> Vec<u32> {
    engine
        .sort_to_indices(b, keys, limit)
        .unwrap()
        .values()
        .to_vec()
}

#[test]
fn empty_batch_sorts_to_nothing() {
    let b = one("x", Arc::new(Int32Array::from(Vec::<i32>::new())));
    for (name, e) in every_engine() {
        assert!(
            indices(&e, &b, &[SortKey::asc("x")], None).is_empty(),
            "{name}"
        );
        assert_eq!(
            e.sort(&b, &[SortKey::asc("x")], None).unwrap().num_rows(),
            0,
            "{name}"
        );
    }
}

#[test]
fn one_row_and_all_equal_keys_keep_input_order() {
    for (name, e) in every_engine() {
        let b = one("x", Arc::new(Int64Array::from(vec![7])));
        assert_eq!(
            indices(&e, &b, &[SortKey::desc("x")], None),
            vec![0],
            "{name}"
        );
        // A constant key: every digit is skipped, the order is the input's.
        let b = one("x", Arc::new(Int64Array::from(vec![7; 1000])));
        let want: Vec<u32> = (0..1000).collect();
        assert_eq!(indices(&e, &b, &[SortKey::desc("x")], None), want, "{name}");
    }
}

#[test]
fn ties_keep_input_order_stable() {
    // Keys 0,1,2 repeating over 5000 rows: within each key, indices must ascend.
    let keys: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 3) as u8).collect();
    let b = one("k", Arc::new(UInt8Array::from(keys.clone())));
    let mut want: Vec<u32> = (0..5000).collect();
    want.sort_by_key(|&i| std::cmp::Reverse(keys[i as usize])); // Vec::sort_by_key is stable
    for (name, e) in every_engine() {
        assert_eq!(indices(&e, &b, &[SortKey::desc("k")], None), want, "{name}");
    }
}

#[test]
fn floats_in_total_order_nan_and_negative_zero() {
    let values = vec![
        f64::NAN,
        0.0,
        -0.0,
        f64::INFINITY,
        -f64::NAN,
        f64::NEG_INFINITY,
        -1.5,
        f64::MIN_POSITIVE / 4.0, // subnormal
        1.5,
        -0.0,
    ];
    let b = one("x", Arc::new(Float64Array::from(values.clone())));
    let b32 = one(
        "x",
        Arc::new(Float32Array::from(
            values.iter().map(|v| *v as f32).collect::<Vec<_>>(),
        )),
    );
    // -NaN < -inf < -1.5 < -0.0 (rows 2, 9 in input order) < 0.0 < subnormal < 1.5 < inf < NaN
    let want = vec![4, 5, 6, 2, 9, 1, 7, 8, 3, 0];
    let mut desc = want.clone();
    desc.reverse();
    desc.swap(5, 6); // ties (rows 2 and 9) stay in input order when descending too
    for (name, e) in every_engine() {
        assert_eq!(
            indices(&e, &b, &[SortKey::asc("x")], None),
            want,
            "{name} f64"
        );
        assert_eq!(
            indices(&e, &b32, &[SortKey::asc("x")], None),
            want,
            "{name} f32"
        );
        assert_eq!(
            indices(&e, &b, &[SortKey::desc("x")], None),
            desc,
            "{name} f64 desc"
        );
    }
}

#[test]
fn nulls_first_or_last_in_either_direction() {
    let b = one(
        "x",
        Arc::new(Int32Array::from(vec![
            Some(2),
            None,
            Some(-1),
            None,
            Some(5),
        ])),
    );
    for (name, e) in every_engine() {
        let asc_first = indices(&e, &b, &[SortKey::asc("x")], None);
        assert_eq!(asc_first, vec![1, 3, 2, 0, 4], "{name}");
        let asc_last = indices(&e, &b, &[SortKey::asc("x").nulls_first(false)], None);
        assert_eq!(asc_last, vec![2, 0, 4, 1, 3], "{name}");
        let desc_first = indices(&e, &b, &[SortKey::desc("x")], None);
        assert_eq!(desc_first, vec![1, 3, 4, 0, 2], "{name}");
        let desc_last = indices(&e, &b, &[SortKey::desc("x").nulls_first(false)], None);
        assert_eq!(desc_last, vec![4, 0, 2, 1, 3], "{name}");
    }
}

#[test]
fn all_null_key_keeps_input_order() {
    let b = one("x", Arc::new(Float32Array::from(vec![None::<f32>; 300])));
    let want: Vec<u32> = (0..300).collect();
    for (name, e) in every_engine() {
        assert_eq!(indices(&e, &b, &[SortKey::desc("x")], None), want, "{name}");
    }
}

#[test]
fn extremes_of_every_integer_width() {
    let b = RecordBatch::try_from_iter([
        (
            "i8",
            Arc::new(Int8Array::from(vec![i8::MAX, i8::MIN, 0, -1])) as ArrayRef,
        ),
        (
            "i16",
            Arc::new(Int16Array::from(vec![i16::MAX, i16::MIN, 0, -1])),
        ),
        (
            "i32",
            Arc::new(Int32Array::from(vec![i32::MAX, i32::MIN, 0, -1])),
        ),
        (
            "i64",
            Arc::new(Int64Array::from(vec![i64::MAX, i64::MIN, 0, -1])),
        ),
        ("u8", Arc::new(UInt8Array::from(vec![u8::MAX, 0, 1, 128]))),
        (
            "u16",
            Arc::new(UInt16Array::from(vec![u16::MAX, 0, 1, 1 << 15])),
        ),
        (
            "u32",
            Arc::new(UInt32Array::from(vec![u32::MAX, 0, 1, 1 << 31])),
        ),
        (
            "u64",
            Arc::new(UInt64Array::from(vec![u64::MAX, 0, 1, 1 << 63])),
        ),
        (
            "b",
            Arc::new(BooleanArray::from(vec![true, false, true, false])),
        ),
    ])
    .unwrap();
    for (name, e) in every_engine() {
        for signed in ["i8", "i16", "i32", "i64"] {
            assert_eq!(
                indices(&e, &b, &[SortKey::asc(signed)], None),
                vec![1, 3, 2, 0],
                "{name} {signed}"
            );
        }
        for unsigned in ["u8", "u16", "u32", "u64"] {
            assert_eq!(
                indices(&e, &b, &[SortKey::asc(unsigned)], None),
                vec![1, 2, 3, 0],
                "{name} {unsigned}"
            );
        }
        assert_eq!(
            indices(&e, &b, &[SortKey::asc("b")], None),
            vec![1, 3, 0, 2],
            "{name} bool"
        );
    }
}

#[test]
fn two_keys_second_breaks_ties_of_the_first() {
    let b = RecordBatch::try_from_iter([
        (
            "a",
            Arc::new(Int32Array::from(vec![1, 0, 1, 0, 1])) as ArrayRef,
        ),
        (
            "t",
            Arc::new(TimestampMillisecondArray::from(vec![5, 9, -3, 9, 5]).with_timezone("UTC")),
        ),
    ])
    .unwrap();
    for (name, e) in every_engine() {
        let got = indices(&e, &b, &[SortKey::asc("a"), SortKey::desc("t")], None);
        assert_eq!(got, vec![1, 3, 0, 4, 2], "{name}");
    }
}

#[test]
fn limit_zero_small_and_past_the_end() {
    let b = one(
        "x",
        Arc::new(UInt32Array::from(
            (0..1000u32).map(|i| i * 7919 % 1000).collect::<Vec<_>>(),
        )),
    );
    let full = indices(&common::cpu(), &b, &[SortKey::asc("x")], None);
    for (name, e) in every_engine() {
        assert!(
            indices(&e, &b, &[SortKey::asc("x")], Some(0)).is_empty(),
            "{name}"
        );
        assert_eq!(
            indices(&e, &b, &[SortKey::asc("x")], Some(3)),
            full[..3],
            "{name}"
        );
        assert_eq!(
            indices(&e, &b, &[SortKey::asc("x")], Some(5000)),
            full,
            "{name}"
        );
        let top = e.sort(&b, &[SortKey::asc("x")], Some(10)).unwrap();
        assert_eq!(top.num_rows(), 10, "{name}");
    }
}

#[test]
fn sort_gathers_every_column_type_with_nulls() {
    let b = RecordBatch::try_from_iter([
        (
            "k",
            Arc::new(Int16Array::from(vec![Some(3), Some(1), None, Some(2)])) as ArrayRef,
        ),
        (
            "bool",
            Arc::new(BooleanArray::from(vec![
                Some(true),
                None,
                Some(false),
                Some(true),
            ])),
        ),
        (
            "u8",
            Arc::new(UInt8Array::from(vec![Some(1), Some(2), None, Some(4)])),
        ),
        (
            "f32",
            Arc::new(Float32Array::from(vec![1.0, -0.0, f32::NAN, 4.0])),
        ),
        (
            "d64",
            Arc::new(Date64Array::from(vec![Some(10), None, Some(30), Some(40)])),
        ),
    ])
    .unwrap();
    let want = arrow::compute::take_record_batch(&b, &UInt32Array::from(vec![1, 3, 0, 2])).unwrap();
    for (name, e) in every_engine() {
        let got = e
            .sort(&b, &[SortKey::asc("k").nulls_first(false)], None)
            .unwrap();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn resident_filter_then_sort_uploads_nothing_more() {
    let b = one(
        "x",
        Arc::new(Int64Array::from(
            (0..10_000i64)
                .map(|i| (i * 7919) % 10_007)
                .collect::<Vec<_>>(),
        )),
    );
    for (name, e) in common::gpu_engines(None) {
        let resident = e.upload(&b).unwrap();
        let (top, profile) = e
            .profiled(|_| {
                resident
                    .filter(&col("x").lt(lit(5000i64)))?
                    .sort(&[SortKey::desc("x")], Some(3))?
                    .to_record_batch()
            })
            .unwrap();
        assert_eq!(
            top.column(0).as_ref(),
            &Int64Array::from(vec![4999, 4998, 4997]),
            "{name}"
        );
        assert!(
            profile
                .steps
                .iter()
                .all(|s| s.time_in(arrow_wgpu::Phase::Upload).is_zero()),
            "{name}"
        );
    }
}

#[test]
fn no_keys_and_unknown_key_are_errors() {
    let b = one("x", Arc::new(Int32Array::from(vec![1])));
    for (name, e) in every_engine() {
        assert!(
            matches!(e.sort_to_indices(&b, &[], None), Err(Error::NoKeys("sort"))),
            "{name}"
        );
        match e.sort(&b, &[SortKey::asc("y")], None) {
            Err(Error::UnknownColumn { name: n, available }) => {
                assert_eq!((n.as_str(), available.as_str()), ("y", "x"), "{name}")
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn string_key_runs_on_cpu_under_auto_and_errors_on_gpu() {
    let schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8, true)]));
    let b = RecordBatch::try_new(
        schema,
        vec![Arc::new(StringArray::from(vec![
            Some("b"),
            None,
            Some("a"),
        ]))],
    )
    .unwrap();
    let want = vec![1, 2, 0];
    for (name, gpu) in common::gpu_engines(None) {
        let err = gpu
            .sort_to_indices(&b, &[SortKey::asc("s")], None)
            .unwrap_err();
        assert!(
            matches!(err, Error::UnsupportedType { .. }),
            "{name}: {err}"
        );
        let auto = Engine::with_options(EngineOptions {
            backend: Backend::Auto,
            wgpu_backends: gpu.adapter().unwrap().backend.into(),
            adapter_name: Some(gpu.adapter().unwrap().name.clone()),
            ..Default::default()
        })
        .unwrap();
        let (got, profile) = auto
            .profiled(|e| e.sort_to_indices(&b, &[SortKey::asc("s")], None))
            .unwrap();
        assert_eq!(got.values().to_vec(), want, "{name}");
        assert_eq!(profile.steps[0].ran_on, RanOn::Cpu, "{name}");
    }
    assert_eq!(
        indices(&common::cpu(), &b, &[SortKey::asc("s")], None),
        want
    );
}
