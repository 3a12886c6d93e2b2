//! Edge cases of string columns, each named for what it pins; every one runs on the CPU and
//! on every GPU adapter found (also with tiny chunks), checked against a literal answer.

use crate::common;

use std::sync::Arc;

use arrow::array::*;
use arrow::compute::cast;
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use arrow_wgpu::{col, lit, Agg, Backend, Engine, EngineOptions, Error, Keep, RanOn, SortKey};

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    RecordBatch::try_from_iter(columns).unwrap()
}

fn strings(values: &[Option<&str>], dt: &DataType) -> ArrayRef {
    cast(&StringArray::from(values.to_vec()), dt).unwrap()
}

const TYPES: [DataType; 3] = [DataType::Utf8, DataType::LargeUtf8, DataType::Utf8View];

/// Runs `check` on the CPU engine and on every GPU engine (normal and 256-byte chunks, a
/// handful of short strings each).
fn on_every_backend(check: impl Fn(&str, &Engine)) {
    check("cpu", &common::cpu());
    for (name, engine) in common::gpu_engines_and_small_chunks(256) {
        check(&name, &engine);
    }
}

fn as_utf8(a: &ArrayRef) -> Vec<Option<String>> {
    let a = cast(a, &DataType::Utf8).unwrap();
    a.as_string::<i32>()
        .iter()
        .map(|v| v.map(str::to_string))
        .collect()
}

#[test]
fn empty_batch_with_string_columns() {
    for dt in &TYPES {
        let b = batch(vec![("s", strings(&[], dt))]);
        on_every_backend(|name, e| {
            let out = e.filter(&b, &col("s").eq(lit("a"))).unwrap();
            assert_eq!(out.num_rows(), 0, "{name}");
            assert_eq!(out.schema(), b.schema(), "{name}");
            let g = e.group_by(&b, &["s"], &[Agg::count_star()]).unwrap();
            assert_eq!(g.num_rows(), 0, "{name}");
            assert_eq!(g.column(0).data_type(), dt, "{name}");
            assert_eq!(e.distinct(&b, &["s"], Keep::First).unwrap().num_rows(), 0);
        });
    }
}

#[test]
fn all_null_strings_are_one_group_and_match_nothing() {
    for dt in &TYPES {
        let b = batch(vec![("s", strings(&[None; 70], dt))]);
        on_every_backend(|name, e| {
            let g = e.group_by(&b, &["s"], &[Agg::count_star()]).unwrap();
            assert_eq!(g.num_rows(), 1, "{name} {dt}");
            assert_eq!(g.column(0).null_count(), 1, "{name} {dt}");
            assert_eq!(g.column(1).as_ref(), &Int64Array::from(vec![70]), "{name}");
            assert_eq!(e.distinct_count(&b, &["s"]).unwrap(), 1, "{name}");
            for p in [col("s").eq(lit("")), col("s").not_eq(lit(""))] {
                assert_eq!(e.filter(&b, &p).unwrap().num_rows(), 0, "{name} {p}");
            }
            let mask = e.evaluate(&b, &col("s").eq(lit("x"))).unwrap();
            assert_eq!(mask.null_count(), 70, "{name}");
        });
    }
}

