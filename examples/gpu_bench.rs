//! The GPU side of `scripts/gpu-bench.sh`: filter, sort, group-by, distinct and TPC-H Q1 on
//! the GPU adapter (`Backend::Gpu`), with the data resident and with transfers, at the sizes
//! asked, each timed (median of `--runs`) and its device work counted (dispatches, host
//! syncs, bytes the kernels' bindings span against the minimal traffic). One JSON object a
//! line, flushed as each case ends, so a run cut short keeps what it measured; a case that
//! would start past `--budget-s` is written as skipped.
//!
//! Each answer with transfers is checked on the host (`"check": "ok"` or what differed), in
//! one pass over the input: a filter's row count and sums, a sort's order and its keys as
//! a multiset, each group's count and sum computed directly, a distinct's key set, and
//! TPC-H Q1 against the CPU path's bits. A real adapter's large chunks (rows past 2^27,
//! bindings of gigabytes) are where llvmpipe's tests can't reach.
//!
//! ```sh
//! cargo run --release --example gpu_bench -- --sizes 16000000,128000000 --runs 3 --budget-s 240
//! # one case, its phases on stderr:
//! cargo run --release --example gpu_bench -- --sizes 16000000 --only group_by:k10m --profile
//! ```
//!
//! `first_seconds` is a resident case's first run, shaders compiled in it (what a new
//! query's first call pays). Mode `cpu` is the same case on our CPU path (`Backend::Cpu`
//! on every core, its answer checked too; `--no-cpu` leaves it out): the GPU against the
//! path a machine without one runs.
//!
//! The data are the same formulas `scripts/gpu_bench_peers.py` evaluates on the card for
//! PyTorch and CuPy: key `k1k` = (i * 2654435761) mod 1000 (u32), `k10m` the same mod 10^7,
//! `ki64` = i * 2654435761 mod 2^61 - 1 (i64), `kf64` = ki64 / 2^61 (f64), value `v` =
//! (i * 40503) mod 1000 / 2 (f64).

#[path = "common/tpch_data.rs"]
mod data;

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, UInt32Array};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, Int64Type, UInt64Type};
use arrow_wgpu::{col, lit, tpch, Agg, Backend, Engine, GpuBatch, Keep, SortKey, Traffic};

const HASH: u64 = 2_654_435_761;
const MERSENNE61: u64 = (1 << 61) - 1;

struct Args {
    sizes: Vec<usize>,
    runs: usize,
    budget: Duration,
    q1_sf: f64,
    /// Cases to run (`op` or `op:key`); all when empty.
    only: Vec<String>,
    /// Print each profiled run's phases to stderr.
    profile: bool,
    /// Also time our CPU path (`Backend::Cpu`, every core) on each case.
    cpu: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        sizes: vec![1 << 20],
        runs: 3,
        budget: Duration::from_secs(240),
        q1_sf: 0.1,
        only: Vec::new(),
        profile: false,
        cpu: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--profile" {
            args.profile = true;
            continue;
        }
        if flag == "--no-cpu" {
            args.cpu = false;
            continue;
        }
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--sizes" => {
                args.sizes = value
                    .split(',')
                    .map(|s| s.trim().parse().map_err(|e| format!("--sizes {s}: {e}")))
                    .collect::<Result<_, _>>()?
            }
            "--runs" => args.runs = value.parse().map_err(|e| format!("--runs: {e}"))?,
            "--budget-s" => {
                args.budget =
                    Duration::from_secs_f64(value.parse().map_err(|e| format!("--budget-s: {e}"))?)
            }
            "--q1-sf" => args.q1_sf = value.parse().map_err(|e| format!("--q1-sf: {e}"))?,
            "--only" => args.only = value.split(',').map(|s| s.trim().to_string()).collect(),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

fn hash(i: u64) -> u64 {
    (i.wrapping_mul(HASH)) % MERSENNE61
}

/// The columns of `rows` rows, by the formulas in the module docs.
fn column(name: &str, rows: usize) -> ArrayRef {
    let idx = 0..rows as u64;
    match name {
        "k1k" => Arc::new(UInt32Array::from_iter_values(
            idx.map(|i| (i.wrapping_mul(HASH) % 1000) as u32),
        )),
        "k10m" => Arc::new(UInt32Array::from_iter_values(
            idx.map(|i| (i.wrapping_mul(HASH) % 10_000_000) as u32),
        )),
        "ki64" => Arc::new(Int64Array::from_iter_values(idx.map(|i| hash(i) as i64))),
        "kf64" => Arc::new(Float64Array::from_iter_values(
            idx.map(|i| hash(i) as f64 / (1u64 << 61) as f64),
        )),
        "v" => Arc::new(Float64Array::from_iter_values(
            idx.map(|i| (i.wrapping_mul(40_503) % 1000) as f64 / 2.0),
        )),
        other => unreachable!("no column {other}"),
    }
}

