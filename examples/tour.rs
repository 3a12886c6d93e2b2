//! A short tour: build a batch, filter it and sort what it kept on the GPU and on the CPU,
//! check they agree, and print the adapter and the time split (upload / kernels / download).
//!
//! `cargo run --release --example tour -- [rows]` (default 4,000,000 rows).

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{ArrayRef, Float64Array, Int32Array, Int64Array, UInt8Array};
use arrow::record_batch::RecordBatch;
use arrow_wgpu::{col, lit, Backend, Engine, Phase, SortKey};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let rows: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(4_000_000);
    let batch = make_batch(rows)?;
    // quantity BETWEEN 10 AND 30 AND flag IN (1, 3) AND price > 500.0 AND id IS NOT NULL
    let predicate = col("quantity")
        .between(lit(10i64), lit(30i64))
        .and(col("flag").in_list(vec![lit(1u8), lit(3u8)]))
        .and(col("price").gt(lit(500.0)))
        .and(col("id").is_not_null());
    println!("rows: {rows}; predicate: {predicate}");

    let cpu = Engine::new(Backend::Cpu)?;
    let start = Instant::now();
    let want = cpu.filter(&batch, &predicate)?;
    println!(
        "CPU (arrow-rs kernels): kept {} rows in {:.1} ms",
        want.num_rows(),
        start.elapsed().as_secs_f64() * 1e3
    );

    let gpu = match Engine::new(Backend::Gpu) {
        Ok(engine) => engine,
        Err(e) => {
            println!("no GPU: {e}; only the CPU path ran");
            return Ok(());
        }
    };
    let adapter = gpu.adapter().expect("a GPU engine has an adapter");
    println!("adapter: {adapter}");
    let _warm = gpu.filter(&batch.slice(0, 1000.min(rows)), &predicate)?; // compile pipelines once
    let (got, profile) = gpu.profiled(|e| e.filter(&batch, &predicate))?;
    assert_eq!(got, want, "the GPU and the CPU disagree");
    println!("GPU and CPU agree: {} rows kept", got.num_rows());
    let ms = |p| profile.time_in(p).as_secs_f64() * 1e3;
    println!(
        "GPU time split: upload {:.1} ms, kernels {:.1} ms, download {:.1} ms",
        ms(Phase::Upload),
        ms(Phase::Kernels),
        ms(Phase::Download)
    );

    // Resident: upload once, filter twice without uploading again.
    let resident = gpu.upload(&batch)?;
    let start = Instant::now();
    let once = resident.filter(&predicate)?;
    let twice = once.filter(&col("quantity").lt(lit(20i64)))?;
    let n = twice.num_rows();
    println!(
        "resident chain (two filters, no upload): {n} rows in {:.1} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
    assert_eq!(
        twice.to_record_batch()?,
        cpu.filter(&want, &col("quantity").lt(lit(20i64)))?
    );
    // Sort what the filter kept: price descending, then id; the top 10, stable on both paths.
    let keys = [SortKey::desc("price"), SortKey::asc("id")];
    let want_top = cpu.sort(&want, &keys, Some(10))?;
    let (top, profile) = gpu.profiled(|e| e.sort(&want, &keys, Some(10)))?;
    assert_eq!(top, want_top, "the GPU and the CPU sort disagree");
    println!(
        "sort of the {} kept rows by price desc, id (top 10): GPU and CPU agree; GPU upload {:.1} ms, kernels {:.1} ms, download {:.1} ms",
        want.num_rows(),
        profile.time_in(Phase::Upload).as_secs_f64() * 1e3,
        profile.time_in(Phase::Kernels).as_secs_f64() * 1e3,
        profile.time_in(Phase::Download).as_secs_f64() * 1e3
    );
    if adapter.is_software() {
        println!(
            "note: {} is a software driver; its speed is an emulation's, not a GPU's",
            adapter.name
        );
    }
    Ok(())
}

fn make_batch(rows: usize) -> Result<RecordBatch, arrow::error::ArrowError> {
    let mut state = 0x2545f4914f6cdd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let id: Int32Array = (0..rows)
        .map(|i| (i % 97 != 0).then_some(i as i32))
        .collect();
    let quantity: Int64Array = (0..rows).map(|_| Some((next() % 50) as i64)).collect();
    let price: Float64Array = (0..rows)
        .map(|_| Some((next() % 100_000) as f64 / 100.0))
        .collect();
    let flag: UInt8Array = (0..rows).map(|_| Some((next() % 4) as u8)).collect();
    RecordBatch::try_from_iter([
        ("id", Arc::new(id) as ArrayRef),
        ("quantity", Arc::new(quantity)),
        ("price", Arc::new(price)),
        ("flag", Arc::new(flag)),
    ])
}
