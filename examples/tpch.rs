//! TPC-H Q1 and Q6 end to end: generates `lineitem` with tpchgen at a scale factor
//! (`--sf`, default 1), runs both queries on the CPU and on the GPU (with transfers, and on a
//! batch uploaded once), checks that every run gives the same answer, checks it against the
//! published TPC-H answers at SF1, and prints where each query's time went.
//!
//! `cargo run --release --example tpch -- --sf 1`

#[path = "common/tpch_data.rs"]
mod data;

use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use arrow_wgpu::{tpch, Backend, Engine, GpuBatch, Phase, Profile, Result};

type Query = fn(&Engine, &RecordBatch) -> Result<RecordBatch>;
type Resident = fn(&GpuBatch) -> Result<RecordBatch>;

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// "upload 1.0 ms, kernels 2.0 ms, download 0.1 ms" from a profile.
fn split(profile: &Profile) -> String {
    [Phase::Upload, Phase::Kernels, Phase::Download]
        .iter()
        .map(|p| format!("{p:?} {}", ms(profile.time_in(*p))).to_lowercase())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The result as `|`-separated lines under a header (answers are a few rows).
fn table(batch: &RecordBatch) -> std::result::Result<String, Box<dyn std::error::Error>> {
    let schema = batch.schema();
    let mut out = String::from("  ");
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    out.push_str(&names.join(" | "));
    let options = FormatOptions::default();
    let formatters = batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    for row in 0..batch.num_rows() {
        let cells: Vec<String> = formatters
            .iter()
            .map(|f| f.value(row).to_string())
            .collect();
        out.push_str("\n  ");
        out.push_str(&cells.join(" | "));
    }
    Ok(out)
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let mut sf = 1.0f64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--sf" => {
                sf = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|v: &f64| *v > 0.0)
                    .ok_or("--sf needs a positive number")?
            }
            "-h" | "--help" => {
                println!(
                    "usage: tpch [--sf SCALE_FACTOR]   (default 1; answers are checked at SF1)"
                );
                return Ok(());
            }
            other => return Err(format!("unknown argument {other} (try --help)").into()),
        }
    }
    let start = Instant::now();
    let lineitem = data::lineitem(sf, &data::q1_q6_columns());
    println!(
        "lineitem at SF{sf}: {} rows ({} columns read by Q1/Q6), generated in {}",
        lineitem.num_rows(),
        lineitem.num_columns(),
        ms(start.elapsed())
    );
    let cpu = Engine::new(Backend::Cpu)?;
    let gpu = match Engine::new(Backend::Gpu) {
        Ok(g) => {
            println!("GPU: {}", g.adapter().expect("a GPU engine has an adapter"));
            Some(g)
        }
        Err(e) => {
            println!("no GPU ({e}): the CPU path only");
            None
        }
    };
    let resident = match &gpu {
        Some(g) => {
            let start = Instant::now();
            let r = g.upload(&lineitem)?;
            println!(
                "uploaded once for the resident runs in {}",
                ms(start.elapsed())
            );
            Some(r)
        }
        None => None,
    };
    let queries: [(&str, Query, Resident); 2] = [
        ("Q1", tpch::q1, tpch::q1_resident),
        ("Q6", tpch::q6, tpch::q6_resident),
    ];
    for (name, query, on_gpu) in queries {
        println!("\n{name}");
        let start = Instant::now();
        let want = query(&cpu, &lineitem)?;
        println!(
            "  cpu:           {} ({} threads)",
            ms(start.elapsed()),
            cpu.cpu_threads()
        );
        if let (Some(g), Some(r)) = (&gpu, &resident) {
            let runs: [(&str, &dyn Fn() -> Result<RecordBatch>); 2] = [
                ("gpu_transfers", &|| query(g, &lineitem)),
                ("gpu_resident", &|| on_gpu(r)),
            ];
            for (label, run) in runs {
                let start = Instant::now();
                let (got, profile) = g.profiled(|_| run())?;
                let head = format!("{label}:");
                println!("  {head:<14} {} ({})", ms(start.elapsed()), split(&profile));
                if got != want {
                    return Err(format!("{name}: {label} and the CPU disagree").into());
                }
            }
            println!("  GPU and CPU agree exactly");
        }
        println!("{}", table(&want)?);
        if sf == 1.0 {
            let check = if name == "Q1" {
                tpch::check_q1_sf1(&want)
            } else {
                tpch::check_q6_sf1(&want)
            };
            match check {
                Ok(()) => println!("  matches the published TPC-H answer at SF1"),
                Err(e) => return Err(format!("{name} differs from the TPC-H answer: {e}").into()),
            }
        } else {
            println!("  (answers are published for SF1: run with --sf 1 to check them)");
        }
    }
    Ok(())
}
