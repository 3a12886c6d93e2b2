//! Property tests for group-by on the CPU path, against a plain reference: a `BTreeMap`
//! from each row's key (its arrow row-format bytes) to its group, and per group the kept
//! rows, from which counts, wrapping integer sums and min/max (by row-format order) follow
//! directly, and float sums, means, variances and standard deviations are checked against
//! exact rational values (num-bigint): the result must be the exact value correctly rounded
//! (stddev: within one ulp).
//!
//! Random batches (every type the engine uploads, plus a dictionary column), 1 to 3 keys,
//! cardinality from one group to all rows distinct, nulls in keys and values, NaN and -0.0
//! keys (NaN == NaN by bits, -0.0 != 0.0), sliced inputs, every aggregate over columns and
//! expressions, with and without filters, first-appearance and sorted output.
//!
//! The values of an aggregate's expression are taken from the crate's own evaluator (as
//! `min` over one-row groups keyed by a row id); filter masks from `Engine::evaluate`.
//!
//! The GPU path is held to the CPU path bit for bit: on every adapter, random batches and
//! keys (dictionary keys included), any aggregates over columns or expressions, with or
//! without filters, on `Backend::Gpu`: in one chunk, in chunks of a few hundred rows
//! (partial aggregates merged), and streamed through a `GroupByAccumulator` in random
//! pieces. The CPU path's streamed result and its result on several threads are held to
//! its one-batch result too.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::array::*;
use arrow::compute::{cast, take};
use arrow::datatypes::{DataType, Float64Type, Int64Type, UInt64Type};
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, Rows, SortField};
use arrow_wgpu::{col, Agg, AggFunc, Engine, Error, GroupByOptions};
use common::gen::{self, Rng};
use num_bigint::BigInt;
use proptest::prelude::*;

fn rows_of(columns: &[ArrayRef]) -> Rows {
    let fields = columns
        .iter()
        .map(|c| SortField::new(c.data_type().clone()))
        .collect();
    RowConverter::new(fields)
        .unwrap()
        .convert_columns(columns)
        .unwrap()
}

fn is_int(dt: &DataType) -> bool {
    dt.is_integer()
}

fn is_numeric(dt: &DataType) -> bool {
    dt.is_integer() || matches!(dt, DataType::Float32 | DataType::Float64)
}

/// A random batch with 1..=3 key columns of chosen cardinality, a row id and a dictionary
/// column; returns it and the key names.
fn random_batch(rng: &mut Rng, rows: usize) -> (RecordBatch, Vec<String>) {
    let base = gen::batch(rng, rows);
    // String, decimal and dictionary columns that aggregates and filters read only for
    // their null masks (the shape that once bound the wrong number of GPU buffers).
    let base = gen::with_mask_columns(rng, &base, true);
    let mut fields: Vec<(String, ArrayRef)> = base
        .schema()
        .fields()
        .iter()
        .zip(base.columns())
        .map(|(f, c)| (f.name().clone(), c.clone()))
        .collect();
    let null_p = *rng.pick(&[0.0, 0.2, 1.0]);
    fields.push(("dict".into(), gen::dictionary_column(rng, rows, null_p)));
    fields.push((
        "rid".into(),
        Arc::new(UInt32Array::from_iter_values(0..rows as u32)),
    ));
    let nkeys = 1 + rng.below(3) as usize;
    let mut keys = Vec::new();
    for _ in 0..nkeys {
        let i = rng.below(fields.len() as u64 - 1) as usize; // not rid, which is all distinct
        keys.push(fields[i].0.clone());
    }
    // Cardinality: as generated (small domains, or wide values), one group, a few, or all
    // rows distinct (the row id as a key).
    match rng.below(4) {
        0 if rows > 0 => {
            let pick = rng.below(rows as u64) as u32;
            for (name, c) in fields.iter_mut() {
                if keys.contains(name) {
                    *c = take(c.as_ref(), &UInt32Array::from(vec![pick; rows]), None).unwrap();
                }
            }
        }
        1 if rows > 0 => {
            let k = (1 + rng.below(4) as u32).min(rows as u32);
            let idx: Vec<u32> = (0..rows).map(|_| rng.below(k as u64) as u32).collect();
            for (name, c) in fields.iter_mut() {
                if keys.contains(name) {
                    *c = take(c.as_ref(), &UInt32Array::from(idx.clone()), None).unwrap();
                }
            }
        }
        2 => keys.push("rid".into()),
        _ => {}
    }
    (RecordBatch::try_from_iter(fields).unwrap(), keys)
}