fn batch(columns: &[&str], rows: usize) -> RecordBatch {
    RecordBatch::try_from_iter(columns.iter().map(|c| (*c, column(c, rows)))).unwrap()
}

/// One case: what it runs on a resident batch and on a host batch.
struct Case {
    op: &'static str,
    key: &'static str,
    columns: Vec<&'static str>,
    resident: fn(&GpuBatch, &str) -> arrow_wgpu::Result<()>,
    host: fn(&Engine, &RecordBatch, &str) -> arrow_wgpu::Result<RecordBatch>,
    /// Whether `host`'s answer (second) is right for the input (first).
    check: fn(&RecordBatch, &RecordBatch, &str) -> Result<(), String>,
}

fn cases() -> Vec<Case> {
    let filter = |key| Case {
        op: "filter",
        key,
        columns: vec![key, "v"],
        resident: |g, _| g.filter(&col("v").gt(lit(249.75))).map(|_| ()),
        host: |e, b, _| e.filter(b, &col("v").gt(lit(249.75))),
        check: check_filter,
    };
    let sort = |key| Case {
        op: "sort",
        key,
        columns: vec![key],
        resident: |g, k| g.sort(&[SortKey::asc(k)], None).map(|_| ()),
        host: |e, b, k| e.sort(b, &[SortKey::asc(k)], None),
        check: check_sort,
    };
    let group_by = |key| Case {
        op: "group_by",
        key,
        columns: vec![key, "v"],
        resident: |g, k| {
            g.group_by(&[k], &[Agg::count_star(), Agg::sum(col("v"))])
                .map(|_| ())
        },
        host: |e, b, k| e.group_by(b, &[k], &[Agg::count_star(), Agg::sum(col("v"))]),
        check: check_group_by,
    };
    let distinct = |key| Case {
        op: "distinct",
        key,
        columns: vec![key],
        resident: |g, k| g.distinct(&[k], Keep::Any).map(|_| ()),
        host: |e, b, k| e.distinct(b, &[k], Keep::Any),
        check: check_distinct,
    };
    vec![
        filter("k1k"),
        sort("k1k"),
        sort("ki64"),
        sort("kf64"),
        group_by("k1k"),
        group_by("k10m"),
        distinct("k1k"),
        distinct("k10m"),
    ]
}

/// Median of `runs` timings of `f`, each ended by a wait for the device, and the last run's
/// answer.
fn median<T>(
    runs: usize,
    mut f: impl FnMut() -> arrow_wgpu::Result<T>,
) -> arrow_wgpu::Result<(f64, T)> {
    let mut t = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        last = Some(f()?);
        t.push(start.elapsed().as_secs_f64());
    }
    t.sort_by(f64::total_cmp);
    Ok((t[t.len() / 2], last.expect("at least one run")))
}

/// A column's values as u64: unsigned and non-negative integers as themselves, floats as
/// their bits (the benchmark's keys are non-negative, so both orders agree with u64's).
fn words(a: &ArrayRef) -> Result<Vec<u64>, String> {
    if a.null_count() > 0 {
        return Err(format!("{} nulls in a column without any", a.null_count()));
    }
    Ok(match a.data_type() {
        DataType::Float64 => a
            .as_primitive::<Float64Type>()
            .values()
            .iter()
            .map(|v| v.to_bits())
            .collect(),
        _ => {
            let c = cast(a, &DataType::UInt64).map_err(|e| e.to_string())?;
            c.as_primitive::<UInt64Type>().values().to_vec()
        }
    })
}

fn floats(a: &ArrayRef) -> Result<Vec<f64>, String> {
    let c = cast(a, &DataType::Float64).map_err(|e| e.to_string())?;
    Ok(c.as_primitive::<Float64Type>().values().to_vec())
}

/// A 64-bit mix, summed over a column: equal for two columns holding the same multiset
/// (and unequal, but for a 2^-64 chance, for any two that differ).
fn multiset(words: &[u64]) -> u64 {
    words.iter().fold(0u64, |acc, &w| {
        let mut z = w.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        acc.wrapping_add(z ^ (z >> 31))
    })
}

fn same<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: {got:?}, expected {want:?}"))
    }
}

/// Rows with v > 249.75: their count, their keys as a multiset and their values' sum (the
/// values are halves below 500, so every sum here is exact in f64).
fn check_filter(input: &RecordBatch, out: &RecordBatch, _: &str) -> Result<(), String> {
    let (k, v) = (words(input.column(0))?, floats(input.column(1))?);
    let kept: Vec<usize> = (0..v.len()).filter(|&i| v[i] > 249.75).collect();
    same("rows", out.num_rows(), kept.len())?;
    let want: Vec<u64> = kept.iter().map(|&i| k[i]).collect();
    same("keys", multiset(&words(out.column(0))?), multiset(&want))?;
    same(
        "sum of v",
        floats(out.column(1))?.iter().sum::<f64>(),
        kept.iter().map(|&i| v[i]).sum::<f64>(),
    )
}