#[test]
fn strings_equal_up_to_a_trailing_byte_are_different() {
    let values = [
        Some("abcd"),
        Some("abcde"),
        Some("abcd\0"),
        Some("abc"),
        Some(""),
        None,
        Some("abcd"),
        Some(""),
        None,
        Some("abcdé"),
        Some("abcdè"),
    ];
    for dt in &TYPES {
        let b = batch(vec![
            ("s", strings(&values, dt)),
            (
                "i",
                Arc::new(Int32Array::from_iter_values(0..11)) as ArrayRef,
            ),
        ]);
        on_every_backend(|name, e| {
            let g = e.group_by(&b, &["s"], &[Agg::count_star()]).unwrap();
            assert_eq!(g.column(0).data_type(), dt, "{name}");
            assert_eq!(
                as_utf8(g.column(0)),
                as_utf8(&strings(
                    &[
                        Some("abcd"),
                        Some("abcde"),
                        Some("abcd\0"),
                        Some("abc"),
                        Some(""),
                        None,
                        Some("abcdé"),
                        Some("abcdè"),
                    ],
                    dt
                )),
                "{name} {dt}"
            );
            assert_eq!(
                g.column(1).as_ref(),
                &Int64Array::from(vec![2, 1, 1, 1, 2, 2, 1, 1]),
                "{name} {dt}"
            );
            let kept = |p| {
                let out = e.filter(&b, &p).unwrap();
                out.column(1)
                    .as_primitive::<arrow::datatypes::Int32Type>()
                    .values()
                    .to_vec()
            };
            assert_eq!(kept(col("s").eq(lit("abcd"))), vec![0, 6], "{name} {dt}");
            assert_eq!(kept(col("s").eq(lit(""))), vec![4, 7], "{name} {dt}");
            assert_eq!(
                kept(col("s").not_eq(lit("abcd"))),
                vec![1, 2, 3, 4, 7, 9, 10],
                "{name} {dt}"
            );
            assert_eq!(
                kept(col("s").in_list(vec![lit("abc"), lit("abcde"), lit("abcdè")])),
                vec![1, 3, 10],
                "{name} {dt}"
            );
            let last = e.distinct_indices(&b, &["s"], Keep::Last).unwrap();
            assert_eq!(
                last.values().to_vec(),
                vec![1, 2, 3, 6, 7, 8, 9, 10],
                "{name}"
            );
            let none = e.distinct_indices(&b, &["s"], Keep::None).unwrap();
            assert_eq!(none.values().to_vec(), vec![1, 2, 3, 9, 10], "{name}");
        });
    }
}

#[test]
fn every_length_around_a_word_boundary_at_every_alignment() {
    // Strings of 0..=13 bytes, each after a prefix of 0..=3 bytes, so every string starts
    // at every byte of a word; each also with its last byte changed.
    let mut values: Vec<String> = Vec::new();
    for len in 0..=13usize {
        let s: String = (0..len).map(|i| (b'a' + (i % 26) as u8) as char).collect();
        values.push(s.clone());
        if len > 0 {
            let mut t = s.into_bytes();
            *t.last_mut().unwrap() = b'Z';
            values.push(String::from_utf8(t).unwrap());
        }
    }
    let mut rows: Vec<Option<String>> = Vec::new();
    for pad in 0..4 {
        rows.push(Some("x".repeat(pad)));
        rows.extend(values.iter().cloned().map(Some));
    }
    let array = StringArray::from(rows.clone());
    let b = batch(vec![("s", Arc::new(array) as ArrayRef)]);
    on_every_backend(|name, e| {
        // Each value appears 4 times, the pads once each (the empty pad is also a value).
        let g = e.group_by(&b, &["s"], &[Agg::count_star()]).unwrap();
        assert_eq!(g.num_rows(), values.len() + 3, "{name}");
        for v in &values {
            let n = e
                .filter(&b, &col("s").eq(lit(v.as_str())))
                .unwrap()
                .num_rows();
            let want = if v.is_empty() { 5 } else { 4 };
            assert_eq!(n, want, "{name} '{v}'");
        }
    });
}

