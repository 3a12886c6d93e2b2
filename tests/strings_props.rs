//! Property tests for string columns: on random batches of Utf8 / LargeUtf8 / Utf8View
//! columns (empty strings, strings over 1 KiB, every length around a word boundary,
//! non-ASCII UTF-8, strings equal but for a trailing byte, nulls, sliced arrays), every GPU
//! adapter (also with small chunks, so chunk boundaries fall between strings) gives the CPU
//! path's answer exactly: group-by on string keys (alone and with an integer key), distinct
//! on string keys (every `Keep`), filters with `=`, `!=` and `IN` on strings, from host
//! batches and from resident ones, and sorts that carry string columns.

use crate::common;

use std::sync::{Arc, OnceLock};

use arrow::array::{Array, ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use arrow_wgpu::{col, lit, Agg, Engine, Expr, Keep, SortKey};
use common::gen::Rng;
use proptest::prelude::*;

/// Chunks of this many bytes in the small-chunk engines: a few long strings fill one.
const SMALL_CHUNK: u64 = 8192;
/// The longest string generated: fits a small chunk with room to spare.
const LONGEST: usize = 3000;

fn engines() -> &'static Vec<(String, Engine)> {
    static E: OnceLock<Vec<(String, Engine)>> = OnceLock::new();
    E.get_or_init(|| common::gpu_engines_and_small_chunks(SMALL_CHUNK))
}

const STRING_TYPES: [DataType; 3] = [DataType::Utf8, DataType::LargeUtf8, DataType::Utf8View];

/// One random string: empty, short ASCII, non-ASCII, a length around a word boundary, or
/// long (over 1 KiB).
fn random_string(rng: &mut Rng) -> String {
    const PIECES: [&str; 8] = ["a", "b", "chr", "é", "日本", "🧬", "\u{0}", "z"];
    let len = match rng.below(6) {
        0 => 0,
        1 => 1 + rng.below(4) as usize,
        2 => 1 + rng.below(12) as usize,
        3 => 4 * (1 + rng.below(3) as usize) + rng.below(3) as usize - 1,
        4 => 1025 + rng.below((LONGEST - 1025) as u64) as usize,
        _ => 20 + rng.below(60) as usize,
    };
    let mut s = String::new();
    while s.len() < len {
        s.push_str(PIECES[rng.below(PIECES.len() as u64) as usize]);
    }
    s
}

/// A pool of distinct-ish values with near misses: each string also appears with one more
/// byte, and with its last byte changed (where that keeps it UTF-8).
fn pool(rng: &mut Rng, size: usize) -> Vec<String> {
    let mut out = Vec::new();
    while out.len() < size {
        let s = random_string(rng);
        if rng.chance(0.3) {
            out.push(format!("{s}x"));
        }
        if rng.chance(0.3) && s.ends_with('a') {
            out.push(format!("{}b", &s[..s.len() - 1]));
        }
        out.push(s);
    }
    out.truncate(size.max(1));
    out
}

/// A string column of `dt` with `rows` rows drawn from a pool of one, a few or many values.
fn string_column(rng: &mut Rng, dt: &DataType, rows: usize) -> ArrayRef {
    let null_p = *rng.pick(&[0.0, 0.1, 0.5, 1.0]);
    let size = match rng.below(3) {
        0 => 1,
        1 => 1 + rng.below(6) as usize,
        _ => rows.max(1),
    };
    let values = pool(rng, size);
    let array: StringArray = (0..rows)
        .map(|_| {
            (!rng.chance(null_p)).then(|| values[rng.below(values.len() as u64) as usize].clone())
        })
        .collect();
    cast(&array, dt).unwrap()
}

/// A batch: string columns `s0`, `s1` (random string types), an Int32 `k` of few values and
/// an Int64 `v`, sliced at a random offset half of the time.
fn random_batch(rng: &mut Rng, rows: usize) -> RecordBatch {
    let pad = if rng.chance(0.5) {
        rng.below(40) as usize
    } else {
        0
    };
    let total = rows + pad;
    let t0 = rng.pick(&STRING_TYPES).clone();
    let s0 = string_column(rng, &t0, total);
    let t1 = rng.pick(&STRING_TYPES).clone();
    let s1 = string_column(rng, &t1, total);
    let k: Int32Array = (0..total)
        .map(|_| (!rng.chance(0.1)).then(|| rng.below(4) as i32))
        .collect();
    let v: Int64Array = (0..total)
        .map(|_| (!rng.chance(0.1)).then(|| rng.below(1000) as i64 - 500))
        .collect();
    let batch = RecordBatch::try_from_iter([
        ("s0", s0),
        ("s1", s1),
        ("k", Arc::new(k) as ArrayRef),
        ("v", Arc::new(v) as ArrayRef),
    ])
    .unwrap();
    batch.slice(pad, rows)
}

/// A literal string: one of the column's values (so `=` matches), or a random one.
fn literal(rng: &mut Rng, batch: &RecordBatch, column: &str) -> Expr {
    let array = cast(batch.column_by_name(column).unwrap(), &DataType::Utf8).unwrap();
    let strings = array.as_any().downcast_ref::<StringArray>().unwrap();
    let valid: Vec<usize> = (0..strings.len())
        .filter(|&i| strings.is_valid(i))
        .collect();
    if !valid.is_empty() && rng.chance(0.7) {
        let i = valid[rng.below(valid.len() as u64) as usize];
        let s = strings.value(i);
        // Sometimes a near miss: one byte more or one less.
        match rng.below(5) {
            0 => lit(format!("{s}a")),
            1 if !s.is_empty() && s.is_char_boundary(s.len() - 1) => lit(&s[..s.len() - 1]),
            _ => lit(s),
        }
    } else {
        lit(random_string(rng))
    }
}

