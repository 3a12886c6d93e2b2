//! Many batches through `GroupByAccumulator`: 200 batches with min/max (ints, floats with
//! NaN and -0.0, strings) and count(DISTINCT), keys that keep appearing and new ones in
//! every batch, against answers computed here row by row, on the CPU and every GPU adapter.
//! The merge of min/max and count(DISTINCT) states is one pass over all the parts (see
//! `Merger` in src/aggregate.rs), so the 200 batches cost their total size.

use crate::common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::array::*;
use arrow::record_batch::RecordBatch;
use arrow_wgpu::{col, Agg, Engine, GroupByOptions};
use common::gen::Rng;

const BATCHES: usize = 200;
const ROWS: usize = 300;

fn batches() -> Vec<RecordBatch> {
    let mut rng = Rng(0x5eed_0200);
    let words = ["", "a", "b", "ab", "zz", "é"];
    (0..BATCHES)
        .map(|b| {
            // Keys 0..40 recur in every batch; 40 + 5b.. are new in batch b.
            let k: Int64Array = (0..ROWS)
                .map(|i| {
                    if rng.chance(0.05) {
                        None
                    } else if i % 3 == 0 {
                        Some(40 + 5 * b as i64 + rng.below(5) as i64)
                    } else {
                        Some(rng.below(40) as i64)
                    }
                })
                .collect();
            let x: Int32Array = (0..ROWS)
                .map(|_| (!rng.chance(0.1)).then(|| rng.below(2001) as i32 - 1000))
                .collect();
            let f: Float64Array = (0..ROWS)
                .map(|_| {
                    (!rng.chance(0.1)).then(|| match rng.below(20) {
                        0 => f64::NAN,
                        1 => -0.0,
                        2 => 0.0,
                        _ => rng.below(1000) as f64 / 8.0 - 60.0,
                    })
                })
                .collect();
            let s: StringArray = (0..ROWS)
                .map(|_| (!rng.chance(0.1)).then(|| *rng.pick(&words)))
                .collect();
            RecordBatch::try_from_iter([
                ("k", Arc::new(k) as ArrayRef),
                ("x", Arc::new(x) as ArrayRef),
                ("f", Arc::new(f) as ArrayRef),
                ("s", Arc::new(s) as ArrayRef),
            ])
            .unwrap()
        })
        .collect()
}

/// Per key (in order of first appearance): min x, max x, min f, max f (total order), max
/// s, count(DISTINCT x), count(DISTINCT s).
type Want = (
    Vec<Option<i64>>,
    Vec<Option<i32>>,
    Vec<Option<i32>>,
    Vec<Option<u64>>,
    Vec<Option<u64>>,
    Vec<Option<String>>,
    Vec<i64>,
    Vec<i64>,
);

fn want(batches: &[RecordBatch]) -> Want {
    let mut order: Vec<Option<i64>> = Vec::new();
    let mut at: HashMap<Option<i64>, usize> = HashMap::new();
    let mut xs: Vec<Vec<i32>> = Vec::new();
    let mut fs: Vec<Vec<f64>> = Vec::new();
    let mut ss: Vec<Vec<String>> = Vec::new();
    for b in batches {
        let k = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
        let x = b.column(1).as_any().downcast_ref::<Int32Array>().unwrap();
        let f = b.column(2).as_any().downcast_ref::<Float64Array>().unwrap();
        let s = b.column(3).as_any().downcast_ref::<StringArray>().unwrap();
        for i in 0..b.num_rows() {
            let key = k.is_valid(i).then(|| k.value(i));
            let g = *at.entry(key).or_insert_with(|| {
                order.push(key);
                xs.push(Vec::new());
                fs.push(Vec::new());
                ss.push(Vec::new());
                order.len() - 1
            });
            if x.is_valid(i) {
                xs[g].push(x.value(i));
            }
            if f.is_valid(i) {
                fs[g].push(f.value(i));
            }
            if s.is_valid(i) {
                ss[g].push(s.value(i).to_string());
            }
        }
    }
    let bits = |v: Option<&f64>| v.map(|v| v.to_bits());
    (
        order,
        xs.iter().map(|v| v.iter().min().copied()).collect(),
        xs.iter().map(|v| v.iter().max().copied()).collect(),
        fs.iter()
            .map(|v| bits(v.iter().min_by(|a, b| a.total_cmp(b))))
            .collect(),
        fs.iter()
            .map(|v| bits(v.iter().max_by(|a, b| a.total_cmp(b))))
            .collect(),
        ss.iter().map(|v| v.iter().max().cloned()).collect(),
        xs.iter()
            .map(|v| v.iter().collect::<HashSet<_>>().len() as i64)
            .collect(),
        ss.iter()
            .map(|v| v.iter().collect::<HashSet<_>>().len() as i64)
            .collect(),
    )
}