fn random_agg(rng: &mut Rng, full: &RecordBatch) -> Agg {
    let schema = full.schema();
    // The expression generators know the engine's uploadable types: leave the dictionary out.
    let plain: Vec<usize> = (0..schema.fields().len())
        .filter(|i| {
            !matches!(schema.field(*i).data_type(), DataType::Dictionary(..))
                && schema.field(*i).name() != "rid"
        })
        .collect();
    let batch = &full.project(&plain).unwrap();
    let schema = batch.schema();
    let numeric: Vec<DataType> = schema
        .fields()
        .iter()
        .map(|f| f.data_type().clone())
        .filter(is_numeric)
        .collect();
    let funcs = [
        AggFunc::CountStar,
        AggFunc::Count,
        AggFunc::CountDistinct,
        AggFunc::Sum,
        AggFunc::Min,
        AggFunc::Max,
        AggFunc::Mean,
        AggFunc::VarSamp,
        AggFunc::VarPop,
        AggFunc::StddevSamp,
        AggFunc::StddevPop,
    ];
    let mut func = *rng.pick(&funcs);
    let number_only = |f: AggFunc| {
        !matches!(
            f,
            AggFunc::CountStar
                | AggFunc::Count
                | AggFunc::CountDistinct
                | AggFunc::Min
                | AggFunc::Max
        )
    };
    if number_only(func) && numeric.is_empty() {
        func = AggFunc::Max;
    }
    let needs_number = number_only(func);
    let expr = if needs_number || (!numeric.is_empty() && rng.chance(0.5)) {
        // Lean to floats, whose exact sums are the point.
        let floats: Vec<DataType> = numeric.iter().filter(|t| !is_int(t)).cloned().collect();
        let dt = if !floats.is_empty() && rng.chance(0.6) {
            rng.pick(&floats).clone()
        } else {
            rng.pick(&numeric).clone()
        };
        let depth = if rng.chance(0.6) { 0 } else { 2 };
        gen::value_expr(rng, batch, &dt, depth)
    } else {
        let n = schema.fields().len() as u64;
        col(schema.field(rng.below(n) as usize).name().clone())
    };
    // A string column is only counted (its mask); min, max and count(DISTINCT) of
    // strings run on the CPU only.
    let is_string =
        |e: &arrow_wgpu::Expr| matches!(e, arrow_wgpu::Expr::Column(name) if name == "s");
    if is_string(&expr) && matches!(func, AggFunc::Min | AggFunc::Max | AggFunc::CountDistinct) {
        func = AggFunc::Count;
    }
    // Now and then, a count of any column, the dictionary too: its mask only.
    let expr = if func == AggFunc::Count && rng.chance(0.3) {
        col(rng.pick(&["s", "d", "dict_m"]).to_string())
    } else {
        expr
    };
    let agg = match func {
        AggFunc::CountStar => Agg::count_star(),
        AggFunc::Count => Agg::count(expr),
        AggFunc::CountDistinct => Agg::count_distinct(expr),
        AggFunc::Sum => Agg::sum(expr),
        AggFunc::Min => Agg::min(expr),
        AggFunc::Max => Agg::max(expr),
        AggFunc::Mean => Agg::mean(expr),
        AggFunc::VarSamp => Agg::var_samp(expr),
        AggFunc::VarPop => Agg::var_pop(expr),
        AggFunc::StddevSamp => Agg::stddev_samp(expr),
        AggFunc::StddevPop => Agg::stddev_pop(expr),
    };
    if rng.chance(0.4) {
        // Filters may test the dictionary's mask too.
        let with_dict: Vec<usize> = (0..full.num_columns())
            .filter(|i| !["dict", "rid"].contains(&full.schema().field(*i).name().as_str()))
            .collect();
        agg.filter(gen::predicate(rng, &full.project(&with_dict).unwrap(), 2))
    } else {
        agg
    }
}

