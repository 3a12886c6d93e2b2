//! Distinct edge cases, each named for the case it pins, on the CPU and on every GPU adapter
//! (with normal and with tiny chunks, so that per-chunk results are merged).

use crate::common;

use std::sync::Arc;

use arrow::array::*;
use arrow::compute::take_record_batch;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use arrow_wgpu::{col, lit, Backend, Engine, EngineOptions, Error, Keep, Phase, RanOn};

const KEEPS: [Keep; 4] = [Keep::First, Keep::Last, Keep::Any, Keep::None];

fn every_engine() -> Vec<(String, Engine)> {
    let mut all = vec![("cpu".to_string(), common::cpu())];
    all.extend(common::gpu_engines(None));
    all.extend(
        common::gpu_engines(Some(1024))
            .into_iter()
            .map(|(n, e)| (format!("{n}/1KiB chunks"), e)),
    );
    all
}

fn one(name: &str, array: ArrayRef) -> RecordBatch {
    RecordBatch::try_from_iter([(name, array)]).unwrap()
}

fn indices(engine: &Engine, b: &RecordBatch, keys: &[&str], keep: Keep) -> Vec<u32> {
    engine
        .distinct_indices(b, keys, keep)
        .unwrap()
        .values()
        .to_vec()
}

/// Checks every entry point of `engine` against the expected indices for each keep, and
/// the expected count: `distinct` is the take of those rows, and a resident batch gives
/// the same.
fn check(
    name: &str,
    engine: &Engine,
    b: &RecordBatch,
    keys: &[&str],
    want: [&[u32]; 4],
    count: usize,
) {
    for (keep, want) in KEEPS.iter().zip(want) {
        assert_eq!(indices(engine, b, keys, *keep), want, "{name}: {keep:?}");
        let rows = take_record_batch(b, &UInt32Array::from(want.to_vec())).unwrap();
        assert_eq!(
            engine.distinct(b, keys, *keep).unwrap(),
            rows,
            "{name}: {keep:?} rows"
        );
        if engine.adapter().is_some() {
            let resident = engine.upload(b).unwrap();
            let got = resident
                .distinct(keys, *keep)
                .unwrap()
                .to_record_batch()
                .unwrap();
            assert_eq!(got, rows, "{name}: {keep:?} resident");
            let got = resident.distinct_indices(keys, *keep).unwrap();
            assert_eq!(
                got.values().to_vec(),
                want,
                "{name}: {keep:?} resident indices"
            );
            assert_eq!(
                resident.distinct_count(keys).unwrap(),
                count,
                "{name}: resident count"
            );
        }
    }
    assert_eq!(
        engine.distinct_count(b, keys).unwrap(),
        count,
        "{name}: count"
    );
}

#[test]
fn empty_input_gives_nothing() {
    let b = RecordBatch::try_from_iter([
        (
            "k",
            Arc::new(Int32Array::from(Vec::<i32>::new())) as ArrayRef,
        ),
        (
            "v",
            Arc::new(Float64Array::from(Vec::<f64>::new())) as ArrayRef,
        ),
    ])
    .unwrap();
    for (name, e) in every_engine() {
        check(&name, &e, &b, &["k"], [&[], &[], &[], &[]], 0);
        // A slice of nothing from a longer batch, too.
        let longer = one("k", Arc::new(Int64Array::from(vec![1, 2, 3])));
        check(
            &name,
            &e,
            &longer.slice(2, 0),
            &["k"],
            [&[], &[], &[], &[]],
            0,
        );
    }
}

#[test]
fn nan_equals_the_same_nan_and_not_another() {
    // NaN (the canonical quiet NaN), -NaN and a NaN with another payload are three keys,
    // as in arrow's row format; each repeats.
    let other = f64::from_bits(0x7ff8_0000_0000_0001);
    let b = one(
        "x",
        Arc::new(Float64Array::from(vec![
            f64::NAN,
            1.0,
            -f64::NAN,
            f64::NAN,
            other,
            -f64::NAN,
            other,
            2.0,
        ])),
    );
    for (name, e) in every_engine() {
        check(
            &name,
            &e,
            &b,
            &["x"],
            [
                &[0, 1, 2, 4, 7],
                &[1, 3, 5, 6, 7],
                &[0, 1, 2, 4, 7],
                &[1, 7],
            ],
            5,
        );
    }
    // Float32 too.
    let b = one(
        "x",
        Arc::new(Float32Array::from(vec![f32::NAN, f32::NAN, -f32::NAN, 3.0])),
    );
    for (name, e) in every_engine() {
        check(
            &name,
            &e,
            &b,
            &["x"],
            [&[0, 2, 3], &[1, 2, 3], &[0, 2, 3], &[2, 3]],
            3,
        );
    }
}