#[test]
fn two_hundred_batches_of_min_max_and_count_distinct() {
    let batches = batches();
    let want = want(&batches);
    for (name, engine) in common::all_engines() {
        let engine: &Engine = &engine;
        // The GPU's kernels don't take max or count(DISTINCT) of strings: the same
        // positions hold max(x) and count(DISTINCT x) again there.
        let strings = name == "cpu";
        let aggs = [
            Agg::min(col("x")),
            Agg::max(col("x")),
            Agg::min(col("f")),
            Agg::max(col("f")),
            if strings {
                Agg::max(col("s"))
            } else {
                Agg::max(col("x")).alias("again")
            },
            Agg::count_distinct(col("x")),
            if strings {
                Agg::count_distinct(col("s"))
            } else {
                Agg::count_distinct(col("x")).alias("again_n")
            },
        ];
        let mut acc = engine
            .group_by_accumulator(
                batches[0].schema(),
                &["k"],
                &aggs,
                GroupByOptions::default(),
            )
            .unwrap();
        for b in &batches {
            acc.push(b).unwrap();
        }
        let out = acc.finish().unwrap();
        let floats = |c: usize| -> Vec<Option<u64>> {
            let a = out
                .column(c)
                .as_any()
                .downcast_ref::<Float64Array>()
                .unwrap();
            a.iter().map(|v| v.map(f64::to_bits)).collect()
        };
        let ints = |c: usize| -> Vec<Option<i32>> {
            let a = out.column(c).as_any().downcast_ref::<Int32Array>().unwrap();
            a.iter().collect()
        };
        let counts = |c: usize| -> Vec<i64> {
            let a = out.column(c).as_any().downcast_ref::<Int64Array>().unwrap();
            a.values().to_vec()
        };
        let keys: Vec<Option<i64>> = out
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(keys, want.0, "{name}: keys in order of first appearance");
        assert_eq!(ints(1), want.1, "{name}: min(x)");
        assert_eq!(ints(2), want.2, "{name}: max(x)");
        assert_eq!(floats(3), want.3, "{name}: min(f)");
        assert_eq!(floats(4), want.4, "{name}: max(f)");
        if !strings {
            assert_eq!(ints(5), want.2, "{name}: max(x)");
            assert_eq!(counts(6), want.6, "{name}: count(DISTINCT x)");
            assert_eq!(counts(7), want.6, "{name}: count(DISTINCT x)");
            continue;
        }
        let smax: Vec<Option<String>> =
            arrow::compute::cast(out.column(5), &arrow::datatypes::DataType::Utf8)
                .unwrap()
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .iter()
                .map(|v| v.map(str::to_string))
                .collect();
        assert_eq!(smax, want.5, "{name}: max(s)");
        assert_eq!(counts(6), want.6, "{name}: count(DISTINCT x)");
        assert_eq!(counts(7), want.7, "{name}: count(DISTINCT s)");
    }
}

