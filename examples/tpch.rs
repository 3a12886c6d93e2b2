//! TPC-H end to end. Q1 and Q6 on the library alone: generates `lineitem` with tpchgen at
//! a scale factor (`--sf`, default 1), runs both queries on the CPU and on the GPU (with
//! transfers, and on a batch uploaded once), checks that every run gives the same answer,
//! checks it against the published TPC-H answers at SF1, and prints where each query's
//! time went. Then all 22 queries (`queries/tpch/`) through DataFusion with arrow-wgpu on
//! every table generated in memory: on the CPU (DataFusion's operators with the exact
//! aggregates) and, with `--gpu`, on the GPU engine (the rule's GPU operators), each
//! query's time, rows and (on the GPU) whether it agrees with the CPU.
//!
//! `cargo run --release --example tpch -- --sf 1 [--gpu]`

#[path = "common/tpch_data.rs"]
mod data;
#[path = "common/tpch_sql.rs"]
mod sql;

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
    let mut sql_on_gpu = false;
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
            "--gpu" => sql_on_gpu = true,
            "-h" | "--help" => {
                println!(
                    "usage: tpch [--sf SCALE_FACTOR] [--gpu]   (default 1; answers are checked at SF1; --gpu runs the 22 SQL queries on the GPU engine too)"
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
    all_22(sf, sql_on_gpu.then_some(gpu).flatten())
}

/// The 22 queries through DataFusion with arrow-wgpu, on the CPU and (if given) the GPU.
fn all_22(sf: f64, gpu: Option<Engine>) -> std::result::Result<(), Box<dyn std::error::Error>> {
    use std::sync::Arc;
    let runtime = tokio::runtime::Runtime::new()?;
    let start = Instant::now();
    let tables = sql::tables(sf, 4);
    println!(
        "
all 22 queries through DataFusion with arrow-wgpu (tables generated in {})",
        ms(start.elapsed())
    );
    let cpu = sql::session(Arc::new(Engine::new(Backend::Cpu)?), &tables);
    let gpu = gpu.map(|g| sql::session(Arc::new(g), &tables));
    for n in 1..=22 {
        let start = Instant::now();
        let want = runtime.block_on(sql::run(&cpu, n))?;
        let rows: usize = want.iter().map(RecordBatch::num_rows).sum();
        let mut line = format!("  Q{n:02}: cpu {:>10} ({rows} rows)", ms(start.elapsed()));
        if let Some(g) = &gpu {
            let start = Instant::now();
            let got = runtime.block_on(sql::run(g, n))?;
            let same = arrow::compute::concat_batches(&want[0].schema(), &want)?.columns()
                == arrow::compute::concat_batches(&got[0].schema(), &got)?.columns();
            line.push_str(&format!(
                ", gpu {:>10}{}",
                ms(start.elapsed()),
                if same { "" } else { " (DIFFERS from the CPU)" }
            ));
            if !same {
                return Err(format!("Q{n:02}: the GPU engine's answer differs").into());
            }
        }
        println!("{line}");
    }
    Ok(())
}