/// Whether an aggregate reads the dictionary column `dict_m` (not a key): the GPU path
/// holds no dictionary values, so `Backend::Gpu` refuses and `Auto` runs the CPU.
fn reads_dictionary(aggs: &[Agg]) -> bool {
    aggs.iter().any(|a| format!("{a:?}").contains("dict_m"))
}

/// An f64 as an integer count of 2^-1075 (every finite f64 is an even one).
fn units(x: f64) -> BigInt {
    if x.is_infinite() {
        // Only for the bounds of the finite range: ±2^1024.
        let v = BigInt::from(1) << (1024 + 1075);
        return if x > 0.0 { v } else { -v };
    }
    let bits = x.to_bits();
    let field = ((bits >> 52) & 0x7ff) as i64;
    let frac = bits & ((1 << 52) - 1);
    let m = if field == 0 { frac } else { frac | (1 << 52) };
    let v = BigInt::from(m) << (field.max(1) - 1075 + 1075) as usize;
    if bits >> 63 == 1 {
        -v
    } else {
        v
    }
}

fn next_up(x: f64) -> f64 {
    if x == f64::MAX {
        f64::INFINITY
    } else {
        x.next_up()
    }
}

fn next_down(x: f64) -> f64 {
    if x == -f64::MAX {
        f64::NEG_INFINITY
    } else {
        x.next_down()
    }
}

/// Whether `r` is the exact value `num / den` (den > 0) rounded to nearest, ties to even.
fn correctly_rounded(r: f64, num: &BigInt, den: &BigInt) -> bool {
    let exact = num << 1075usize; // compare x·2^1075·den with exact·2^1075·den
    let scaled = |x: f64| units(x) * den;
    if r.is_nan() {
        return false;
    }
    if r == f64::INFINITY {
        // At or above the midpoint of MAX and 2^1024.
        return exact >= (units(f64::MAX) + units(f64::INFINITY)) * den / 2;
    }
    if r == f64::NEG_INFINITY {
        return exact <= (units(-f64::MAX) + units(f64::NEG_INFINITY)) * den / 2;
    }
    let lo = (scaled(next_down(r)) + scaled(r)) / 2;
    let hi = (scaled(r) + scaled(next_up(r))) / 2;
    let even = r.to_bits() & 1 == 0;
    (lo < exact || (lo == exact && even)) && (exact < hi || (exact == hi && even))
}

/// Whether sqrt(num / den) lies within one ulp of `r`.
fn within_ulp_of_sqrt(r: f64, num: &BigInt, den: &BigInt) -> bool {
    // r' ≤ sqrt(E) ≤ r'' ⇔ r'^2 ≤ E ≤ r''^2 (r ≥ 0), in units of 2^-2150.
    let e = num << 2150usize;
    let sq = |x: f64| {
        let u = units(x.max(0.0));
        &u * &u * den
    };
    r >= 0.0 && sq(next_down(r)) <= e && e <= sq(next_up(r))
}

/// The values an aggregate sees, as the crate evaluates its expression.
fn expr_values(engine: &Engine, batch: &RecordBatch, agg: &Agg) -> ArrayRef {
    let out = engine
        .group_by(batch, &["rid"], &[Agg::min(agg.expr().unwrap().clone())])
        .unwrap();
    out.column(1).clone()
}