#[test]
fn negative_zero_is_not_zero() {
    let b = one(
        "x",
        Arc::new(Float64Array::from(vec![0.0, -0.0, 0.0, -0.0, -0.0])),
    );
    for (name, e) in every_engine() {
        check(&name, &e, &b, &["x"], [&[0, 1], &[2, 4], &[0, 1], &[]], 2);
    }
    let b = one("x", Arc::new(Float32Array::from(vec![-0.0, 0.0, 1.0, 0.0])));
    for (name, e) in every_engine() {
        check(
            &name,
            &e,
            &b,
            &["x"],
            [&[0, 1, 2], &[0, 2, 3], &[0, 1, 2], &[0, 2]],
            3,
        );
    }
}

#[test]
fn null_keys_equal_each_other() {
    // The value under a null slot is not part of the key.
    let values = Int32Array::new(
        vec![5, 1, 9, 5, 7, 1].into(),
        Some(vec![true, false, false, true, false, true].into()),
    );
    let b = one("x", Arc::new(values));
    for (name, e) in every_engine() {
        check(
            &name,
            &e,
            &b,
            &["x"],
            [&[0, 1, 5], &[3, 4, 5], &[0, 1, 5], &[5]],
            3,
        );
    }
    // An all-null key: one group.
    let b = one("x", Arc::new(Int64Array::from(vec![None::<i64>; 300])));
    let last: &[u32] = &[299];
    for (name, e) in every_engine() {
        check(&name, &e, &b, &["x"], [&[0], last, &[0], &[]], 1);
    }
}

#[test]
fn all_duplicates_keep_one_row_or_none() {
    // 3000 rows of one key: many chunks when they are tiny.
    let b = RecordBatch::try_from_iter([
        (
            "k",
            Arc::new(UInt16Array::from(vec![42u16; 3000])) as ArrayRef,
        ),
        ("v", Arc::new(Int64Array::from_iter_values(0..3000))),
    ])
    .unwrap();
    for (name, e) in every_engine() {
        check(&name, &e, &b, &["k"], [&[0], &[2999], &[0], &[]], 1);
    }
}

#[test]
fn no_duplicates_keep_every_row() {
    let n = 2500u32;
    // A permutation of 0..n, so the keys are not in order.
    let keys: Vec<i64> = (0..n as i64)
        .map(|i| (i * 7919) % n as i64 - 1000)
        .collect();
    let b = RecordBatch::try_from_iter([
        ("k", Arc::new(Int64Array::from(keys)) as ArrayRef),
        (
            "flag",
            Arc::new(BooleanArray::from_iter((0..n).map(|i| Some(i % 3 == 0)))),
        ),
    ])
    .unwrap();
    let all: Vec<u32> = (0..n).collect();
    for (name, e) in every_engine() {
        check(&name, &e, &b, &["k"], [&all, &all, &all, &all], n as usize);
    }
}

#[test]
fn keep_none_with_everything_duplicated_is_empty() {
    // Every key twice, the second time far away (another chunk when chunks are tiny).
    let keys: Vec<u8> = (0..200u32).map(|i| (i % 100) as u8).collect();
    let b = RecordBatch::try_from_iter([
        ("k", Arc::new(UInt8Array::from(keys)) as ArrayRef),
        ("d", Arc::new(Date32Array::from_iter_values(0..200))),
    ])
    .unwrap();
    for (name, e) in every_engine() {
        assert!(indices(&e, &b, &["k"], Keep::None).is_empty(), "{name}");
        let out = e.distinct(&b, &["k"], Keep::None).unwrap();
        assert_eq!((out.num_rows(), out.schema()), (0, b.schema()), "{name}");
        let first: Vec<u32> = (0..100).collect();
        let last: Vec<u32> = (100..200).collect();
        assert_eq!(indices(&e, &b, &["k"], Keep::First), first, "{name}");
        assert_eq!(indices(&e, &b, &["k"], Keep::Last), last, "{name}");
    }
}