/// One batch of a stream whose groups a GPU keeps in one table across batches: keys of
/// several fixed-width types (an Int32 with nulls in some batches only, a Float64 with NaN,
/// -0.0, 0.0 and nulls, an Int64 and a UInt16 that can't be null), values `x` (Int64 near its limits at times,
/// nulls in some batches), `y` (0 in the rows `poison` asks for), a Decimal128, floats
/// `f` (f64 of every binade, subnormals, NaN, -NaN, ±inf, -0.0, values that cancel, nulls)
/// and `g` (f32, the same kinds) and `w` (UInt64 near its limits); groups that recur and
/// groups new in the batch (`b` numbers it), `rows` rows.
fn kept_batch(rng: &mut Rng, b: usize, rows: usize, poison: bool) -> RecordBatch {
    let nulls = b % 3 == 1;
    let k1: Int32Array = (0..rows)
        .map(|_| {
            if nulls && rng.chance(0.1) {
                None
            } else if rng.chance(0.8) {
                Some(rng.below(50) as i32 - 25)
            } else {
                Some(1000 + (b * 40) as i32 + rng.below(40) as i32)
            }
        })
        .collect();
    let specials = [f64::NAN, -f64::NAN, -0.0, 0.0, f64::INFINITY, 1.5, -2.25];
    let k2: Float64Array = (0..rows)
        .map(|_| match rng.below(10) {
            0 if b.is_multiple_of(2) => None,
            0..=5 => Some(specials[rng.below(specials.len() as u64) as usize]),
            _ => Some(rng.below(20) as f64 * 0.5 + b as f64),
        })
        .collect();
    let k3 = Int64Array::from_iter_values((0..rows).map(|_| (rng.below(7) as i64 - 3) << 40));
    let u = UInt16Array::from_iter_values((0..rows).map(|_| rng.below(65536) as u16));
    let x: Int64Array = (0..rows)
        .map(|_| match rng.below(12) {
            0 if b % 4 == 2 => None,
            1 => Some(i64::MAX - rng.below(3) as i64),
            2 => Some(i64::MIN + rng.below(3) as i64),
            _ => Some(rng.below(2001) as i64 - 1000),
        })
        .collect();
    let y = Int64Array::from_iter_values((0..rows).map(|i| {
        if poison && i == rows / 2 {
            0
        } else {
            1 + rng.below(5) as i64
        }
    }));
    let d = Decimal128Array::from_iter_values(
        (0..rows).map(|_| rng.below(2_000_000) as i128 - 1_000_000),
    )
    .with_precision_and_scale(12, 2)
    .unwrap();
    let float_specials = [
        f64::NAN,
        -f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        0.0,
        f64::MIN_POSITIVE / 3.0,
        -5e-324,
        f64::MAX,
        -f64::MAX,
        1e300,
        -1e300,
    ];
    // Mostly ordinary values, sometimes any binade, rarely a special (not in every batch,
    // so that a group's NaN or infinity comes in a later batch).
    let float = |rng: &mut Rng| match rng.below(40) {
        0 if b.is_multiple_of(3) => None,
        1 if b % 5 == 2 => Some(float_specials[rng.below(float_specials.len() as u64) as usize]),
        2..=5 => {
            let bits = rng.below(u64::MAX) & !(0x7ff << 52) | (rng.below(2046) + 1) << 52;
            Some(f64::from_bits(bits))
        }
        6..=9 => Some(-1e16 + rng.below(4) as f64),
        10..=13 => Some(1e16 + rng.below(4) as f64),
        _ => Some(rng.below(2001) as f64 * 0.125 - 125.0),
    };
    let f: Float64Array = (0..rows).map(|_| float(rng)).collect();
    let g: Float32Array = (0..rows).map(|_| float(rng).map(|v| v as f32)).collect();
    let w = UInt64Array::from_iter_values((0..rows).map(|_| match rng.below(4) {
        0 => u64::MAX - rng.below(3),
        1 => rng.below(3) << 32 | rng.below(3),
        _ => rng.below(1 << 40),
    }));
    // Nullable whatever the batch holds (every batch of a stream has one schema), but for
    // `k3` and `u`, which never hold a null.
    RecordBatch::try_from_iter_with_nullable([
        ("k1", Arc::new(k1) as ArrayRef, true),
        ("k2", Arc::new(k2), true),
        ("k3", Arc::new(k3), false),
        ("u", Arc::new(u), false),
        ("x", Arc::new(x), true),
        ("y", Arc::new(y), true),
        ("d", Arc::new(d), true),
        ("f", Arc::new(f), true),
        ("g", Arc::new(g), true),
        ("w", Arc::new(w), false),
    ])
    .unwrap()
}