fn check(engine: &Engine, batch: &RecordBatch, keys: &[String], aggs: &[Agg], out: &RecordBatch) {
    let rows = batch.num_rows();
    let key_cols: Vec<ArrayRef> = keys
        .iter()
        .map(|k| batch.column_by_name(k).unwrap().clone())
        .collect();
    // Reference groups, in order of first appearance.
    let mut index: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    let mut members: Vec<Vec<usize>> = Vec::new();
    if keys.is_empty() {
        members.push((0..rows).collect());
    } else {
        let key_rows = rows_of(&key_cols);
        for i in 0..rows {
            let k = key_rows.row(i).as_ref().to_vec();
            let g = *index.entry(k).or_insert_with(|| {
                members.push(Vec::new());
                members.len() - 1
            });
            members[g].push(i);
        }
    }
    assert_eq!(out.num_rows(), members.len(), "group count");
    assert_eq!(out.num_columns(), keys.len() + aggs.len());
    if !keys.is_empty() {
        let out_rows = rows_of(&out.columns()[..keys.len()]);
        let in_rows = rows_of(&key_cols);
        for (g, m) in members.iter().enumerate() {
            assert_eq!(out_rows.row(g), in_rows.row(m[0]), "key of group {g}");
        }
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(
                out.column(i).data_type(),
                batch.column_by_name(k).unwrap().data_type()
            );
        }
    }
    for (a, agg) in aggs.iter().enumerate() {
        let result = out.column(keys.len() + a);
        assert_eq!(out.schema().field(keys.len() + a).name(), &agg.name());
        let mask = agg.predicate().map(|p| engine.evaluate(batch, p).unwrap());
        let passes = |i: usize| mask.as_ref().is_none_or(|m| m.is_valid(i) && m.value(i));
        let values = agg.expr().map(|_| expr_values(engine, batch, agg));
        let prepared = values.as_ref().map(Prepared::new);
        for (g, m) in members.iter().enumerate() {
            let kept: Vec<usize> = m
                .iter()
                .copied()
                .filter(|&i| passes(i))
                .filter(|&i| {
                    agg.func() == AggFunc::CountStar || values.as_ref().unwrap().is_valid(i)
                })
                .collect();
            let ctx = format!(
                "{} group {g}: {} rows, first {:?}",
                agg.name(),
                kept.len(),
                &kept[..kept.len().min(8)]
            );
            check_one(agg.func(), prepared.as_ref(), &kept, result, g, &ctx);
        }
    }
}

/// An aggregate's values, cast and encoded once.
struct Prepared {
    values: ArrayRef,
    f64s: Float64Array,
    i64s: Option<Int64Array>,
    u64s: Option<UInt64Array>,
    rows: Rows,
}

impl Prepared {
    fn new(values: &ArrayRef) -> Prepared {
        let dt = values.data_type();
        let numeric = is_numeric(dt);
        Prepared {
            values: values.clone(),
            f64s: if numeric {
                cast(values, &DataType::Float64)
                    .unwrap()
                    .as_primitive::<Float64Type>()
                    .clone()
            } else {
                Float64Array::from(Vec::<f64>::new())
            },
            i64s: dt.is_signed_integer().then(|| {
                cast(values, &DataType::Int64)
                    .unwrap()
                    .as_primitive::<Int64Type>()
                    .clone()
            }),
            u64s: dt.is_unsigned_integer().then(|| {
                cast(values, &DataType::UInt64)
                    .unwrap()
                    .as_primitive::<UInt64Type>()
                    .clone()
            }),
            rows: rows_of(std::slice::from_ref(values)),
        }
    }
}