#[test]
fn one_huge_string_runs_whole_or_falls_back_with_small_chunks() {
    let huge = "ACGT".repeat(64 * 1024) + "!"; // 256 KiB and a byte
    let values = [
        Some("a"),
        Some(huge.as_str()),
        Some("a"),
        Some(huge.as_str()),
        None,
    ];
    let b = batch(vec![("s", strings(&values, &DataType::Utf8))]);
    let filter = col("s").eq(lit(huge.as_str()));
    let whole = common::gpu_engines(None);
    for (name, e) in whole
        .iter()
        .chain([("cpu".to_string(), common::cpu())].iter())
    {
        let g = e.group_by(&b, &["s"], &[Agg::count_star()]).unwrap();
        assert_eq!(
            g.column(1).as_ref(),
            &Int64Array::from(vec![2, 2, 1]),
            "{name}"
        );
        let out = e.filter(&b, &filter).unwrap();
        assert_eq!(
            as_utf8(out.column(0)),
            vec![Some(huge.clone()); 2],
            "{name}"
        );
        let d = e.distinct(&b, &["s"], Keep::Last).unwrap();
        assert_eq!(d.num_rows(), 3, "{name}");
    }
    for (name, _) in common::gpu_engines(None) {
        let wgpu_backend = if name == "gl" {
            wgpu::Backends::GL
        } else {
            wgpu::Backends::VULKAN
        };
        let options = |backend| EngineOptions {
            backend,
            wgpu_backends: wgpu_backend,
            adapter_name: Engine::adapters(wgpu_backend)
                .into_iter()
                .next()
                .map(|a| a.0),
            max_chunk_bytes: Some(4096),
            ..Default::default()
        };
        let gpu = Engine::with_options(options(Backend::Gpu)).unwrap();
        let err = gpu.filter(&b, &filter).unwrap_err();
        assert!(
            matches!(&err, Error::UnsupportedOnGpu { reason, .. } if reason.contains("262145 bytes")),
            "{name}: {err}"
        );
        let auto = Engine::with_options(options(Backend::Auto)).unwrap();
        let (out, profile) = auto.profiled(|e| e.filter(&b, &filter)).unwrap();
        assert_eq!(out.num_rows(), 2, "{name}");
        assert_eq!(profile.steps[0].ran_on, RanOn::Cpu, "{name}");
        assert!(profile.steps[0].fallback.is_some(), "{name}");
    }
}

#[test]
fn literals_take_every_string_type_and_columns_of_different_types_compare() {
    let a = [Some("x"), Some("yy"), None, Some("x"), Some("")];
    let c = [Some("x"), Some("y"), Some("q"), None, Some("")];
    for ta in &TYPES {
        for tc in &TYPES {
            let b = batch(vec![("a", strings(&a, ta)), ("c", strings(&c, tc))]);
            on_every_backend(|name, e| {
                let mask = e.evaluate(&b, &col("a").eq(col("c"))).unwrap();
                let want =
                    BooleanArray::from(vec![Some(true), Some(false), None, None, Some(true)]);
                assert_eq!(mask, want, "{name} {ta} {tc}");
                let mask = e.evaluate(&b, &lit("x").not_eq(col("a"))).unwrap();
                let want = BooleanArray::from(vec![
                    Some(false),
                    Some(true),
                    None,
                    Some(false),
                    Some(true),
                ]);
                assert_eq!(mask, want, "{name} {ta}");
                let out = e
                    .filter(&b, &col("c").in_list(vec![lit("q"), lit("")]))
                    .unwrap();
                assert_eq!(out.column(0).data_type(), ta, "{name}");
                assert_eq!(
                    as_utf8(out.column(0)),
                    vec![None, Some(String::new())],
                    "{name}"
                );
            });
        }
    }
}

#[test]
fn strings_never_meet_numbers() {
    let b = batch(vec![
        ("s", strings(&[Some("1")], &DataType::Utf8)),
        ("i", Arc::new(Int32Array::from(vec![1])) as ArrayRef),
    ]);
    on_every_backend(|name, e| {
        for p in [
            col("s").eq(lit(1)),
            col("i").eq(lit("1")),
            col("s").eq(col("i")),
        ] {
            let err = e.filter(&b, &p).unwrap_err();
            assert!(
                matches!(err, Error::InvalidExpression(_)),
                "{name} {p}: {err}"
            );
        }
    });
}

#[test]
fn string_order_comparisons_run_on_the_cpu() {
    let b = batch(vec![(
        "s",
        strings(&[Some("b"), Some("a"), None], &DataType::Utf8),
    )]);
    let p = col("s").lt(lit("b"));
    for (name, engine) in common::gpu_engines(None) {
        let err = engine.filter(&b, &p).unwrap_err();
        assert!(
            matches!(err, Error::UnsupportedOnGpu { .. }),
            "{name}: {err}"
        );
    }
    let auto = Engine::new(Backend::Auto).unwrap();
    assert_eq!(
        as_utf8(auto.filter(&b, &p).unwrap().column(0)),
        vec![Some("a".into())]
    );
}

