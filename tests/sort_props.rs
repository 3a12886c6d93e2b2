//! Property tests for sort: on random batches and random keys (1 to 3, random types and
//! options, nulls, NaN, -0.0, few or all-distinct values), with and without a limit, the GPU
//! indices equal the CPU indices exactly (the sort is stable on both), on every adapter and
//! with tiny chunks (so that sorted runs are merged); `sort` equals a take by those indices;
//! and the CPU path agrees with arrow's `lexsort_to_indices` up to the order of ties.

use crate::common;

use std::sync::OnceLock;

use arrow::array::RecordBatch;
use arrow::compute::{lexsort_to_indices, take_record_batch, SortColumn};
use arrow::row::{RowConverter, SortField};
use arrow_wgpu::{Engine, SortKey, SortOptions};
use common::gen::{self, Rng};
use proptest::prelude::*;

fn engines() -> &'static Vec<(String, Engine, bool)> {
    static E: OnceLock<Vec<(String, Engine, bool)>> = OnceLock::new();
    E.get_or_init(|| {
        let mut all: Vec<_> = common::gpu_engines(None)
            .into_iter()
            .map(|(n, e)| (n, e, false))
            .collect();
        // 1 KiB chunks: 128 rows each, so sorts of small batches merge many runs.
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
        5 => 0usize..300,
        3 => 300usize..5_000,
        1 => 5_000usize..200_000,
    ]
}

fn random_keys(rng: &mut Rng, batch: &RecordBatch) -> Vec<SortKey> {
    let n = 1 + rng.below(3) as usize;
    (0..n)
        .map(|_| {
            let i = rng.below(batch.num_columns() as u64) as usize;
            SortKey::new(
                batch.schema().field(i).name().clone(),
                SortOptions {
                    descending: rng.chance(0.5),
                    nulls_first: rng.chance(0.5),
                },
            )
        })
        .collect()
}

/// The row-format encoding of every row's keys: equal exactly when the keys are equal.
fn key_rows(batch: &RecordBatch, keys: &[SortKey]) -> arrow::row::Rows {
    let schema = batch.schema();
    let fields = keys
        .iter()
        .map(|k| {
            SortField::new_with_options(
                schema
                    .field_with_name(&k.column)
                    .unwrap()
                    .data_type()
                    .clone(),
                k.options,
            )
        })
        .collect();
    let columns: Vec<_> = keys
        .iter()
        .map(|k| batch.column_by_name(&k.column).unwrap().clone())
        .collect();
    RowConverter::new(fields)
        .unwrap()
        .convert_columns(&columns)
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn sort_gpu_equals_cpu(seed in any::<u64>(), rows in rows_strategy(), limited in any::<bool>()) {
        let mut rng = Rng(seed);
        let batch = gen::batch(&mut rng, rows);
        let keys = random_keys(&mut rng, &batch);
        let limit = limited.then(|| rng.below(rows as u64 + 10) as usize);
        let cpu = common::cpu();
        let want = cpu.sort_to_indices(&batch, &keys, limit).unwrap();

        // The CPU path is arrow's order, ties aside.
        let columns: Vec<SortColumn> = keys
            .iter()
            .map(|k| SortColumn {
                values: batch.column_by_name(&k.column).unwrap().clone(),
                options: Some(k.options),
            })
            .collect();
        let arrow = lexsort_to_indices(&columns, limit).unwrap();
        let rows_of = key_rows(&batch, &keys);
        let key = |i: u32| rows_of.row(i as usize);
        prop_assert_eq!(want.len(), arrow.len());
        prop_assert!(
            want.values().iter().zip(arrow.values()).all(|(a, b)| key(*a) == key(*b)),
            "cpu vs lexsort_to_indices"
        );
        // ...in ascending key order, and stable: among equal keys, indices ascend.
        prop_assert!(
            want.values().windows(2).all(|w| key(w[0]) < key(w[1]) || (key(w[0]) == key(w[1]) && w[0] < w[1])),
            "cpu sort is not ordered and stable"
        );

        let want_batch = take_record_batch(&batch, &want).unwrap();
        for (name, engine, tiny) in engines() {
            if *tiny && rows > 20_000 {
                continue; // hundreds of 128-row runs: slow on a software driver, no new case
            }
            let got = engine.sort_to_indices(&batch, &keys, limit).unwrap();
            prop_assert_eq!(&got, &want, "{}: keys {:?}, limit {:?}", name, keys, limit);
            let sorted = engine.sort(&batch, &keys, limit).unwrap();
            prop_assert_eq!(&sorted, &want_batch, "{}: sort, keys {:?}", name, keys);
        }
    }
}