fn check_one(
    func: AggFunc,
    prepared: Option<&Prepared>,
    kept: &[usize],
    result: &ArrayRef,
    g: usize,
    ctx: &str,
) {
    let n = kept.len();
    if matches!(func, AggFunc::CountStar | AggFunc::Count) {
        assert_eq!(result.data_type(), &DataType::Int64, "{ctx}");
        assert_eq!(
            result.as_primitive::<Int64Type>().value(g),
            n as i64,
            "{ctx}"
        );
        return;
    }
    let p = prepared.unwrap();
    if func == AggFunc::CountDistinct {
        // Distinct by the row format: a BTreeSet of the kept values' rows.
        let distinct: BTreeSet<_> = kept.iter().map(|&i| p.rows.row(i)).collect();
        assert_eq!(result.data_type(), &DataType::Int64, "{ctx}");
        assert_eq!(
            result.as_primitive::<Int64Type>().value(g),
            distinct.len() as i64,
            "{ctx}"
        );
        return;
    }
    let dt = p.values.data_type().clone();
    let null_expected =
        n == 0 || (n == 1 && matches!(func, AggFunc::VarSamp | AggFunc::StddevSamp));
    assert_eq!(result.is_null(g), null_expected, "{ctx}: null");
    if null_expected {
        return;
    }
    match func {
        AggFunc::Min | AggFunc::Max => {
            assert_eq!(result.data_type(), &dt, "{ctx}");
            let vr = &p.rows;
            let best = kept
                .iter()
                .map(|&i| vr.row(i))
                .reduce(|x, y| {
                    if (func == AggFunc::Min) == (y < x) {
                        y
                    } else {
                        x
                    }
                })
                .unwrap();
            let got = rows_of(&[result.slice(g, 1)]);
            assert_eq!(got.row(0), best, "{ctx}");
        }
        AggFunc::Sum if is_int(&dt) => {
            if let Some(v) = &p.i64s {
                let s = kept.iter().fold(0i64, |s, &i| s.wrapping_add(v.value(i)));
                assert_eq!(result.as_primitive::<Int64Type>().value(g), s, "{ctx}");
            } else {
                let v = p.u64s.as_ref().unwrap();
                let s = kept.iter().fold(0u64, |s, &i| s.wrapping_add(v.value(i)));
                assert_eq!(result.as_primitive::<UInt64Type>().value(g), s, "{ctx}");
            }
        }
        _ => {
            assert_eq!(result.data_type(), &DataType::Float64, "{ctx}");
            let r = result.as_primitive::<Float64Type>().value(g);
            let v = &p.f64s;
            // Integers exactly (an i64/u64 cast to f64 would round).
            let exact_of = |i: usize| -> BigInt {
                if let Some(x) = &p.i64s {
                    BigInt::from(x.value(i)) << 1075usize
                } else if let Some(x) = &p.u64s {
                    BigInt::from(x.value(i)) << 1075usize
                } else {
                    units(v.value(i))
                }
            };
            let xs: Vec<f64> = kept.iter().map(|&i| v.value(i)).collect();
            let nan = xs.iter().any(|x| x.is_nan())
                || (xs.contains(&f64::INFINITY) && xs.contains(&f64::NEG_INFINITY));
            let inf = xs.iter().find(|x| x.is_infinite()).copied();
            let variance = !matches!(func, AggFunc::Sum | AggFunc::Mean);
            if nan || (variance && inf.is_some()) {
                assert_eq!(
                    r.to_bits(),
                    0x7ff8_0000_0000_0000,
                    "{ctx}: canonical NaN, got {r}"
                );
                return;
            }
            if let Some(inf) = inf {
                assert_eq!(r, inf, "{ctx}");
                return;
            }
            // Exact sums in units of 2^-1075 (Σx) and 2^-2150 (Σx²).
            let s1: BigInt = kept.iter().map(|&i| exact_of(i)).sum();
            let unit = BigInt::from(1) << 1075usize;
            let nb = BigInt::from(n as u64);
            let (num, den, root) = match func {
                AggFunc::Sum => (s1.clone(), unit.clone(), false),
                AggFunc::Mean => (s1.clone(), &unit * &nb, false),
                _ => {
                    let s2: BigInt = kept.iter().map(|&i| exact_of(i).pow(2)).sum();
                    let ddof = matches!(func, AggFunc::VarSamp | AggFunc::StddevSamp) as u64;
                    let num = &nb * s2 - &s1 * &s1;
                    let den = &unit * &unit * &nb * BigInt::from(n as u64 - ddof);
                    let root = matches!(func, AggFunc::StddevSamp | AggFunc::StddevPop);
                    (num, den, root)
                }
            };
            if num == BigInt::from(0) {
                assert_eq!(r.to_bits(), 0, "{ctx}: an exact zero is +0.0");
            } else if root {
                assert!(
                    within_ulp_of_sqrt(r, &num, &den),
                    "{ctx}: {r} not within 1 ulp"
                );
            } else {
                assert!(
                    correctly_rounded(r, &num, &den),
                    "{ctx}: {r} not correctly rounded"
                );
            }
            // At least as accurate as a left-to-right sum.
            if func == AggFunc::Sum && !is_int(&dt) {
                let naive: f64 = xs.iter().sum();
                if naive.is_finite() {
                    let err = |x: f64| (units(x) * &den - (&num << 1075usize)).magnitude().clone();
                    assert!(err(r) <= err(naive), "{ctx}: {r} worse than {naive}");
                }
            }
        }
    }
}