/// Keys in order and the input's keys as a multiset.
fn check_sort(input: &RecordBatch, out: &RecordBatch, _: &str) -> Result<(), String> {
    let got = words(out.column(0))?;
    same("rows", got.len(), input.num_rows())?;
    if let Some(i) = (1..got.len()).find(|&i| got[i - 1] > got[i]) {
        return Err(format!(
            "out of order at row {i}: {} after {}",
            got[i],
            got[i - 1]
        ));
    }
    same("keys", multiset(&got), multiset(&words(input.column(0))?))
}

/// Each group's count and sum of v, computed directly (keys are below 10^7).
fn check_group_by(input: &RecordBatch, out: &RecordBatch, _: &str) -> Result<(), String> {
    let (k, v) = (words(input.column(0))?, floats(input.column(1))?);
    let n = k.iter().max().map_or(0, |m| *m as usize + 1);
    let (mut count, mut sum) = (vec![0i64; n], vec![0f64; n]);
    for (&key, &x) in k.iter().zip(&v) {
        count[key as usize] += 1;
        sum[key as usize] += x;
    }
    let groups = count.iter().filter(|&&c| c > 0).count();
    same("groups", out.num_rows(), groups)?;
    let (gk, gs) = (words(out.column(0))?, floats(out.column(2))?);
    let gc = cast(out.column(1), &DataType::Int64).map_err(|e| e.to_string())?;
    let gc = gc.as_primitive::<Int64Type>().values();
    let mut seen = vec![false; n];
    for i in 0..gk.len() {
        let key = gk[i] as usize;
        if key >= n || seen[key] {
            return Err(format!("group {key} is not an input key or comes twice"));
        }
        seen[key] = true;
        if (gc[i], gs[i]) != (count[key], sum[key]) {
            return Err(format!(
                "group {key}: count {} and sum {}, expected {} and {}",
                gc[i], gs[i], count[key], sum[key]
            ));
        }
    }
    Ok(())
}

/// Each input key once (the distinct cases' keys are below 10^7: a bitmap of them).
fn check_distinct(input: &RecordBatch, out: &RecordBatch, _: &str) -> Result<(), String> {
    let k = words(input.column(0))?;
    let n = k.iter().max().map_or(0, |m| *m as usize + 1);
    let mut want = vec![false; n];
    for &key in &k {
        want[key as usize] = true;
    }
    let mut got = vec![false; n];
    for key in words(out.column(0))? {
        let key = key as usize;
        if key >= n || !want[key] || got[key] {
            return Err(format!("key {key} is not an input key or comes twice"));
        }
        got[key] = true;
    }
    same(
        "distinct keys",
        got.iter().filter(|&&g| g).count(),
        want.iter().filter(|&&w| w).count(),
    )
}

/// TPC-H Q1 against the CPU path's bits.
fn check_q1(input: &RecordBatch, out: &RecordBatch, _: &str) -> Result<(), String> {
    let cpu = Engine::new(Backend::Cpu).map_err(|e| e.to_string())?;
    let want = tpch::q1(&cpu, input).map_err(|e| e.to_string())?;
    same("Q1", out == &want, true)
}

fn traffic_json(t: &Traffic) -> String {
    format!(
        "\"device_bytes\": {}, \"minimal_bytes\": {}, \"dispatches\": {}, \"host_syncs\": {}, \"buffers\": {}",
        t.device_bytes, t.minimal_bytes, t.dispatches, t.host_syncs, t.buffers
    )
}

fn emit(line: String) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

impl Args {
    /// Whether `--only` (if given) names this case.
    fn wants(&self, op: &str, key: &str) -> bool {
        self.only.is_empty()
            || self
                .only
                .iter()
                .any(|o| o == op || *o == format!("{op}:{key}"))
    }
}

/// One case's line: its time and counted work (or its error), what its answer's check
/// said (`None`: not checked) and its first run's seconds (`None`: not timed).
#[allow(clippy::too_many_arguments)]
fn record(
    adapter: &str,
    op: &str,
    key: &str,
    rows: usize,
    mode: &str,
    result: arrow_wgpu::Result<(f64, Traffic)>,
    check: Option<Result<(), String>>,
    first_seconds: Option<f64>,
) {
    let check = match check {
        None => String::new(),
        Some(Ok(())) => ", \"check\": \"ok\"".to_string(),
        Some(Err(e)) => format!(", \"check\": {:?}", format!("failed: {e}")),
    };
    let check = match first_seconds {
        Some(first) => format!("{check}, \"first_seconds\": {first}"),
        None => check,
    };
    let head = format!(
        "{{\"engine\": \"arrow-wgpu\", \"adapter\": {adapter:?}, \"op\": {op:?}, \"key\": {key:?}, \"rows\": {rows}, \"mode\": {mode:?}"
    );
    emit(match result {
        Ok((seconds, t)) => format!(
            "{head}, \"seconds\": {seconds}, \"rows_per_second\": {}, {}{check}}}",
            rows as f64 / seconds.max(1e-12),
            traffic_json(&t)
        ),
        Err(e) => format!("{head}, \"error\": {:?}}}", e.to_string()),
    });
}

