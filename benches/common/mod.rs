//! Shared by the benches: the row counts to measure.

/// Row counts from `ARROW_WGPU_BENCH_ROWS` (comma-separated), default 1M and 16M.
pub fn sizes() -> Vec<usize> {
    std::env::var("ARROW_WGPU_BENCH_ROWS")
        .unwrap_or_else(|_| "1000000,16000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}