fn rows_strategy() -> impl Strategy<Value = usize> {
    prop_oneof![
        5 => 0usize..60,
        3 => 60usize..1_000,
        1 => 1_000usize..20_000,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    #[test]
    fn cpu_group_by_matches_reference(seed in any::<u64>(), rows in rows_strategy()) {
        let mut rng = Rng(seed);
        let (batch, mut keys) = random_batch(&mut rng, rows);
        if rng.chance(0.1) {
            keys.clear(); // a global aggregate
        }
        let naggs = rng.below(5) as usize + usize::from(keys.is_empty());
        let aggs: Vec<Agg> = (0..naggs).map(|_| random_agg(&mut rng, &batch)).collect();
        let engine = common::cpu();
        let key_refs: Vec<&str> = keys.iter().map(|s| s.as_str()).collect();
        let out = match engine.group_by(&batch, &key_refs, &aggs) {
            Ok(out) => out,
            // Integer division in an expression may divide by zero (as arrow's `div`).
            Err(Error::DivideByZero | Error::ArithmeticOverflow(_))
                if aggs.iter().any(|a| a.to_string_contains_div()) => return Ok(()),
            Err(e) => panic!("seed {seed}: {e}"),
        };
        check(&engine, &batch, &keys, &aggs, &out);
        // Streamed in random pieces: the same output.
        let streamed = streamed(&engine, &mut rng, &batch, &key_refs, &aggs).unwrap();
        prop_assert_eq!(&streamed, &out, "seed {}: streamed", seed);
        // On 1 to 4 threads of a few rows each: the same output.
        let threads = 1 + rng.below(4) as usize;
        let threaded = Engine::with_options(arrow_wgpu::EngineOptions {
            backend: arrow_wgpu::Backend::Cpu,
            cpu_threads: Some(threads),
            cpu_rows_per_thread: Some(1 + rng.below(50) as usize),
            ..Default::default()
        })
        .unwrap()
        .group_by(&batch, &key_refs, &aggs)
        .unwrap();
        prop_assert_eq!(&threaded, &out, "seed {}: {} threads", seed, threads);

        // Sorted output: the same groups, ordered by the keys' row format (nulls first).
        let sorted = engine.group_by_with(&batch, &key_refs, &aggs, GroupByOptions::sorted()).unwrap();
        if keys.is_empty() {
            prop_assert_eq!(&sorted, &out);
        } else {
            let r = rows_of(&out.columns()[..keys.len()]);
            let mut order: Vec<u32> = (0..out.num_rows() as u32).collect();
            order.sort_by(|a, b| r.row(*a as usize).cmp(&r.row(*b as usize)));
            let expected = arrow::compute::take_record_batch(&out, &UInt32Array::from(order)).unwrap();
            prop_assert_eq!(sorted, expected);
        }
    }
}

trait ContainsDiv {
    fn to_string_contains_div(&self) -> bool;
}

impl ContainsDiv for Agg {
    fn to_string_contains_div(&self) -> bool {
        self.expr().is_some_and(|e| e.to_string().contains(" / "))
            || self
                .predicate()
                .is_some_and(|e| e.to_string().contains(" / "))
    }
}

/// A float with a random exponent from a window, or a special value, or the negation of
/// an earlier one (cancellation).
fn float_value(rng: &mut Rng, window: (i32, i32), earlier: &[f64]) -> f64 {
    match rng.below(12) {
        0 => *rng.pick(&[0.0, -0.0, f64::MAX, -f64::MAX, 5e-324, -5e-324, 1e308]),
        1 if rng.chance(0.2) => *rng.pick(&[f64::NAN, f64::INFINITY, f64::NEG_INFINITY]),
        2 if !earlier.is_empty() => -*rng.pick(earlier),
        3 => f64::from_bits(rng.next()),
        _ => {
            let (lo, hi) = window;
            let e = lo + rng.below((hi - lo + 1) as u64) as i32;
            let m = (rng.next() >> 11) as f64 / (1u64 << 53) as f64 + 1.0;
            let x = m * 2f64.powi(e);
            if rng.chance(0.5) {
                -x
            } else {
                x
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Sums, means and variances of floats over groups of many rows (exponents narrow or
    /// spread over the whole range, subnormals, overflow, cancellation, NaN and infinities,
    /// Float32 too): correctly rounded against exact rationals.
    #[test]
    fn float_aggregates_are_exact(seed in any::<u64>(), rows in 0usize..3_000) {
        let mut rng = Rng(seed);
        let window = *rng.pick(&[(-3, 3), (-60, 60), (-1074, 1023), (1000, 1023), (-1074, -1000)]);
        let mut xs: Vec<f64> = Vec::with_capacity(rows);
        // Sometimes integers around 2^53: exact sums then often lie halfway between two
        // floats, where round-to-nearest-even decides.
        let near_2_53 = rng.chance(0.3);
        for _ in 0..rows {
            let x = if near_2_53 {
                match rng.below(4) {
                    0 => *rng.pick(&[9007199254740992.0, -9007199254740992.0, 18014398509481984.0]),
                    _ => rng.below(15) as f64 - 7.0,
                }
            } else {
                float_value(&mut rng, window, &xs)
            };
            xs.push(x);
        }
        let null_p = *rng.pick(&[0.0, 0.1]);
        let values: Vec<Option<f64>> = xs.iter().map(|x| (!rng.chance(null_p)).then_some(*x)).collect();
        let groups = 1 + rng.below(8);
        let keys: Vec<u8> = (0..rows).map(|_| rng.below(groups) as u8).collect();
        let f32s: Vec<Option<f32>> = values.iter().map(|v| v.map(|x| x as f32)).collect();
        let batch = RecordBatch::try_from_iter([
            ("k", Arc::new(UInt8Array::from(keys)) as ArrayRef),
            ("x", Arc::new(Float64Array::from(values)) as ArrayRef),
            ("y", Arc::new(Float32Array::from(f32s)) as ArrayRef),
            ("rid", Arc::new(UInt32Array::from_iter_values(0..rows as u32)) as ArrayRef),
        ]).unwrap();
        let v = if rng.chance(0.8) { col("x") } else { col("y") };
        let mut aggs = vec![
            Agg::sum(v.clone()),
            Agg::mean(v.clone()),
            Agg::var_samp(v.clone()),
            Agg::var_pop(v.clone()),
            Agg::stddev_samp(v.clone()),
            Agg::stddev_pop(v.clone()),
        ];
        if rng.chance(0.5) {
            aggs = aggs.into_iter().map(|a| a.filter(col("rid").lt(arrow_wgpu::lit(rows as u32 / 2)))).collect();
        }
        let engine = common::cpu();
        let out = engine.group_by(&batch, &["k"], &aggs).unwrap();
        check(&engine, &batch, &["k".to_string()], &aggs, &out);
        // The same bits whatever the order of the rows.
        let reversed = arrow::compute::take_record_batch(
            &batch,
            &UInt32Array::from_iter_values((0..rows as u32).rev()),
        ).unwrap();
        let again = engine.group_by_with(&reversed, &["k"], &aggs, GroupByOptions::sorted()).unwrap();
        let sorted = engine.group_by_with(&batch, &["k"], &aggs, GroupByOptions::sorted()).unwrap();
        prop_assert_eq!(again, sorted);
    }
}

/// Per adapter: a GPU engine, and one whose chunks are a few hundred rows, so that larger
/// batches are grouped chunk by chunk and their partial aggregates merged.
/// And `Backend::Auto` on the same adapter, named (`Auto` takes a software adapter only
/// when it is named).
fn gpu_engines() -> &'static Vec<(String, Engine, Engine, Engine)> {
    static E: std::sync::OnceLock<Vec<(String, Engine, Engine, Engine)>> =
        std::sync::OnceLock::new();
    E.get_or_init(|| {
        common::gpu_engines(None)
            .into_iter()
            .map(|(name, gpu)| {
                let on_this = |backend, max_chunk_bytes| {
                    let adapter = gpu.adapter().unwrap();
                    Engine::with_options(arrow_wgpu::EngineOptions {
                        backend,
                        wgpu_backends: adapter.backend.into(),
                        adapter_name: Some(adapter.name.clone()),
                        max_chunk_bytes,
                        ..Default::default()
                    })
                    .unwrap()
                };
                let chunked = on_this(arrow_wgpu::Backend::Gpu, Some(4096));
                let auto = on_this(arrow_wgpu::Backend::Auto, None);
                (name, gpu, chunked, auto)
            })
            .collect()
    })
}

/// Whether an error is one an expression's arithmetic raises (as arrow's `div`).
fn arithmetic(e: &Error) -> bool {
    matches!(e, Error::DivideByZero | Error::ArithmeticOverflow(_))
}

/// `batch` cut into random pieces (some empty), pushed through a `GroupByAccumulator`.
fn streamed(
    engine: &Engine,
    rng: &mut Rng,
    batch: &RecordBatch,
    keys: &[&str],
    aggs: &[Agg],
) -> Result<RecordBatch, Error> {
    let mut acc =
        engine.group_by_accumulator(batch.schema(), keys, aggs, GroupByOptions::default())?;
    let mut at = 0;
    while at < batch.num_rows() {
        let len = (rng.below(batch.num_rows() as u64 / 2 + 2) as usize).min(batch.num_rows() - at);
        acc.push(&batch.slice(at, len))?;
        at += len;
    }
    acc.finish()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Random keys (dictionary keys included) and any aggregates, over columns or
    /// expressions, with or without filters: on `Backend::Gpu`, in one chunk or many, and
    /// streamed batch by batch, the output equals the CPU path's bit for bit.
    #[test]
    fn gpu_group_by_equals_cpu(seed in any::<u64>(), rows in rows_strategy()) {
        let mut rng = Rng(seed);
        let (batch, mut keys) = random_batch(&mut rng, rows);
        if rng.chance(0.1) {
            keys.clear(); // a global aggregate
        }
        let key_refs: Vec<&str> = keys.iter().map(|s| s.as_str()).collect();
        let naggs = 1 + rng.below(4) as usize;
        let aggs: Vec<Agg> = (0..naggs).map(|_| random_agg(&mut rng, &batch)).collect();
        let want = common::cpu().group_by(&batch, &key_refs, &aggs);
        for (name, gpu, chunked, auto) in gpu_engines() {
            if reads_dictionary(&aggs) {
                // The GPU refuses (below); Auto answers on the CPU, the same bits.
                let got = auto.group_by(&batch, &key_refs, &aggs);
                match (&got, &want) {
                    (Ok(g), Ok(w)) => prop_assert_eq!(g, w, "{} auto: aggs {:?}", name, aggs),
                    (Err(g), Err(w)) if arithmetic(g) && arithmetic(w) => {}
                    _ => prop_assert!(false, "{} auto: {:?} vs cpu {:?}", name, got.err(), want.as_ref().err()),
                }
            }
            let runs = [
                ("one chunk", gpu.group_by(&batch, &key_refs, &aggs)),
                ("chunked", chunked.group_by(&batch, &key_refs, &aggs)),
                ("streamed", streamed(gpu, &mut rng, &batch, &key_refs, &aggs)),
            ];
            for (how, got) in runs {
                match (&got, &want) {
                    (Ok(g), Ok(w)) => prop_assert_eq!(g, w, "{} {}: keys {:?}, aggs {:?}", name, how, keys, aggs),
                    (Err(g), Err(w)) if arithmetic(g) && arithmetic(w) => {}
                    (Err(g), _) if g.is_gpu_side() && reads_dictionary(&aggs) => {}
                    _ => prop_assert!(false, "{} {}: {:?} vs cpu {:?} (keys {:?}, aggs {:?})", name, how, got.err(), want.as_ref().err(), keys, aggs),
                }
            }
        }
    }
}