/// The aggregates a kept table takes beyond `kept_aggs`, in three plans (each within the
/// storage bindings of GL's adapter): exact float sums, means and variances (f64 and f32,
/// over columns and an expression, filtered or not), and `min`/`max` of 64-bit values
/// (Int64 with and without nulls, UInt64, Float64 with NaN, -NaN and -0.0, a Decimal128
/// held as i64, filtered or not).
fn kept_wide_aggs() -> [Vec<Agg>; 3] {
    use arrow_wgpu::lit;
    [
        vec![
            Agg::sum(col("f")),
            Agg::mean(col("f")),
            Agg::stddev_samp(col("f")),
            Agg::var_pop(col("g")),
            Agg::sum(col("g")),
            Agg::sum(col("f") * lit(0.5)).filter(col("x").lt(lit(0i64))),
        ],
        vec![
            Agg::max(col("x")),
            Agg::min(col("x")),
            Agg::min(col("k3")),
            Agg::max(col("w")),
            Agg::min(col("w")),
        ],
        vec![
            Agg::max(col("f")),
            Agg::min(col("f")),
            Agg::max(col("d")),
            Agg::min(col("d")).filter(col("y").gt(lit(2i64))),
        ],
    ]
}

/// The aggregates the kept table takes: counts, integer and decimal sums, means and
/// variances, over columns and expressions, filtered or not.
fn kept_aggs() -> Vec<Agg> {
    use arrow_wgpu::lit;
    vec![
        Agg::count_star(),
        Agg::count(col("x")),
        Agg::sum(col("x")),
        Agg::mean(col("x")),
        Agg::var_samp(col("u")),
        Agg::stddev_pop(col("x")).filter(col("x").lt(lit(500i64))),
        Agg::sum(col("d")),
        Agg::count_star().filter(col("x").gt(lit(0i64))),
        Agg::sum(col("x") / col("y")),
    ]
}

/// A stream of batches (some empty, some sliced) through a GPU's `GroupByAccumulator`,
/// which keeps its hash table on the device across batches, gives the CPU's bits for all
/// the batches at once: by every set of keys the table takes (none too), with `push` and
/// with `push_where`, in one chunk a batch and in many.
#[test]
fn a_table_kept_on_the_gpu_across_batches_gives_the_cpu_bits() {
    use arrow_wgpu::lit;
    let cpu = common::cpu();
    let engines = common::gpu_engines_and_small_chunks(4096);
    // Nullable keys (a null word a key), a key that can't be null compared as its values
    // (`k3`) or as its order word (`u`, 16-bit), mixes of them, and no keys.
    let key_sets: [&[&str]; 7] = [
        &["k1"],
        &["k2"],
        &["k3"],
        &["u"],
        &["k1", "k3"],
        &[],
        &["k2", "u"],
    ];
    for seed in 0..3u64 {
        let mut rng = Rng(0x6b65_7074 + seed);
        let batches: Vec<RecordBatch> = (0..24)
            .map(|b| {
                let rows = match rng.below(6) {
                    0 => 0,
                    1 => 1 + rng.below(40) as usize,
                    _ => 200 + rng.below(3000) as usize,
                };
                let batch = kept_batch(&mut rng, b, rows + 7, false);
                // A slice: its columns start past their buffers' first rows.
                let from = rng.below(8) as usize;
                batch.slice(from, rows + 7 - from)
            })
            .collect();
        let all = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
        let aggs = kept_aggs();
        let predicate = col("k3").gt_eq(lit(0i64)).or(col("x").is_null());
        let kept = cpu.filter(&all, &predicate).unwrap();
        for keys in key_sets {
            let want = cpu.group_by(&all, keys, &aggs).unwrap();
            let want_where = cpu.group_by(&kept, keys, &aggs).unwrap();
            for (name, engine) in &engines {
                let options = GroupByOptions::default();
                let mut acc = engine
                    .group_by_accumulator(all.schema(), keys, &aggs, options)
                    .unwrap();
                let mut acc_where = engine
                    .group_by_accumulator(all.schema(), keys, &aggs, options)
                    .unwrap();
                for b in &batches {
                    acc.push(b).unwrap();
                    acc_where.push_where(b, &predicate).unwrap();
                }
                let got = acc.finish().unwrap();
                assert_eq!(got, want, "{name}, seed {seed}, keys {keys:?}: push");
                let got = acc_where.finish().unwrap();
                assert_eq!(
                    got, want_where,
                    "{name}, seed {seed}, keys {keys:?}: push_where"
                );
            }
        }
    }
}

