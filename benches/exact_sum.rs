//! Exact float sums against a plain f64 sum over the same groups (issue: "exact sums at
//! the cost of plain ones"): 10M values (h2o's v3: six decimals in [0, 100)) into 100,
//! 100k and 10M groups, with group ids drawn uniformly.
//!
//! - `plain`: `sums[g] += x` into a `Vec<f64>` (what a non-exact engine does), with a count;
//! - `slots`: [`SumSlots`] (one 16-byte window per group) with a count in the same pass;
//! - `exact_sum`: one [`ExactSum`] per group, a value at a time;
//! - `plain_moments`: a variance's plain inputs, `sums[g] += x`, `squares[g] += x * x`
//!   and a count;
//! - `exact_moments`: the exact ones, [`MomentSlots::add_rows_counting`] (what a grouped
//!   `var`/`stddev` of floats runs on);
//! - `plain_var` / `exact_var`: the same, then each group's sample variance (plain:
//!   `(Σx² - (Σx)²/n) / (n - 1)` in f64; exact: [`variance`], rounded once).
//!
//! `ARROW_WGPU_BENCH_ROWS` changes the row count, `ARROW_WGPU_BENCH_GROUPS` the group
//! counts (a comma-separated list).

use arrow_wgpu::exact::{variance, ExactSum, MomentSlots, SumSlots};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

fn rows() -> usize {
    std::env::var("ARROW_WGPU_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000)
}

fn data(rows: usize, groups: usize) -> (Vec<f64>, Vec<usize>) {
    let mut state = 42u64;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let values = (0..rows)
        .map(|_| (next() % 100_000_000) as f64 / 1e6)
        .collect();
    let ids = (0..rows)
        .map(|_| (next() % groups as u64) as usize)
        .collect();
    (values, ids)
}

fn bench(c: &mut Criterion) {
    let rows = rows();
    let mut group = c.benchmark_group("exact_sum");
    group.sample_size(10);
    let groups_list: Vec<usize> = match std::env::var("ARROW_WGPU_BENCH_GROUPS") {
        Ok(list) => list
            .split(',')
            .filter_map(|g| g.trim().parse().ok())
            .collect(),
        Err(_) => vec![100, 100_000, 10_000_000.min(rows)],
    };
    for groups in groups_list {
        let (values, ids) = data(rows, groups);
        group.bench_function(BenchmarkId::new("plain", groups), |b| {
            b.iter(|| {
                let mut sums = vec![0.0f64; groups];
                let mut counts = vec![0u64; groups];
                for (&g, &x) in ids.iter().zip(&values) {
                    sums[g] += x;
                    counts[g] += 1;
                }
                (sums, counts)
            })
        });
        group.bench_function(BenchmarkId::new("slots", groups), |b| {
            b.iter(|| {
                let mut sums = SumSlots::default();
                sums.resize(groups);
                let mut counts = vec![0u64; groups];
                sums.add_all_counting(&ids, &values, &mut counts);
                (sums, counts)
            })
        });
        group.bench_function(BenchmarkId::new("exact_sum", groups), |b| {
            b.iter(|| {
                let mut sums = vec![ExactSum::new(); groups];
                for (&g, &x) in ids.iter().zip(&values) {
                    sums[g].add_f64(x);
                }
                sums
            })
        });
        let plain_moments = || {
            let mut sums = vec![0.0f64; groups];
            let mut squares = vec![0.0f64; groups];
            let mut counts = vec![0u64; groups];
            for (&g, &x) in ids.iter().zip(&values) {
                sums[g] += x;
                squares[g] += x * x;
                counts[g] += 1;
            }
            (sums, squares, counts)
        };
        let exact_moments = || {
            let mut slots = MomentSlots::default();
            slots.resize(groups);
            let mut counts = vec![0u64; groups];
            slots.add_rows_counting(ids.len(), |i| ids[i], &values, |_| true, &mut counts);
            (slots, counts)
        };
        group.bench_function(BenchmarkId::new("plain_moments", groups), |b| {
            b.iter(plain_moments)
        });
        group.bench_function(BenchmarkId::new("exact_moments", groups), |b| {
            b.iter(exact_moments)
        });
        group.bench_function(BenchmarkId::new("plain_var", groups), |b| {
            b.iter(|| {
                let (sums, squares, counts) = plain_moments();
                let var = |g: usize| {
                    let n = counts[g] as f64;
                    (counts[g] > 1).then(|| (squares[g] - sums[g] * sums[g] / n) / (n - 1.0))
                };
                (0..groups).map(var).collect::<Vec<_>>()
            })
        });
        group.bench_function(BenchmarkId::new("exact_var", groups), |b| {
            b.iter(|| {
                let (slots, counts) = exact_moments();
                let var = |g: usize| variance(&slots.sum(g), &slots.squares(g), counts[g], 1);
                (0..groups).map(var).collect::<Vec<_>>()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
