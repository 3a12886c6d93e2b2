//! Property tests for distinct: on random batches (1 to 3 key columns of random types with
//! duplicates from none to all, nulls, NaN, -0.0, sliced inputs, empty inputs), for every
//! `Keep`, the CPU path equals a reference built from arrow row-format rows in a BTreeSet /
//! BTreeMap, and every GPU adapter (also with tiny chunks, so per-chunk results are merged)
//! gives the CPU's answer exactly: indices, rows, count, and the same from a resident batch;
//! so does the CPU path on several threads of a few rows each.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use arrow::array::{Array, ArrayRef, Int64Array, RecordBatch, UInt32Array};
use arrow::compute::{cast, take, take_record_batch};
use arrow::datatypes::DataType;
use arrow::row::{OwnedRow, RowConverter, SortField};
use arrow_wgpu::{Engine, Keep};
use common::gen::{self, Rng};
use proptest::prelude::*;

const KEEPS: [Keep; 4] = [Keep::First, Keep::Last, Keep::Any, Keep::None];

fn engines() -> &'static Vec<(String, Engine, bool)> {
    static E: OnceLock<Vec<(String, Engine, bool)>> = OnceLock::new();
    E.get_or_init(|| {
        let mut all: Vec<_> = common::gpu_engines(None)
            .into_iter()
            .map(|(n, e)| (n, e, false))
            .collect();
        // 1 KiB chunks: 128 rows each, so batches of a few hundred rows cross chunks.
        all.extend(
            common::gpu_engines(Some(1024))
                .into_iter()
                .map(|(n, e)| (format!("{n}/1KiB chunks"), e, true)),
        );
        all
    })
}

fn rows_strategy() -> impl Strategy<Value = usize> {
    prop_oneof![
        1 => Just(0usize),
        6 => 1usize..400,
        3 => 400usize..4_000,
        1 => 4_000usize..40_000,
    ]
}

/// A key column of `dt` with `rows` rows and a random share of distinct values: all one
/// value, a few, about half, or each row its own value (where `dt` has that many), or the
/// generator's own mix (a small domain, special floats, random bits, nulls).
fn key_column(rng: &mut Rng, dt: &DataType, rows: usize) -> ArrayRef {
    let null_p = *rng.pick(&[0.0, 0.0, 0.1, 0.5, 1.0]);
    match rng.below(5) {
        // Every row different: a shuffled 0..rows cast to dt (distinct where dt holds it).
        0 if rows > 0 => {
            let mut v: Vec<i64> = (0..rows as i64).collect();
            for i in (1..v.len()).rev() {
                v.swap(i, rng.below(i as u64 + 1) as usize);
            }
            let a: ArrayRef = Arc::new(Int64Array::from(v));
            // Values a narrow type can't hold become nulls (cast is safe by default); Date32
            // casts from Int32.
            let a = if *dt == DataType::Date32 {
                cast(&a, &DataType::Int32).unwrap()
            } else {
                a
            };
            cast(&a, dt).unwrap()
        }
        // Drawn from a pool of 1, a few, or about rows / 2 values.
        m => {
            let pool_size = match m {
                1 => 1,
                2 => 1 + rng.below(8) as usize,
                _ => (rows / 2).max(1),
            };
            let pool = gen::column(rng, dt, pool_size, null_p);
            let idx = UInt32Array::from_iter_values(
                (0..rows).map(|_| rng.below(pool_size as u64) as u32),
            );
            take(pool.as_ref(), &idx, None).unwrap()
        }
    }
}

/// A batch with 1 to 3 key columns (`k0`..) and 0 to 2 payload columns (`p0`..), sliced at
/// a random offset half of the time.
fn random_batch(rng: &mut Rng, rows: usize) -> (RecordBatch, Vec<String>) {
    let types = gen::all_types();
    let pad = if rng.chance(0.5) {
        rng.below(70) as usize
    } else {
        0
    };
    let total = rows + pad;
    let nkeys = 1 + rng.below(3) as usize;
    let mut columns: Vec<(String, ArrayRef)> = Vec::new();
    for i in 0..nkeys {
        let dt = rng.pick(&types).clone();
        columns.push((format!("k{i}"), key_column(rng, &dt, total)));
    }
    for i in 0..rng.below(3) {
        let dt = rng.pick(&types).clone();
        let null_p = *rng.pick(&[0.0, 0.3]);
        columns.push((format!("p{i}"), gen::column(rng, &dt, total, null_p)));
    }
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let offset = rng.below(pad as u64 + 1) as usize;
    let mut keys: Vec<String> = (0..nkeys).map(|i| format!("k{i}")).collect();
    // Key order doesn't matter; shuffle it to show that.
    if nkeys > 1 && rng.chance(0.5) {
        keys.reverse();
    }
    (batch.slice(offset, rows), keys)
}