/// Exact float sums and 64-bit `min`/`max` in a table kept on the GPU across a stream of
/// batches (some empty, some sliced; NaN and infinities arriving in later batches) give
/// the CPU's bits, by keys of few groups (where the table is kept: one host sync a batch,
/// checked) and by keys whose groups overflow it (batch by batch from there).
#[test]
fn float_sums_and_64_bit_extremes_in_a_kept_table_give_the_cpu_bits() {
    let cpu = common::cpu();
    let engines = common::gpu_engines_and_small_chunks(4096);
    // (keys, whether every batch's groups fit the table).
    let key_sets: [(&[&str], bool); 4] = [
        (&["k3"], true),
        (&[], true),
        (&["k2"], true),
        (&["k1", "k3"], false),
    ];
    for (seed, aggs) in kept_wide_aggs().iter().enumerate() {
        let seed = seed as u64;
        let mut rng = Rng(0x666c_6f61 + seed);
        let batches: Vec<RecordBatch> = (0..10)
            .map(|b| {
                let rows = match rng.below(5) {
                    0 => 0,
                    1 => 1 + rng.below(40) as usize,
                    _ => 200 + rng.below(1500) as usize,
                };
                let batch = kept_batch(&mut rng, b, rows + 5, false);
                let from = rng.below(6) as usize;
                batch.slice(from, rows + 5 - from)
            })
            .collect();
        let all = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
        let pushed = batches.iter().filter(|b| b.num_rows() > 0).count() as u64;
        for (keys, fits) in key_sets {
            let want = cpu.group_by(&all, keys, aggs).unwrap();
            for (name, engine) in &engines {
                let mut acc = engine
                    .group_by_accumulator(all.schema(), keys, aggs, GroupByOptions::default())
                    .unwrap();
                assert_eq!(acc.gpu_groups_batch_by_batch(), None, "{name}");
                let (got, profile) = engine
                    .profiled(|_| {
                        for b in &batches {
                            acc.push(b)?;
                        }
                        acc.finish()
                    })
                    .unwrap();
                assert_eq!(got, want, "{name}, seed {seed}, keys {keys:?}");
                let syncs = profile.traffic().host_syncs;
                if fits {
                    assert_eq!(
                        syncs,
                        pushed + 1,
                        "{name}, seed {seed}, keys {keys:?}: kept"
                    );
                }
            }
        }
    }
}