#[test]
fn multi_key_rows_are_equal_only_when_every_key_is() {
    // (a, b, c): rows 0 and 3 are equal; 1 and 4 differ only in c (null vs a value);
    // 2 and 5 differ only in a; 6 equals 1 (nulls equal).
    let b = RecordBatch::try_from_iter([
        (
            "a",
            Arc::new(Int8Array::from(vec![1, 1, 2, 1, 1, 3, 1])) as ArrayRef,
        ),
        (
            "b",
            Arc::new(BooleanArray::from(vec![
                Some(true),
                None,
                Some(false),
                Some(true),
                None,
                Some(false),
                None,
            ])),
        ),
        (
            "c",
            Arc::new(Float64Array::from(vec![
                Some(0.5),
                None,
                Some(-0.0),
                Some(0.5),
                Some(0.0),
                Some(-0.0),
                None,
            ])),
        ),
    ])
    .unwrap();
    for (name, e) in every_engine() {
        check(
            &name,
            &e,
            &b,
            &["a", "b", "c"],
            [
                &[0, 1, 2, 4, 5],
                &[2, 3, 4, 5, 6],
                &[0, 1, 2, 4, 5],
                &[2, 4, 5],
            ],
            5,
        );
        // The order of the keys doesn't change which rows are duplicates; a key named twice
        // counts once.
        assert_eq!(
            indices(&e, &b, &["c", "a", "b"], Keep::Last),
            vec![2, 3, 4, 5, 6],
            "{name}"
        );
        assert_eq!(
            indices(&e, &b, &["a", "a"], Keep::First),
            vec![0, 2, 5],
            "{name}"
        );
    }
}

#[test]
fn wide_multi_key_uses_row_format_on_the_cpu() {
    // Three 64-bit keys and nulls: more than 128 bits, so the CPU hashes row-format rows.
    let n = 600i64;
    let b = RecordBatch::try_from_iter([
        (
            "a",
            Arc::new(Int64Array::from_iter(
                (0..n).map(|i| (i % 7 != 0).then_some(i % 3)),
            )) as ArrayRef,
        ),
        (
            "b",
            Arc::new(UInt64Array::from_iter_values(
                (0..n).map(|i| u64::MAX / 4 * (i % 5) as u64),
            )),
        ),
        (
            "c",
            Arc::new(Float64Array::from_iter_values((0..n).map(|i| {
                if i % 2 == 0 {
                    0.0
                } else {
                    -0.0
                }
            }))),
        ),
    ])
    .unwrap();
    let cpu = common::cpu();
    let want: Vec<Vec<u32>> = KEEPS
        .iter()
        .map(|k| indices(&cpu, &b, &["a", "b", "c"], *k))
        .collect();
    // 4 values of a (3 and null), 5 of b, 2 of c, all combinations: 40 keys.
    assert_eq!(cpu.distinct_count(&b, &["a", "b", "c"]).unwrap(), 40);
    for (name, e) in every_engine() {
        check(
            &name,
            &e,
            &b,
            &["a", "b", "c"],
            [&want[0], &want[1], &want[2], &want[3]],
            40,
        );
    }
}

#[test]
fn any_is_first_and_first_is_the_default() {
    assert_eq!(Keep::default(), Keep::First);
    let b = one("k", Arc::new(Int16Array::from(vec![3, 1, 3, 2, 1])));
    for (name, e) in every_engine() {
        assert_eq!(indices(&e, &b, &["k"], Keep::Any), vec![0, 1, 3], "{name}");
        assert_eq!(
            indices(&e, &b, &["k"], Keep::default()),
            vec![0, 1, 3],
            "{name}"
        );
    }
}

