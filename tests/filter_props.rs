//! Property tests: the GPU path (every adapter found, with normal and with tiny chunks)
//! equals the CPU path exactly on random batches and random predicates.

use crate::common;

use std::sync::OnceLock;

use arrow::array::BooleanArray;

use arrow_wgpu::{Backend, Engine, EngineOptions, Error};
use common::gen::{self, Rng};
use proptest::prelude::*;

fn engines() -> &'static Vec<(String, Engine)> {
    static E: OnceLock<Vec<(String, Engine)>> = OnceLock::new();
    // 1 KiB chunks: 128 rows each, so small batches cross many chunk boundaries.
    E.get_or_init(|| common::gpu_engines_and_small_chunks(1024))
}

/// Arithmetic errors agree by kind; when several rows fail, the CPU reports the first it
/// meets and the GPU the division-by-zero first, so either kind counts as the same answer.
fn same_outcome<T: PartialEq + std::fmt::Debug>(
    gpu: &Result<T, Error>,
    cpu: &Result<T, Error>,
) -> bool {
    match (gpu, cpu) {
        (Ok(g), Ok(c)) => g == c,
        (
            Err(Error::DivideByZero | Error::ArithmeticOverflow(_)),
            Err(Error::DivideByZero | Error::ArithmeticOverflow(_)),
        ) => true,
        _ => false,
    }
}

fn rows_strategy() -> impl Strategy<Value = usize> {
    prop_oneof![
        6 => 0usize..300,
        3 => 300usize..5_000,
        1 => 5_000usize..100_000,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn filter_and_evaluate_gpu_equal_cpu(seed in any::<u64>(), rows in rows_strategy(), depth in 0u32..4) {
        let mut rng = Rng(seed);
        let batch = gen::batch(&mut rng, rows);
        // Strings and decimals the predicate may read only for their masks.
        let batch = if rng.chance(0.5) { gen::with_mask_columns(&mut rng, &batch, false) } else { batch };
        let predicate = gen::predicate(&mut rng, &batch, depth);
        let cpu = common::cpu();
        let want_mask = cpu.evaluate(&batch, &predicate);
        let want = cpu.filter(&batch, &predicate);
        // The one-thread filter is arrow's filter by the mask.
        if let (Ok(mask), Ok(rows)) = (&want_mask, &want) {
            prop_assert_eq!(&arrow::compute::filter_record_batch(&batch, mask).unwrap(), rows);
        }
        // The CPU filter on 2-5 threads of pieces of a few rows: the same rows.
        let threaded = Engine::with_options(EngineOptions {
            backend: Backend::Cpu,
            cpu_threads: Some(2 + rng.below(4) as usize),
            cpu_rows_per_thread: Some(1 + rng.below(64) as usize),
            ..Default::default()
        })
        .unwrap();
        let got = threaded.filter(&batch, &predicate);
        prop_assert!(same_outcome(&got, &want), "threaded CPU: filter {predicate}\n {got:?}\n one thread {want:?}");
        for (name, engine) in engines() {
            let got_mask = engine.evaluate(&batch, &predicate);
            prop_assert!(same_outcome(&got_mask, &want_mask), "{name}: evaluate {predicate}\n gpu {got_mask:?}\n cpu {want_mask:?}");
            let got = engine.filter(&batch, &predicate);
            prop_assert!(same_outcome(&got, &want), "{name}: filter {predicate}\n gpu {got:?}\n cpu {want:?}");
        }
    }

    #[test]
    fn filter_by_mask_gpu_equals_cpu(seed in any::<u64>(), rows in rows_strategy()) {
        let mut rng = Rng(seed);
        let batch = gen::batch(&mut rng, rows);
        let null_p = *rng.pick(&[0.0, 0.2, 1.0]);
        let keep_p = *rng.pick(&[0.0, 0.01, 0.5, 0.99, 1.0]);
        let pad = rng.below(40) as usize;
        let mask: BooleanArray = (0..rows + pad).map(|_| (!rng.chance(null_p)).then(|| rng.chance(keep_p))).collect();
        let mask = mask.slice(pad / 2, rows);
        let want = common::cpu().filter_by_mask(&batch, &mask).unwrap();
        for (name, engine) in engines() {
            let got = engine.filter_by_mask(&batch, &mask).unwrap();
            prop_assert_eq!(&got, &want, "{}", name);
        }
    }

    #[test]
    fn resident_chain_equals_cpu(seed in any::<u64>(), rows in rows_strategy()) {
        let mut rng = Rng(seed);
        let batch = gen::batch(&mut rng, rows);
        let p1 = gen::predicate(&mut rng, &batch, 1);
        let p2 = gen::predicate(&mut rng, &batch, 1);
        let cpu = common::cpu();
        let want = cpu.filter(&batch, &p1).and_then(|b| cpu.filter(&b, &p2));
        for (name, engine) in engines() {
            let got = engine.upload(&batch).and_then(|g| g.filter(&p1)).and_then(|g| g.filter(&p2)).and_then(|g| g.to_record_batch());
            prop_assert!(same_outcome(&got, &want), "{name}: {p1} then {p2}\n gpu {got:?}\n cpu {want:?}");
        }
    }
}