/// A batch whose groups overflow the kept table sends the table's groups to the host's
/// merge and goes on batch by batch, groups still in order of first appearance; a batch
/// that fails (a division by zero in an aggregate's expression) leaves nothing of itself,
/// and the batches before and after it count.
#[test]
fn a_kept_table_that_overflows_or_fails_loses_no_batch() {
    let cpu = common::cpu();
    let aggs = kept_aggs();
    let mut rng = Rng(0x0f10_5eed);
    // Few groups, then 30,000 new ones in one batch (more than any kept table takes),
    // then few again.
    let mut batches: Vec<RecordBatch> = (0..6)
        .map(|b| kept_batch(&mut rng, b, 500, false))
        .collect();
    let many = 30_000;
    let wide = kept_batch(&mut rng, 6, many, false);
    let k1 = Int32Array::from_iter_values((0..many as i32).map(|i| 5000 + i));
    let mut columns = wide.columns().to_vec();
    columns[0] = Arc::new(k1);
    batches.push(RecordBatch::try_new(wide.schema(), columns).unwrap());
    batches.extend((7..10).map(|b| kept_batch(&mut rng, b, 500, false)));
    let all = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
    let want = cpu.group_by(&all, &["k1"], &aggs).unwrap();
    // The same stream with a failing batch in its middle, and without it.
    let poisoned = kept_batch(&mut rng, 3, 900, true);
    let mut with_failure = batches[..4].to_vec();
    with_failure.push(poisoned.clone());
    with_failure.extend(batches[4..].iter().cloned());
    for (name, engine) in common::gpu_engines_and_small_chunks(4096) {
        let options = GroupByOptions::default();
        let mut acc = engine
            .group_by_accumulator(all.schema(), &["k1"], &aggs, options)
            .unwrap();
        for b in &batches {
            acc.push(b).unwrap();
        }
        assert_eq!(acc.finish().unwrap(), want, "{name}: overflow");

        let mut acc = engine
            .group_by_accumulator(all.schema(), &["k1"], &aggs, options)
            .unwrap();
        for b in &with_failure {
            let pushed = acc.push(b);
            if b.num_rows() == poisoned.num_rows() && b.column(5) == poisoned.column(5) {
                assert!(
                    matches!(pushed, Err(arrow_wgpu::Error::DivideByZero)),
                    "{name}: {pushed:?}"
                );
            } else {
                pushed.unwrap();
            }
        }
        assert_eq!(acc.finish().unwrap(), want, "{name}: a failed batch");
    }
}

/// What an accumulator says of its table (`gpu_groups_batch_by_batch`, which `EXPLAIN`
/// of the SQL path shows) is what it does: where it says the table is kept, a stream of
/// batches costs one host sync a batch and one at the end, the table read back once;
/// where it says why not, each batch is grouped and read back on its own, with more
/// syncs. Against the CPU's answer either way, on every GPU backend.
#[test]
fn what_an_accumulator_says_of_its_table_is_what_it_does() {
    let rows = 4_000usize;
    let k: ArrayRef = Arc::new(Int32Array::from_iter_values(
        (0..rows as i32).map(|i| i % 37),
    ));
    let s: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..rows).map(|i| format!("s{}", i % 11)),
    ));
    let n: ArrayRef = Arc::new(Int64Array::from_iter_values(
        (0..rows as i64).map(|i| i * 7 - 900),
    ));
    let x: ArrayRef = Arc::new(Float64Array::from_iter_values(
        (0..rows).map(|i| i as f64 / 8.0),
    ));
    let batch = RecordBatch::try_from_iter([("k", k), ("s", s), ("n", n), ("x", x)]).unwrap();
    let batches = 4;
    let cases: Vec<(&[&str], Vec<Agg>, Option<&str>)> = vec![
        (&["k"], vec![Agg::count_star(), Agg::sum(col("n"))], None),
        (&[], vec![Agg::mean(col("n"))], None),
        (
            &["k"],
            vec![Agg::sum(col("x")), Agg::stddev_pop(col("x"))],
            None,
        ),
        (&["k"], vec![Agg::max(col("n")), Agg::min(col("x"))], None),
        (
            &["k"],
            vec![Agg::count_distinct(col("n"))],
            Some("count(DISTINCT)"),
        ),
        (
            &["s"],
            vec![Agg::count_star()],
            Some("a group key of type Utf8"),
        ),
    ];
    for (keys, aggs, says) in cases {
        let want = common::cpu().group_by(&batch, keys, &aggs).unwrap();
        for (name, engine) in common::gpu_engines(None) {
            let options = GroupByOptions::default();
            let mut acc = engine
                .group_by_accumulator(batch.schema(), keys, &aggs, options)
                .unwrap();
            assert_eq!(acc.gpu_groups_batch_by_batch().as_deref(), says, "{name}");
            let per = rows / batches;
            let (out, profile) = engine
                .profiled(|_| {
                    for b in 0..batches {
                        acc.push(&batch.slice(b * per, per))?;
                    }
                    acc.finish()
                })
                .unwrap();
            assert_eq!(out, want, "{name}: {keys:?} {aggs:?}");
            let syncs = profile.traffic().host_syncs;
            let kept = syncs == batches as u64 + 1;
            assert_eq!(kept, says.is_none(), "{name}: {says:?}, {syncs} host syncs");
        }
    }
}