#[test]
fn every_column_type_is_gathered_with_its_nulls() {
    let ts = arrow::compute::cast(
        &(Arc::new(Int64Array::from(vec![Some(1), None, Some(3), Some(1)])) as ArrayRef),
        &DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, Some("UTC".into())),
    )
    .unwrap();
    let b = RecordBatch::try_from_iter([
        (
            "k",
            Arc::new(UInt32Array::from(vec![9, 8, 9, 7])) as ArrayRef,
        ),
        (
            "b",
            Arc::new(BooleanArray::from(vec![
                Some(true),
                None,
                Some(false),
                Some(true),
            ])),
        ),
        (
            "i8",
            Arc::new(Int8Array::from(vec![Some(-1), Some(2), None, Some(4)])),
        ),
        (
            "u16",
            Arc::new(UInt16Array::from(vec![None, Some(2), Some(3), Some(4)])),
        ),
        (
            "f32",
            Arc::new(Float32Array::from(vec![
                Some(1.5),
                None,
                Some(f32::NAN),
                Some(-0.0),
            ])),
        ),
        (
            "d64",
            Arc::new(Date64Array::from(vec![Some(1), Some(2), None, Some(4)])),
        ),
        ("ts", ts),
    ])
    .unwrap();
    for (name, e) in every_engine() {
        check(
            &name,
            &e,
            &b,
            &["k"],
            [&[0, 1, 3], &[1, 2, 3], &[0, 1, 3], &[1, 3]],
            3,
        );
        // Keyed on the nullable columns.
        let want = indices(&common::cpu(), &b, &["b", "ts"], Keep::Last);
        assert_eq!(indices(&e, &b, &["b", "ts"], Keep::Last), want, "{name}");
    }
}

#[test]
fn sliced_input_numbers_rows_from_the_slice() {
    let b = one(
        "k",
        Arc::new(Int32Array::from_iter(
            (0..400).map(|i| (i % 9 != 0).then_some(i % 13)),
        )),
    )
    .slice(37, 300);
    let cpu = common::cpu();
    let want: Vec<Vec<u32>> = KEEPS
        .iter()
        .map(|k| indices(&cpu, &b, &["k"], *k))
        .collect();
    let count = cpu.distinct_count(&b, &["k"]).unwrap();
    assert_eq!(count, 14);
    for (name, e) in every_engine() {
        check(
            &name,
            &e,
            &b,
            &["k"],
            [&want[0], &want[1], &want[2], &want[3]],
            count,
        );
    }
}

#[test]
fn keep_none_across_chunks_drops_keys_repeated_in_one_chunk_and_seen_once_in_another() {
    // With 128-row chunks: key 1 twice in chunk 0 and once in chunk 1; key 2 once in
    // chunk 0 and once in chunk 2; key 3 once, in chunk 1. Only key 3 is unique.
    let mut keys = vec![0i32; 400];
    for (i, k) in keys.iter_mut().enumerate() {
        *k = 100 + i as i32; // unique filler
    }
    keys[5] = 1;
    keys[6] = 1;
    keys[130] = 1;
    keys[10] = 2;
    keys[300] = 2;
    keys[200] = 3;
    let b = one("k", Arc::new(Int32Array::from(keys)));
    let cpu = common::cpu();
    let want_none = indices(&cpu, &b, &["k"], Keep::None);
    assert!(!want_none.contains(&5) && !want_none.contains(&130) && !want_none.contains(&10));
    assert!(want_none.contains(&200));
    let want: Vec<Vec<u32>> = KEEPS
        .iter()
        .map(|k| indices(&cpu, &b, &["k"], *k))
        .collect();
    for (name, e) in every_engine() {
        let count = cpu.distinct_count(&b, &["k"]).unwrap();
        check(
            &name,
            &e,
            &b,
            &["k"],
            [&want[0], &want[1], &want[2], &want[3]],
            count,
        );
    }
}

#[test]
fn resident_filter_then_distinct_uploads_nothing_more() {
    let b = RecordBatch::try_from_iter([
        (
            "k",
            Arc::new(Int64Array::from_iter_values((0..5000).map(|i| i % 97))) as ArrayRef,
        ),
        ("v", Arc::new(Int32Array::from_iter_values(0..5000))),
    ])
    .unwrap();
    for (name, e) in common::gpu_engines(None) {
        let resident = e.upload(&b).unwrap();
        let (out, profile) = e
            .profiled(|_| {
                resident
                    .filter(&col("v").gt_eq(lit(4000)))?
                    .distinct(&["k"], Keep::Last)?
                    .to_record_batch()
            })
            .unwrap();
        // The last row of each key is among the last 97 rows.
        assert_eq!(
            out.column(1).as_ref(),
            &Int32Array::from_iter_values(4903..5000),
            "{name}"
        );
        assert!(
            profile
                .steps
                .iter()
                .all(|s| s.time_in(Phase::Upload).is_zero()),
            "{name}"
        );
        assert!(
            profile.steps.iter().any(|s| s.operation == "distinct"),
            "{name}"
        );
    }
}