/// Every row's keys in arrow's row format: equal exactly when the keys are equal.
fn key_rows(batch: &RecordBatch, keys: &[&str]) -> Vec<OwnedRow> {
    let columns: Vec<ArrayRef> = keys
        .iter()
        .map(|k| batch.column_by_name(k).unwrap().clone())
        .collect();
    let fields = columns
        .iter()
        .map(|c| SortField::new(c.data_type().clone()))
        .collect();
    let rows = RowConverter::new(fields)
        .unwrap()
        .convert_columns(&columns)
        .unwrap();
    rows.iter().map(|r| r.owned()).collect()
}

/// The reference: the kept rows for `keep`, from a BTreeSet / BTreeMap of row-format keys.
fn reference(rows: &[OwnedRow], keep: Keep) -> Vec<u32> {
    match keep {
        Keep::First | Keep::Any => {
            let mut seen = BTreeSet::new();
            (0..rows.len() as u32)
                .filter(|&i| seen.insert(rows[i as usize].clone()))
                .collect()
        }
        Keep::Last => {
            let mut seen = BTreeSet::new();
            let mut out: Vec<u32> = (0..rows.len() as u32)
                .rev()
                .filter(|&i| seen.insert(rows[i as usize].clone()))
                .collect();
            out.reverse();
            out
        }
        Keep::None => {
            let mut counts: BTreeMap<&OwnedRow, usize> = BTreeMap::new();
            for r in rows {
                *counts.entry(r).or_default() += 1;
            }
            (0..rows.len() as u32)
                .filter(|&i| counts[&rows[i as usize]] == 1)
                .collect()
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn distinct_gpu_equals_cpu_equals_reference(seed in any::<u64>(), rows in rows_strategy()) {
        let mut rng = Rng(seed);
        let (batch, keys) = random_batch(&mut rng, rows);
        let keys: Vec<&str> = keys.iter().map(|k| k.as_str()).collect();
        let cpu = common::cpu();
        let key_rows = key_rows(&batch, &keys);
        let count = key_rows.iter().collect::<BTreeSet<_>>().len();
        prop_assert_eq!(cpu.distinct_count(&batch, &keys).unwrap(), count);
        let mut wants = Vec::new();
        for keep in KEEPS {
            let want = cpu.distinct_indices(&batch, &keys, keep).unwrap();
            prop_assert_eq!(want.values().to_vec(), reference(&key_rows, keep), "cpu vs reference: {:?}", keep);
            prop_assert_eq!(want.null_count(), 0);
            let want_batch = take_record_batch(&batch, &want).unwrap();
            prop_assert_eq!(&cpu.distinct(&batch, &keys, keep).unwrap(), &want_batch, "cpu rows: {:?}", keep);
            wants.push((keep, want, want_batch));
        }
        // On 2 to 5 threads of a few rows each (pieces numbered apart, then their
        // candidates merged): the one-thread answer.
        let threads = 2 + rng.below(4) as usize;
        let threaded = Engine::with_options(arrow_wgpu::EngineOptions {
            backend: arrow_wgpu::Backend::Cpu,
            cpu_threads: Some(threads),
            cpu_rows_per_thread: Some(1 + rng.below(64) as usize),
            ..Default::default()
        })
        .unwrap();
        prop_assert_eq!(threaded.distinct_count(&batch, &keys).unwrap(), count, "{} threads: count", threads);
        for (keep, want, want_batch) in &wants {
            let got = threaded.distinct_indices(&batch, &keys, *keep).unwrap();
            prop_assert_eq!(&got, want, "{} threads: indices, {:?}", threads, keep);
            let got = threaded.distinct(&batch, &keys, *keep).unwrap();
            prop_assert_eq!(&got, want_batch, "{} threads: rows, {:?}", threads, keep);
        }
        for (name, engine, tiny) in engines() {
            if *tiny && rows > 5_000 {
                continue; // hundreds of 128-row chunks: slow on a software driver, no new case
            }
            prop_assert_eq!(engine.distinct_count(&batch, &keys).unwrap(), count, "{}: count", name);
            let resident = engine.upload(&batch).unwrap();
            for (keep, want, want_batch) in &wants {
                let got = engine.distinct_indices(&batch, &keys, *keep).unwrap();
                prop_assert_eq!(&got, want, "{}: indices, {:?}, keys {:?}", name, keep, keys);
                let got = engine.distinct(&batch, &keys, *keep).unwrap();
                prop_assert_eq!(&got, want_batch, "{}: rows, {:?}", name, keep);
                let got = resident.distinct(&keys, *keep).unwrap().to_record_batch().unwrap();
                prop_assert_eq!(&got, want_batch, "{}: resident rows, {:?}", name, keep);
            }
            prop_assert_eq!(resident.distinct_count(&keys).unwrap(), count, "{}: resident count", name);
        }
    }
}