/// A random predicate over the string columns: `=`, `!=`, `IN` with literals or the
/// other column, under AND / OR / NOT, with IS NULL now and then.
fn predicate(rng: &mut Rng, batch: &RecordBatch, depth: u32) -> Expr {
    if depth > 0 && rng.chance(0.4) {
        let l = predicate(rng, batch, depth - 1);
        let r = predicate(rng, batch, depth - 1);
        return match rng.below(3) {
            0 => l.and(r),
            1 => l.or(r),
            _ => l.not(),
        };
    }
    let c = *rng.pick(&["s0", "s1"]);
    match rng.below(6) {
        0 => col(c).eq(literal(rng, batch, c)),
        1 => literal(rng, batch, c).not_eq(col(c)),
        2 => {
            let n = rng.below(4) as usize;
            col(c).in_list((0..n).map(|_| literal(rng, batch, c)).collect())
        }
        3 => col("s0").eq(col("s1")),
        4 => col("s1").not_eq(col("s0")).or(col(c).is_null()),
        _ => col(c).eq(literal(rng, batch, c)).and(col("k").gt(lit(1))),
    }
}

fn rows_strategy() -> impl Strategy<Value = usize> {
    prop_oneof![
        1 => Just(0usize),
        6 => 1usize..150,
        3 => 150usize..600,
    ]
}

fn key_sets() -> Vec<Vec<&'static str>> {
    vec![
        vec!["s0"],
        vec!["s1"],
        vec!["s0", "k"],
        vec!["k", "s1"],
        vec!["s0", "s1"],
    ]
}

proptest! {
    // 24 cases a test: each runs every adapter in normal and 8 KiB chunks (hundreds of
    // chunks for long strings), which llvmpipe takes seconds for.
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn string_keys_group_by_and_distinct_gpu_equal_cpu(
        seed in any::<u64>(),
        rows in rows_strategy(),
        keys in 0usize..5,
    ) {
        let mut rng = Rng(seed);
        let batch = random_batch(&mut rng, rows);
        let keys = key_sets()[keys].clone();
        let aggs = [
            Agg::count_star(),
            Agg::count(col("s0")),
            Agg::sum(col("v")),
            Agg::min(col("v")),
            Agg::max(col("v")),
        ];
        let cpu = common::cpu();
        let want = cpu.group_by(&batch, &keys, &aggs).unwrap();
        let want_distinct: Vec<RecordBatch> = [Keep::First, Keep::Last, Keep::Any, Keep::None]
            .iter()
            .map(|&keep| cpu.distinct(&batch, &keys, keep).unwrap())
            .collect();
        let want_count = cpu.distinct_count(&batch, &keys).unwrap();
        for (name, engine) in engines() {
            let got = engine.group_by(&batch, &keys, &aggs).unwrap();
            prop_assert_eq!(&got, &want, "{} group_by {:?}", name, keys);
            let resident = engine.upload(&batch).unwrap();
            let got = resident.group_by(&keys, &aggs).unwrap();
            prop_assert_eq!(&got, &want, "{} resident group_by {:?}", name, keys);
            for (keep, want) in [Keep::First, Keep::Last, Keep::Any, Keep::None].iter().zip(&want_distinct) {
                let got = engine.distinct(&batch, &keys, *keep).unwrap();
                prop_assert_eq!(&got, want, "{} distinct {:?} {:?}", name, keys, keep);
                let got = resident.distinct(&keys, *keep).unwrap().to_record_batch().unwrap();
                prop_assert_eq!(&got, want, "{} resident distinct {:?} {:?}", name, keys, keep);
            }
            prop_assert_eq!(engine.distinct_count(&batch, &keys).unwrap(), want_count, "{}", name);
        }
    }

    #[test]
    fn string_predicates_gpu_equal_cpu(seed in any::<u64>(), rows in rows_strategy(), depth in 0u32..3) {
        let mut rng = Rng(seed);
        let batch = random_batch(&mut rng, rows);
        let predicate = predicate(&mut rng, &batch, depth);
        let cpu = common::cpu();
        let want_mask = cpu.evaluate(&batch, &predicate).unwrap();
        let want = cpu.filter(&batch, &predicate).unwrap();
        let sort_keys = [SortKey::asc("k"), SortKey::desc("v")];
        let want_sorted = cpu.sort(&batch, &sort_keys, None).unwrap();
        for (name, engine) in engines() {
            let mask = engine.evaluate(&batch, &predicate).unwrap();
            prop_assert_eq!(&mask, &want_mask, "{} evaluate {}", name, predicate);
            let got = engine.filter(&batch, &predicate).unwrap();
            prop_assert_eq!(&got, &want, "{} filter {}", name, predicate);
            let got = engine.upload(&batch).unwrap().filter(&predicate).unwrap().to_record_batch().unwrap();
            prop_assert_eq!(&got, &want, "{} resident filter {}", name, predicate);
            // Sorting by the integers carries the strings (across chunks, with small ones).
            let got = engine.sort(&batch, &sort_keys, None).unwrap();
            prop_assert_eq!(&got, &want_sorted, "{} sort", name);
        }
    }
}