fn skipped(adapter: &str, op: &str, key: &str, rows: usize) {
    emit(format!(
        "{{\"engine\": \"arrow-wgpu\", \"adapter\": {adapter:?}, \"op\": {op:?}, \"key\": {key:?}, \"rows\": {rows}, \"skipped\": \"over the time budget\"}}"
    ));
}

/// Resident: upload once, run once untimed, time `runs`, count one profiled run. With
/// transfers: the host batch through the engine (upload, kernels, download), timed once
/// per run.
fn run_case(
    engine: &Engine,
    cpu: Option<&Engine>,
    args: &Args,
    adapter: &str,
    case: &Case,
    batch: &RecordBatch,
) {
    let rows = batch.num_rows();
    let (resident, host, key) = (case.resident, case.host, case.key);
    let show = |mode: &str, profile: &arrow_wgpu::Profile| {
        if args.profile {
            eprintln!("{} {key} {rows} {mode}:\n{profile}", case.op);
        }
    };
    let mut first = 0.0;
    let res = (|| {
        let gpu = engine.upload(batch)?;
        gpu.wait()?;
        let start = Instant::now();
        resident(&gpu, key)?;
        gpu.wait()?;
        first = start.elapsed().as_secs_f64();
        let (seconds, ()) = median(args.runs, || {
            resident(&gpu, key)?;
            gpu.wait()
        })?;
        let (_, profile) = engine.profiled(|_| resident(&gpu, key))?;
        show("resident", &profile);
        Ok((seconds, profile.traffic()))
    })();
    record(
        adapter,
        case.op,
        key,
        rows,
        "resident",
        res,
        None,
        Some(first),
    );
    // The host batch through `engine`, its answer checked, and its device work counted
    // where it has any.
    let through = |engine: &Engine, mode: &str, counted: bool| {
        let mut checked = None;
        let res = (|| {
            let (seconds, answer) = median(args.runs, || host(engine, batch, key))?;
            checked = Some((case.check)(batch, &answer, key));
            if !counted {
                return Ok((seconds, Traffic::default()));
            }
            let (_, profile) = engine.profiled(|e| host(e, batch, key))?;
            show(mode, &profile);
            Ok((seconds, profile.traffic()))
        })();
        record(adapter, case.op, key, rows, mode, res, checked, None);
    };
    through(engine, "with_transfers", true);
    if let Some(cpu) = cpu {
        through(cpu, "cpu", false);
    }
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("gpu_bench: {e}");
            std::process::exit(2);
        }
    };
    let engine = match Engine::new(Backend::Gpu) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("gpu_bench: no GPU adapter: {e}");
            std::process::exit(1);
        }
    };
    let adapter = engine
        .adapter()
        .map(|a| format!("{} ({:?})", a.name, a.backend))
        .unwrap_or_default();
    let cpu = match args.cpu.then(|| Engine::new(Backend::Cpu)).transpose() {
        Ok(cpu) => cpu,
        Err(e) => {
            eprintln!("gpu_bench: no CPU engine: {e}");
            std::process::exit(1);
        }
    };
    let started = Instant::now();
    // TPC-H Q1 on lineitem's Q1 columns at --q1-sf, first: a real query's answer checked
    // before the sizes take the budget.
    let q1 = Case {
        op: "tpch_q1",
        key: "",
        columns: Vec::new(),
        resident: |g, _| tpch::q1_resident(g).map(|_| ()),
        host: |e, b, _| tpch::q1(e, b),
        check: check_q1,
    };
    if args.wants(q1.op, q1.key) {
        let lineitem = data::lineitem(args.q1_sf, &data::q1_q6_columns());
        run_case(&engine, cpu.as_ref(), &args, &adapter, &q1, &lineitem);
    }
    for &rows in &args.sizes {
        for case in cases() {
            if !args.wants(case.op, case.key) {
                continue;
            }
            if started.elapsed() > args.budget {
                skipped(&adapter, case.op, case.key, rows);
                continue;
            }
            run_case(
                &engine,
                cpu.as_ref(),
                &args,
                &adapter,
                &case,
                &batch(&case.columns, rows),
            );
        }
    }
    eprintln!(
        "gpu_bench: done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