#[test]
fn sort_carries_string_payloads_and_string_keys_fall_back() {
    let s = [
        Some("dd"),
        None,
        Some(""),
        Some("a longer string, past a word"),
        Some("é"),
    ];
    for dt in &TYPES {
        let b = batch(vec![
            (
                "k",
                Arc::new(Int32Array::from(vec![3, 1, 4, 0, 2])) as ArrayRef,
            ),
            ("s", strings(&s, dt)),
        ]);
        on_every_backend(|name, e| {
            let out = e.sort(&b, &[SortKey::asc("k")], None).unwrap();
            assert_eq!(out.column(1).data_type(), dt, "{name}");
            assert_eq!(
                as_utf8(out.column(1)),
                as_utf8(&strings(&[s[3], s[1], s[4], s[0], s[2]], &DataType::Utf8)),
                "{name} {dt}"
            );
        });
        for (name, engine) in common::gpu_engines(None) {
            let err = engine.sort(&b, &[SortKey::asc("s")], None).unwrap_err();
            assert!(err.is_gpu_side(), "{name}: {err}");
        }
    }
}

#[test]
fn resident_group_by_and_distinct_give_back_the_key_type() {
    let s = [Some("b"), Some("a"), Some("b"), None, Some("a"), Some("c")];
    for dt in &TYPES {
        let b = batch(vec![
            ("s", strings(&s, dt)),
            (
                "v",
                Arc::new(Int64Array::from(vec![1, 2, 3, 4, 5, 6])) as ArrayRef,
            ),
        ]);
        for (name, engine) in common::gpu_engines(Some(256)) {
            let resident = engine.upload(&b).unwrap();
            let g = resident.group_by(&["s"], &[Agg::sum(col("v"))]).unwrap();
            assert_eq!(g.column(0).data_type(), dt, "{name}");
            assert_eq!(
                as_utf8(g.column(0)),
                vec![Some("b".into()), Some("a".into()), None, Some("c".into())],
                "{name}"
            );
            assert_eq!(
                g.column(1).as_ref(),
                &Int64Array::from(vec![4, 7, 4, 6]),
                "{name}"
            );
            let d = resident
                .filter(&col("v").gt(lit(1i64)))
                .unwrap()
                .distinct(&["s"], Keep::Last)
                .unwrap()
                .to_record_batch()
                .unwrap();
            assert_eq!(d.column(0).data_type(), dt, "{name}");
            assert_eq!(
                d.column(1).as_ref(),
                &Int64Array::from(vec![3, 4, 5, 6]),
                "{name}"
            );
        }
    }
}

/// A string column read only for its null mask (a count, a filter's `IS NOT NULL`): its
/// buffer is bound though the kernel never reads its bytes. Once a silent zero for every
/// aggregate of the pass on the GPU.
#[test]
fn string_columns_used_only_for_their_null_mask() {
    for dt in &TYPES {
        let b = batch(vec![
            ("k", Arc::new(Int32Array::from(vec![1, 1, 2, 2, 2])) as _),
            (
                "a",
                Arc::new(Int64Array::from(vec![10, 60, 70, 80, 90])) as _,
            ),
            (
                "s",
                strings(&[Some("x"), None, Some(""), Some("y"), None], dt),
            ),
        ]);
        let aggs = [
            Agg::count_star().filter(col("s").is_not_null()),
            Agg::count(col("s")).filter(col("a").gt(lit(50))),
            Agg::sum(col("a")).filter(col("s").is_null()),
        ];
        on_every_backend(|name, engine| {
            let out = engine.group_by(&b, &["k"], &aggs).unwrap();
            let ints = |i: usize| -> Vec<Option<i64>> {
                out.column(i)
                    .as_primitive::<arrow::datatypes::Int64Type>()
                    .iter()
                    .collect()
            };
            assert_eq!(ints(1), vec![Some(1), Some(2)], "{name} {dt}");
            assert_eq!(ints(2), vec![Some(0), Some(2)], "{name} {dt}");
            assert_eq!(ints(3), vec![Some(60), Some(90)], "{name} {dt}");
            let kept = engine.filter(&b, &col("s").is_not_null()).unwrap();
            assert_eq!(kept.num_rows(), 3, "{name} {dt}");
            let mask = engine.evaluate(&b, &col("s").is_null()).unwrap();
            assert_eq!(
                mask,
                BooleanArray::from(vec![false, true, false, false, true]),
                "{name} {dt}"
            );
        });
    }
}