#[test]
fn no_keys_and_unknown_key_are_errors() {
    let b = one("x", Arc::new(Int32Array::from(vec![1])));
    for (name, e) in every_engine() {
        assert!(
            matches!(
                e.distinct(&b, &[], Keep::First),
                Err(Error::NoKeys("distinct"))
            ),
            "{name}"
        );
        assert!(
            matches!(e.distinct_count(&b, &[]), Err(Error::NoKeys("distinct"))),
            "{name}"
        );
        match e.distinct_indices(&b, &["x", "y"], Keep::None) {
            Err(Error::UnknownColumn { name: n, available }) => {
                assert_eq!((n.as_str(), available.as_str()), ("y", "x"), "{name}")
            }
            other => panic!("{name}: {other:?}"),
        }
        if e.adapter().is_some() {
            let resident = e.upload(&b).unwrap();
            assert!(matches!(
                resident.distinct(&[], Keep::Last),
                Err(Error::NoKeys("distinct"))
            ));
            assert!(matches!(
                resident.distinct_count(&["nope"]),
                Err(Error::UnknownColumn { .. })
            ));
        }
    }
}

#[test]
fn string_keys_run_on_gpu_and_dictionary_keys_on_cpu_under_auto() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("s", DataType::Utf8, true),
        Field::new("n", DataType::Int32, false),
    ]));
    let b = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec![
                Some("b"),
                None,
                Some("b"),
                Some("a"),
                None,
            ])),
            Arc::new(Int32Array::from(vec![1, 2, 3, 4, 5])),
        ],
    )
    .unwrap();
    let cpu = common::cpu();
    assert_eq!(indices(&cpu, &b, &["s"], Keep::First), vec![0, 1, 3]);
    assert_eq!(indices(&cpu, &b, &["s"], Keep::None), vec![3]);
    let dict: DictionaryArray<arrow::datatypes::Int8Type> =
        vec!["x", "y", "x", "x"].into_iter().collect();
    let d = one("d", Arc::new(dict));
    assert_eq!(indices(&cpu, &d, &["d"], Keep::Last), vec![1, 3]);
    for (name, gpu) in common::gpu_engines(None) {
        // String keys and string payload columns run on the GPU.
        assert_eq!(indices(&gpu, &b, &["s"], Keep::First), vec![0, 1, 3]);
        assert_eq!(indices(&gpu, &b, &["s"], Keep::None), vec![3]);
        assert_eq!(
            gpu.distinct(&b, &["n"], Keep::First).unwrap(),
            cpu.distinct(&b, &["n"], Keep::First).unwrap(),
            "{name}"
        );
        let err = gpu.distinct_indices(&d, &["d"], Keep::First).unwrap_err();
        assert!(
            matches!(err, Error::UnsupportedType { .. }),
            "{name}: {err}"
        );
        assert_eq!(
            indices(&gpu, &b, &["n"], Keep::First),
            vec![0, 1, 2, 3, 4],
            "{name}"
        );
        let auto = Engine::with_options(EngineOptions {
            backend: Backend::Auto,
            wgpu_backends: gpu.adapter().unwrap().backend.into(),
            adapter_name: Some(gpu.adapter().unwrap().name.clone()),
            ..Default::default()
        })
        .unwrap();
        let (got, profile) = auto
            .profiled(|e| e.distinct(&b, &["s"], Keep::Last))
            .unwrap();
        assert_eq!(got, cpu.distinct(&b, &["s"], Keep::Last).unwrap(), "{name}");
        assert!(matches!(profile.steps[0].ran_on, RanOn::Gpu(_)), "{name}");
        let (got, profile) = auto.profiled(|e| e.distinct_count(&d, &["d"])).unwrap();
        assert_eq!(got, 2, "{name}");
        assert_eq!(profile.steps[0].ran_on, RanOn::Cpu, "{name}");
        // Numeric keys stay on the GPU under Auto.
        let (_, profile) = auto
            .profiled(|e| e.distinct_indices(&b, &["n"], Keep::None))
            .unwrap();
        assert!(matches!(profile.steps[0].ran_on, RanOn::Gpu(_)), "{name}");
    }
}
