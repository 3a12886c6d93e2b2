//! `arrow-wgpu report`: every operation over a ladder of sizes in four modes: arrow-wgpu's
//! CPU path, DataFusion's own CPU execution of the same operation in SQL (what users would
//! run without a GPU, so what the GPU has to beat), and the GPU (data resident, and with
//! the upload and download); the answers checked against each other; an HTML page with
//! charts, a Markdown summary and the raw numbers as JSON.
//!
//! Timings are wall-clock medians of `--runs` runs after one untimed run (whose answer is
//! the one checked). The time split comes from the engine's profile of the median run
//! (DataFusion's is all CPU work). The GPU's answers must equal the CPU path's bit for
//! bit; DataFusion's need only have as many rows (its group order and float sums differ).

mod chart;

use std::fmt::Write as _;
use std::fs;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use arrow::array::{ArrayRef, Float64Array, Int32Array, Int64Array, UInt32Array, UInt8Array};
use arrow::record_batch::RecordBatch;
use arrow_wgpu::{
    col, lit, AdapterSummary, Agg, Backend, Engine, Expr, GpuBatch, Keep, Phase, SortKey, Traffic,
};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use serde_json::json;

use crate::args::ReportArgs;

/// A single timed run above this stops the ladder for that operation and mode: the
/// sizes above it would take minutes each on a software driver.
const SLOW_RUN: Duration = Duration::from_secs(20);

/// The operations measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Filter,
    Sort,
    GroupBy,
    Distinct,
}

impl Op {
    pub const ALL: [Op; 4] = [Op::Filter, Op::Sort, Op::GroupBy, Op::Distinct];

    pub fn name(self) -> &'static str {
        match self {
            Op::Filter => "filter",
            Op::Sort => "sort",
            Op::GroupBy => "group_by",
            Op::Distinct => "distinct",
        }
    }

    /// What the operation does, in words, for the page.
    pub fn what(self) -> &'static str {
        match self {
            Op::Filter => {
                "qty BETWEEN 10 AND 30 AND price > 500.0 (about 21% of rows kept; all 5 columns)"
            }
            Op::Sort => "by id (random u32), all 5 columns gathered",
            Op::GroupBy => "by grp (1,000 groups): count(*), sum(price), avg(qty)",
            Op::Distinct => "on (grp, flag) (4,000 keys), keep first, whole rows",
        }
    }

    /// The same operation in SQL over table `t`, for DataFusion. DataFusion 55 has
    /// `DISTINCT ON`; without an ORDER BY it keeps some row per key, not necessarily the
    /// first, which is why only DataFusion's row counts are checked.
    pub fn sql(self) -> &'static str {
        match self {
            Op::Filter => "SELECT * FROM t WHERE qty BETWEEN 10 AND 30 AND price > 500.0",
            Op::Sort => "SELECT * FROM t ORDER BY id",
            Op::GroupBy => "SELECT grp, count(*), sum(price), avg(qty) FROM t GROUP BY grp",
            Op::Distinct => "SELECT DISTINCT ON (grp, flag) * FROM t",
        }
    }
}

/// Where an operation ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// arrow-wgpu's exact CPU path (`Backend::Cpu`): the reference answer.
    Cpu,
    /// DataFusion's own execution of the operation's SQL ([`Op::sql`]) in a plain
    /// session: what users have without arrow-wgpu.
    DataFusion,
    GpuResident,
    GpuTransfers,
}

impl Mode {
    pub const ALL: [Mode; 4] = [
        Mode::Cpu,
        Mode::DataFusion,
        Mode::GpuResident,
        Mode::GpuTransfers,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Mode::Cpu => "cpu",
            Mode::DataFusion => "datafusion",
            Mode::GpuResident => "gpu_resident",
            Mode::GpuTransfers => "gpu_transfers",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Mode::Cpu => "CPU (arrow-wgpu)",
            Mode::DataFusion => "DataFusion (CPU)",
            Mode::GpuResident => "GPU, data resident",
            Mode::GpuTransfers => "GPU, with upload + download",
        }
    }
}

/// One measured point.
#[derive(Debug, Clone)]
pub struct Point {
    pub op: Op,
    pub mode: Mode,
    pub rows: usize,
    /// The median wall time.
    pub seconds: f64,
    /// Upload, kernels, download, CPU (seconds) of the median run.
    pub split: [f64; 4],
    /// The answer equals the CPU path's: bit for bit for the GPU, in its row count for
    /// DataFusion.
    pub agrees: bool,
    /// What a GPU run asked of the device (counted; the same every run).
    pub traffic: Option<Traffic>,
}

impl Point {
    pub fn rows_per_second(&self) -> f64 {
        self.rows as f64 / self.seconds.max(1e-9)
    }
}

/// The smallest size from which the GPU mode beats the CPU at that size and every larger
/// one measured; `None` if it never does.
pub fn crossover(points: &[Point], op: Op, mode: Mode) -> Option<usize> {
    let time = |m: Mode, rows: usize| {
        points
            .iter()
            .find(|p| p.op == op && p.mode == m && p.rows == rows)
            .map(|p| p.seconds)
    };
    let mut sizes: Vec<usize> = points
        .iter()
        .filter(|p| p.op == op && p.mode == mode)
        .map(|p| p.rows)
        .collect();
    sizes.sort_unstable();
    let mut from = None;
    for &rows in sizes.iter().rev() {
        match (time(mode, rows), time(Mode::Cpu, rows)) {
            (Some(g), Some(c)) if g < c => from = Some(rows),
            _ => break,
        }
    }
    from
}

/// The ladder: 1,000 rows up to `max`, about 3x a step (1k, 3k, 10k, 30k, ...).
fn ladder(max: usize) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut decade = 1000usize;
    while decade <= max {
        sizes.push(decade);
        if decade.checked_mul(3).is_some_and(|x| x <= max) {
            sizes.push(decade * 3);
        }
        // A decade past usize::MAX ends the ladder rather than wrapping to a small one.
        match decade.checked_mul(10) {
            Some(next) => decade = next,
            None => break,
        }
    }
    if sizes.last() != Some(&max) && max >= 1000 {
        sizes.push(max);
    }
    sizes
}

/// The data: five columns of uniform random values (a fixed seed, so every run measures
/// the same rows).
fn make_batch(rows: usize) -> Result<RecordBatch> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let id: UInt32Array = (0..rows).map(|_| next() as u32).collect();
    let grp: Int32Array = (0..rows).map(|_| (next() % 1000) as i32).collect();
    let qty: Int64Array = (0..rows).map(|_| (next() % 50) as i64).collect();
    let price: Float64Array = (0..rows)
        .map(|_| (next() % 100_000) as f64 / 100.0)
        .collect();
    let flag: UInt8Array = (0..rows).map(|_| (next() % 4) as u8).collect();
    Ok(RecordBatch::try_from_iter([
        ("id", Arc::new(id) as ArrayRef),
        ("grp", Arc::new(grp)),
        ("qty", Arc::new(qty)),
        ("price", Arc::new(price)),
        ("flag", Arc::new(flag)),
    ])?)
}

struct Work {
    predicate: Expr,
    sort_keys: Vec<SortKey>,
    aggs: Vec<Agg>,
}

impl Work {
    fn new() -> Work {
        Work {
            predicate: col("qty")
                .between(lit(10i64), lit(30i64))
                .and(col("price").gt(lit(500.0))),
            sort_keys: vec![SortKey::asc("id")],
            aggs: vec![
                Agg::count_star(),
                Agg::sum(col("price")),
                Agg::mean(col("qty")),
            ],
        }
    }

    fn on_host(
        &self,
        engine: &Engine,
        op: Op,
        batch: &RecordBatch,
    ) -> arrow_wgpu::Result<RecordBatch> {
        match op {
            Op::Filter => engine.filter(batch, &self.predicate),
            Op::Sort => engine.sort(batch, &self.sort_keys, None),
            Op::GroupBy => engine.group_by(batch, &["grp"], &self.aggs),
            Op::Distinct => engine.distinct(batch, &["grp", "flag"], Keep::First),
        }
    }

    /// The operation on a resident batch, waited for; the result as the GPU left it (the
    /// group-by's comes back to the host, as its API returns it).
    fn resident(&self, op: Op, batch: &GpuBatch) -> arrow_wgpu::Result<Resident> {
        let out = match op {
            Op::Filter => Resident::Gpu(batch.filter(&self.predicate)?),
            Op::Sort => Resident::Gpu(batch.sort(&self.sort_keys, None)?),
            Op::GroupBy => Resident::Host(batch.group_by(&["grp"], &self.aggs)?),
            Op::Distinct => Resident::Gpu(batch.distinct(&["grp", "flag"], Keep::First)?),
        };
        batch.wait()?;
        Ok(out)
    }
}

enum Resident {
    Gpu(GpuBatch),
    Host(RecordBatch),
}

impl Resident {
    fn download(self) -> arrow_wgpu::Result<RecordBatch> {
        match self {
            Resident::Gpu(b) => b.to_record_batch(),
            Resident::Host(b) => Ok(b),
        }
    }
}

/// What [`measure`] found: the answer of the untimed run, the median run's time and
/// profile split, and the device work of a run (counted, so the same each run).
type Measured = (Option<RecordBatch>, f64, [f64; 4], Traffic);

/// Runs `f` once untimed (its answer is returned) and `runs` times timed.
fn measure(
    engine: &Engine,
    runs: usize,
    mut f: impl FnMut(&Engine) -> arrow_wgpu::Result<Option<RecordBatch>>,
) -> Result<Measured> {
    let answer = f(engine)?;
    let mut traffic = Traffic::default();
    let (seconds, split) = median_of(runs, || {
        let (_, profile) = engine.profiled(|e| f(e))?;
        traffic = profile.traffic();
        Ok([Phase::Upload, Phase::Kernels, Phase::Download, Phase::Cpu]
            .map(|p| profile.time_in(p).as_secs_f64()))
    })?;
    Ok((answer, seconds, split, traffic))
}

/// Times `run` `runs` times (at least once; fewer if a run takes over [`SLOW_RUN`]); the
/// median run's wall time and the split `run` returned for it. Every mode goes through
/// here, so all are timed alike.
fn median_of(runs: usize, mut run: impl FnMut() -> Result<[f64; 4]>) -> Result<(f64, [f64; 4])> {
    let mut samples = Vec::with_capacity(runs.max(1));
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        let split = run()?;
        let seconds = start.elapsed().as_secs_f64();
        samples.push((seconds, split));
        if start.elapsed() > SLOW_RUN {
            break;
        }
    }
    samples.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(samples[samples.len() / 2])
}

/// DataFusion's own CPU execution, as users have it: a plain `SessionContext` with its
/// default configuration (as many partitions as the machine has cores) and none of
/// arrow-wgpu's functions or operators registered. Without arrow-wgpu this is what users
/// would run, so it is the speed the GPU has to beat.
struct DataFusion {
    /// Built once: a runtime per query would time the start of its threads.
    runtime: tokio::runtime::Runtime,
}

impl DataFusion {
    fn new() -> Result<DataFusion> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the tokio runtime for DataFusion")?;
        Ok(DataFusion { runtime })
    }

    /// A session with `batch` registered as table `t`. The batch is cut (zero-copy) into
    /// DataFusion's batch size and dealt over its partitions, as a table read from files
    /// would be: one big batch in one partition would run on one core.
    fn session(&self, batch: &RecordBatch) -> Result<(SessionContext, usize)> {
        let ctx = SessionContext::new();
        let config = ctx.copied_config();
        let batch_rows = config.batch_size().max(1);
        let partitions = config.target_partitions().max(1);
        let slices: Vec<RecordBatch> = (0..batch.num_rows())
            .step_by(batch_rows)
            .map(|at| batch.slice(at, batch_rows.min(batch.num_rows() - at)))
            .collect();
        let per_partition = slices.len().div_ceil(partitions).max(1);
        let mut parts: Vec<Vec<RecordBatch>> = slices
            .chunks(per_partition)
            .map(<[RecordBatch]>::to_vec)
            .collect();
        if parts.is_empty() {
            parts.push(Vec::new());
        }
        let table = MemTable::try_new(batch.schema(), parts)
            .context("making a DataFusion MemTable of the batch")?;
        ctx.register_table("t", Arc::new(table))
            .context("registering the batch with DataFusion")?;
        Ok((ctx, partitions))
    }

    /// Plans and runs `sql` to the end (`ctx.sql(..).await?.collect().await?`); the rows
    /// of its answer.
    fn rows(&self, ctx: &SessionContext, sql: &str) -> Result<usize> {
        self.runtime
            .block_on(async {
                let batches = ctx.sql(sql).await?.collect().await?;
                Ok::<_, datafusion::error::DataFusionError>(
                    batches.iter().map(RecordBatch::num_rows).sum(),
                )
            })
            .with_context(|| format!("DataFusion running {sql}"))
    }

    /// Runs `sql` once untimed (its row count is returned) and `runs` times timed, as
    /// [`measure`] does; the median time.
    fn measure(&self, ctx: &SessionContext, sql: &str, runs: usize) -> Result<(usize, f64)> {
        let rows = self.rows(ctx, sql)?;
        let (seconds, _) = median_of(runs, || self.rows(ctx, sql).map(|_| [0.0; 4]))?;
        Ok((rows, seconds))
    }
}

pub fn run(args: ReportArgs) -> Result<()> {
    let max_rows = match (args.quick, args.max_rows) {
        (true, _) => 100_000,
        (false, Some(m)) if m < 1000 => bail!("--max-rows: at least 1000"),
        (false, Some(m)) => m,
        (false, None) => 3_000_000,
    };
    let runs = args.runs.unwrap_or(if args.quick { 1 } else { 3 }).max(1);
    let ops: Vec<Op> = if args.ops.is_empty() {
        Op::ALL.to_vec()
    } else {
        args.ops
            .iter()
            .map(|name| {
                Op::ALL
                    .into_iter()
                    .find(|o| o.name() == name.trim().replace('-', "_"))
                    .with_context(|| {
                        format!(
                            "--ops: unknown operation '{name}' (filter, sort, group_by, distinct)"
                        )
                    })
            })
            .collect::<Result<_>>()?
    };
    fs::create_dir_all(&args.out)
        .with_context(|| format!("can't create the directory {}", args.out.display()))?;
    let sizes = ladder(max_rows);
    let started = Instant::now();

    let cpu = Engine::new(Backend::Cpu)?;
    let gpu = match Engine::new(Backend::Gpu) {
        Ok(engine) => Some(engine),
        Err(e) => {
            eprintln!("no GPU: {e}; measuring the CPU path only");
            None
        }
    };
    let adapter = gpu.as_ref().and_then(|g| g.adapter().cloned());
    if let Some(a) = &adapter {
        eprintln!("adapter: {a}");
    }
    let datafusion = DataFusion::new()?;
    let mut datafusion_partitions = 0;
    let work = Work::new();
    let mut points: Vec<Point> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    let mut unsupported: Vec<String> = Vec::new();
    let mut stopped: Vec<(Op, Mode, usize)> = Vec::new();

    for &rows in &sizes {
        let batch = make_batch(rows)?;
        let (session, partitions) = datafusion.session(&batch)?;
        datafusion_partitions = partitions;
        for &op in &ops {
            let (want, seconds, split, _) =
                measure(&cpu, runs, |e| work.on_host(e, op, &batch).map(Some))?;
            let want = want.expect("the host path answers");
            points.push(Point {
                op,
                mode: Mode::Cpu,
                rows,
                seconds,
                split,
                agrees: true,
                traffic: None,
            });
            let mut line = format!(
                "{:<9} {:>10} rows: CPU {}",
                op.name(),
                thousands(rows),
                ms(seconds)
            );
            if !stopped
                .iter()
                .any(|(o, m, _)| *o == op && *m == Mode::DataFusion)
            {
                let mode = Mode::DataFusion;
                match datafusion.measure(&session, op.sql(), runs) {
                    Ok((got_rows, seconds)) => {
                        // Only the row count: DataFusion's group order, float sums and
                        // the row DISTINCT ON keeps differ from ours by design.
                        let agrees = got_rows == want.num_rows();
                        if !agrees {
                            failures.push(format!(
                                "{} {} at {rows} rows: {} rows in the answer, the CPU path's has {}",
                                op.name(),
                                mode.label(),
                                thousands(got_rows),
                                thousands(want.num_rows())
                            ));
                        }
                        points.push(Point {
                            op,
                            mode,
                            rows,
                            seconds,
                            split: [0.0, 0.0, 0.0, seconds],
                            agrees,
                            traffic: None,
                        });
                        let _ = write!(
                            line,
                            ", DataFusion {}{}",
                            ms(seconds),
                            if agrees { "" } else { " (ROW COUNT DIFFERS)" }
                        );
                        if seconds > SLOW_RUN.as_secs_f64() {
                            stopped.push((op, mode, rows));
                        }
                    }
                    Err(e) => {
                        failures.push(format!(
                            "{} {} at {rows} rows: {e:#}",
                            op.name(),
                            mode.label()
                        ));
                        stopped.push((op, mode, rows));
                    }
                }
            }
            if let Some(gpu) = &gpu {
                for mode in [Mode::GpuResident, Mode::GpuTransfers] {
                    if stopped.iter().any(|(o, m, _)| *o == op && *m == mode) {
                        continue;
                    }
                    let measured = match mode {
                        Mode::GpuTransfers => {
                            measure(gpu, runs, |e| work.on_host(e, op, &batch).map(Some))
                        }
                        _ => (|| {
                            let resident = gpu.upload(&batch)?;
                            let answer = work.resident(op, &resident)?.download()?;
                            measure(gpu, runs, |_| work.resident(op, &resident).map(|_| None))
                                .map(|(_, s, split, t)| (Some(answer), s, split, t))
                        })(),
                    };
                    let (got, seconds, split, traffic) = match measured {
                        Ok(m) => m,
                        Err(e) => {
                            let what =
                                format!("{} {} at {rows} rows: {e:#}", op.name(), mode.label());
                            // What the adapter can't run is a finding, not a failure; an
                            // error on input the CPU took is.
                            let gpu_side = e
                                .downcast_ref::<arrow_wgpu::Error>()
                                .is_some_and(arrow_wgpu::Error::is_gpu_side);
                            if gpu_side {
                                unsupported.push(what);
                            } else {
                                failures.push(what);
                            }
                            stopped.push((op, mode, rows));
                            continue;
                        }
                    };
                    let agrees = got.as_ref() == Some(&want);
                    if !agrees {
                        failures.push(format!(
                            "{} {} at {rows} rows: the answer differs from the CPU's",
                            op.name(),
                            mode.label()
                        ));
                    }
                    points.push(Point {
                        op,
                        mode,
                        rows,
                        seconds,
                        split,
                        agrees,
                        traffic: Some(traffic),
                    });
                    let _ = write!(
                        line,
                        ", {} {}{}",
                        if mode == Mode::GpuResident {
                            "resident"
                        } else {
                            "with transfers"
                        },
                        ms(seconds),
                        if agrees { "" } else { " (DISAGREES)" }
                    );
                    if seconds > SLOW_RUN.as_secs_f64() {
                        stopped.push((op, mode, rows));
                    }
                }
            }
            if !args.quiet {
                eprintln!("{line}");
            }
        }
    }

    let report = Report {
        adapter: adapter.as_ref(),
        sizes: &sizes,
        ops: &ops,
        points: &points,
        failures: &failures,
        unsupported: &unsupported,
        stopped: &stopped,
        datafusion_partitions,
        runs,
        elapsed: started.elapsed(),
    };
    let write = |name: &str, text: String| -> Result<()> {
        let path = args.out.join(name);
        fs::write(&path, text).with_context(|| format!("can't write {}", path.display()))
    };
    write("report.html", report.html()?)?;
    write("report.md", report.markdown())?;
    write("report.json", serde_json::to_string_pretty(&report.json())?)?;
    println!(
        "wrote {} (open it in a browser), report.md and report.json in {:.0} s",
        args.out.join("report.html").display(),
        started.elapsed().as_secs_f64()
    );
    print!("{}", report.markdown_summary());
    if !failures.is_empty() {
        bail!(
            "{} measurement(s) failed or disagreed with the CPU path:\n  {}",
            failures.len(),
            failures.join("\n  ")
        );
    }
    Ok(())
}

pub fn ms(seconds: f64) -> String {
    if seconds >= 1.0 {
        format!("{seconds:.2} s")
    } else if seconds >= 0.001 {
        format!("{:.1} ms", seconds * 1e3)
    } else {
        format!("{:.0} µs", seconds * 1e6)
    }
}

/// 1234567 -> "1,234,567".
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// 1500000.0 -> "1.5M", 3000.0 -> "3k": rows and rows/s on axes and in tables.
pub fn si(v: f64) -> String {
    let (scaled, unit) = if v >= 1e9 {
        (v / 1e9, "G")
    } else if v >= 1e6 {
        (v / 1e6, "M")
    } else if v >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let digits = if scaled >= 100.0 {
        0
    } else if scaled >= 10.0 {
        1
    } else {
        2
    };
    let text = format!("{scaled:.digits$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    format!("{text}{unit}")
}

struct Report<'a> {
    adapter: Option<&'a AdapterSummary>,
    sizes: &'a [usize],
    ops: &'a [Op],
    points: &'a [Point],
    failures: &'a [String],
    /// Operations the adapter couldn't run (an `is_gpu_side` error), with the reason.
    unsupported: &'a [String],
    stopped: &'a [(Op, Mode, usize)],
    /// The partitions of DataFusion's session (its default: the machine's cores).
    datafusion_partitions: usize,
    runs: usize,
    elapsed: Duration,
}

impl Report<'_> {
    fn max_rows(&self) -> usize {
        self.sizes.last().copied().unwrap_or(0)
    }

    fn point(&self, op: Op, mode: Mode, rows: usize) -> Option<&Point> {
        self.points
            .iter()
            .find(|p| p.op == op && p.mode == mode && p.rows == rows)
    }

    /// The largest size measured in every mode that measured `op` at all (a mode that
    /// failed from the first size doesn't take the row out of the summary).
    fn largest_common(&self, op: Op) -> Option<usize> {
        let modes: Vec<Mode> = Mode::ALL
            .into_iter()
            .filter(|&m| self.points.iter().any(|p| p.op == op && p.mode == m))
            .collect();
        self.sizes
            .iter()
            .rev()
            .copied()
            .find(|&r| modes.iter().all(|&m| self.point(op, m, r).is_some()))
    }

    /// "The GPU starts to win at N rows" or "... never wins up to N rows", per GPU mode.
    fn verdict(&self, op: Op, mode: Mode) -> String {
        let measured = self
            .points
            .iter()
            .filter(|p| p.op == op && p.mode == mode)
            .map(|p| p.rows)
            .max();
        match (crossover(self.points, op, mode), measured) {
            (_, None) => "not measured".into(),
            (Some(from), _) if Some(&from) == self.sizes.first() => {
                format!(
                    "wins at every size measured (from {} rows)",
                    thousands(from)
                )
            }
            (Some(from), _) => format!("starts to win at {} rows", thousands(from)),
            (None, Some(max)) => format!("never wins up to {} rows", thousands(max)),
        }
    }

    /// The verdict, and the GPU's speed as a multiple of the CPU's at `rows`.
    fn verdict_and_ratio(&self, op: Op, mode: Mode, rows: usize) -> String {
        let verdict = self.verdict(op, mode);
        match (self.point(op, Mode::Cpu, rows), self.point(op, mode, rows)) {
            (Some(cpu), Some(gpu)) => {
                let ratio = cpu.seconds / gpu.seconds.max(1e-12);
                let ratio = if ratio >= 10.0 {
                    format!("{ratio:.0}")
                } else if ratio >= 0.1 {
                    format!("{ratio:.2}")
                } else {
                    format!("{ratio:.3}")
                };
                format!("{verdict} ({ratio}x)")
            }
            _ => verdict,
        }
    }

    /// DataFusion's version and session, in words.
    fn datafusion_line(&self) -> String {
        format!(
            "{}, a plain SessionContext with its default configuration ({} partitions) and none of arrow-wgpu's operators: its own CPU execution of each operation's SQL",
            datafusion::DATAFUSION_VERSION,
            self.datafusion_partitions
        )
    }

    fn adapter_line(&self) -> String {
        match self.adapter {
            None => "no GPU adapter found: CPU figures only".into(),
            Some(a) => format!(
                "{} ({:?}, {:?}, driver {})",
                a.name, a.backend, a.device_type, a.driver
            ),
        }
    }

    fn software_warning(&self) -> Option<String> {
        let a = self.adapter?;
        a.is_software().then(|| {
            format!(
                "The \"GPU\" here is {}, a software driver: it runs the shaders on this machine's CPU cores. \
                 These figures check correctness and the shape of the costs; they say nothing about a real GPU's speed.",
                a.name
            )
        })
    }

    fn machine(&self) -> String {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0);
        format!(
            "{} {} , {cores} CPU threads",
            std::env::consts::OS,
            std::env::consts::ARCH
        )
        .replace(" ,", ",")
    }

    fn json(&self) -> serde_json::Value {
        let adapter = self.adapter.map(|a| {
            json!({
                "name": a.name,
                "backend": format!("{:?}", a.backend),
                "device_type": format!("{:?}", a.device_type),
                "driver": a.driver,
                "software": a.is_software(),
                "shader_int64": a.shader_int64,
                "shader_f64": a.shader_f64,
                "max_storage_buffer_binding_size": a.limits.max_storage_buffer_binding_size,
            })
        });
        let points: Vec<_> = self
            .points
            .iter()
            .map(|p| {
                json!({
                    "operation": p.op.name(),
                    "mode": p.mode.key(),
                    "rows": p.rows,
                    "seconds": p.seconds,
                    "rows_per_second": p.rows_per_second(),
                    "upload_s": p.split[0],
                    "kernels_s": p.split[1],
                    "download_s": p.split[2],
                    "cpu_s": p.split[3],
                    "agrees_with_cpu": p.agrees,
                    "device_bytes": p.traffic.map(|t| t.device_bytes),
                    "minimal_bytes": p.traffic.map(|t| t.minimal_bytes),
                    "dispatches": p.traffic.map(|t| t.dispatches),
                    "host_syncs": p.traffic.map(|t| t.host_syncs),
                    "checked": match p.mode {
                        Mode::Cpu => "reference",
                        Mode::DataFusion => "row count",
                        Mode::GpuResident | Mode::GpuTransfers => "bit for bit",
                    },
                })
            })
            .collect();
        let crossovers: Vec<_> = self
            .ops
            .iter()
            .flat_map(|&op| {
                [Mode::GpuResident, Mode::GpuTransfers].map(|mode| {
                    json!({
                        "operation": op.name(),
                        "mode": mode.key(),
                        "gpu_wins_from_rows": crossover(self.points, op, mode),
                        "verdict": self.verdict(op, mode),
                    })
                })
            })
            .collect();
        json!({
            "tool": format!("arrow-wgpu {}", env!("CARGO_PKG_VERSION")),
            "machine": self.machine(),
            "adapter": adapter,
            "datafusion": {
                "version": datafusion::DATAFUSION_VERSION,
                "target_partitions": self.datafusion_partitions,
            },
            "sizes": self.sizes,
            "timed_runs_per_point": self.runs,
            "elapsed_seconds": self.elapsed.as_secs_f64(),
            "operations": self.ops.iter().map(|o| json!({"name": o.name(), "what": o.what(), "datafusion_sql": o.sql()})).collect::<Vec<_>>(),
            "points": points,
            "crossovers": crossovers,
            "failures": self.failures,
            "not_run_on_the_gpu": self.unsupported,
            "all_answers_agree": self.failures.is_empty(),
        })
    }

    /// The table of the summary: per operation, rows/s at the largest size and verdicts.
    fn markdown_summary(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\n| operation | rows | CPU rows/s | DataFusion rows/s | GPU resident rows/s | GPU + transfers rows/s | GPU resident vs CPU | GPU + transfers vs CPU |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---|---|");
        for &op in self.ops {
            let Some(rows) = self.largest_common(op) else {
                continue;
            };
            let rate = |m| {
                self.point(op, m, rows)
                    .map(|p| si(p.rows_per_second()))
                    .unwrap_or_else(|| "-".into())
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                op.name(),
                thousands(rows),
                rate(Mode::Cpu),
                rate(Mode::DataFusion),
                rate(Mode::GpuResident),
                rate(Mode::GpuTransfers),
                self.verdict_and_ratio(op, Mode::GpuResident, rows),
                self.verdict_and_ratio(op, Mode::GpuTransfers, rows)
            );
        }
        out
    }

    /// Per operation and size, what each GPU run asked of the device: the bytes its
    /// kernels' bindings span against the minimum (inputs read once, output written
    /// once), dispatches and host syncs. Counted, not timed: it holds on a software
    /// driver too.
    fn markdown_traffic(&self) -> String {
        let mut out = String::new();
        let gpu: Vec<&Point> = self.points.iter().filter(|p| p.traffic.is_some()).collect();
        if gpu.is_empty() {
            return out;
        }
        let _ = writeln!(
            out,
            "\nDevice work (counted): bytes the kernels' bindings span / the minimal traffic, dispatches, host syncs.\n"
        );
        let _ = writeln!(
            out,
            "| operation | rows | mode | device / minimal | dispatches | host syncs |"
        );
        let _ = writeln!(out, "|---|---:|---|---:|---:|---:|");
        for p in gpu {
            let Some(t) = p.traffic else { continue };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                p.op.name(),
                thousands(p.rows),
                p.mode.label(),
                t.over_minimal()
                    .map(|r| format!("{r:.2}x"))
                    .unwrap_or_else(|| "-".into()),
                t.dispatches,
                t.host_syncs
            );
        }
        out
    }

    /// [`Self::markdown_traffic`] as an HTML table.
    fn html_traffic(&self) -> String {
        let gpu: Vec<(&Point, Traffic)> = self
            .points
            .iter()
            .filter_map(|p| p.traffic.map(|t| (p, t)))
            .collect();
        if gpu.is_empty() {
            return String::new();
        }
        let mut out = String::from(
            "<h2>Device work (counted)</h2>\n<p class=what>The bytes the kernels' bindings span against the minimal traffic (inputs read once, output written once), compute dispatches and host syncs per run: counted, so they hold on a software driver too.</p>\n<table><tr><th>operation</th><th>rows</th><th>mode</th><th>device / minimal</th><th>dispatches</th><th>host syncs</th></tr>\n",
        );
        for (p, t) in gpu {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                p.op.name(),
                thousands(p.rows),
                esc(p.mode.label()),
                t.over_minimal()
                    .map(|r| format!("{r:.2}x"))
                    .unwrap_or_else(|| "-".into()),
                t.dispatches,
                t.host_syncs
            );
        }
        out += "</table>\n";
        out
    }

    fn markdown(&self) -> String {
        let mut out = String::from("# arrow-wgpu report: GPU against CPU\n\n");
        let _ = writeln!(out, "- Adapter: {}", self.adapter_line());
        let _ = writeln!(out, "- Machine: {}", self.machine());
        let _ = writeln!(
            out,
            "- Sizes: {} rows; median of {} timed run(s) per point after one untimed run; {:.0} s in all",
            self.sizes.iter().map(|&s| thousands(s)).collect::<Vec<_>>().join(", "),
            self.runs,
            self.elapsed.as_secs_f64()
        );
        let _ = writeln!(out, "- DataFusion: {}", self.datafusion_line());
        let _ = writeln!(
            out,
            "- Answers: {}",
            if self.failures.is_empty() {
                ANSWERS_AGREE.to_string()
            } else {
                format!(
                    "{} problem(s): {}",
                    self.failures.len(),
                    self.failures.join("; ")
                )
            }
        );
        if let Some(w) = self.software_warning() {
            let _ = writeln!(out, "\n> **Software driver.** {w}");
        }
        for u in self.unsupported {
            let _ = writeln!(out, "- Not run on the GPU: {u}");
        }
        out += &self.markdown_summary();
        out += &self.markdown_traffic();
        let _ = writeln!(out, "\nOperations:\n");
        for &op in self.ops {
            let _ = writeln!(
                out,
                "- `{}`: {}; DataFusion: `{}`",
                op.name(),
                op.what(),
                op.sql()
            );
        }
        for (op, mode, rows) in self.stopped {
            let _ = writeln!(
                out,
                "- {} {} stopped at {} rows (a run took over {} s, or failed)",
                op.name(),
                mode.label(),
                thousands(*rows),
                SLOW_RUN.as_secs()
            );
        }
        let _ = writeln!(out, "\nCharts: report.html; raw numbers: report.json.");
        out
    }

    fn html(&self) -> Result<String> {
        let mut body = String::new();
        let _ = writeln!(
            body,
            "<h1>arrow-wgpu: GPU against CPU</h1>\n<p class=meta><b>Adapter:</b> {}<br><b>Machine:</b> {}<br><b>DataFusion:</b> {}<br><b>Sizes:</b> {} to {} rows, median of {} timed run(s) per point; {:.0} s in all.</p>",
            esc(&self.adapter_line()),
            esc(&self.machine()),
            esc(&self.datafusion_line()),
            thousands(self.sizes.first().copied().unwrap_or(0)),
            thousands(self.max_rows()),
            self.runs,
            self.elapsed.as_secs_f64()
        );
        if let Some(w) = self.software_warning() {
            let _ = writeln!(
                body,
                "<div class=warn><b>Software driver, not a GPU.</b> {}</div>",
                esc(&w)
            );
        }
        if self.adapter.is_none() {
            body += "<div class=warn><b>No GPU adapter found.</b> Only the CPU path and DataFusion were measured.</div>\n";
        }
        if self.failures.is_empty() {
            let _ = writeln!(body, "<div class=ok>{}.</div>", esc(ANSWERS_AGREE));
        } else {
            let _ = writeln!(
                body,
                "<div class=bad><b>{} problem(s):</b><ul>{}</ul></div>",
                self.failures.len(),
                self.failures
                    .iter()
                    .map(|f| format!("<li>{}</li>", esc(f)))
                    .collect::<String>()
            );
        }
        if !self.unsupported.is_empty() {
            let _ = writeln!(
                body,
                "<div class=warn><b>Not run on this GPU:</b><ul>{}</ul></div>",
                self.unsupported
                    .iter()
                    .map(|u| format!("<li>{}</li>", esc(u)))
                    .collect::<String>()
            );
        }
        body += "<h2>Summary</h2>\n<table><tr><th rowspan=2>operation</th><th colspan=5>throughput at the largest size measured</th><th colspan=2>GPU against CPU (speed ratio at that size)</th></tr>\n<tr><th>rows</th><th>CPU</th><th>DataFusion</th><th>GPU resident</th><th>GPU + transfers</th><th>GPU resident</th><th>GPU + transfers</th></tr>\n";
        for &op in self.ops {
            let Some(rows) = self.largest_common(op) else {
                continue;
            };
            let rate = |m| {
                self.point(op, m, rows)
                    .map(|p| format!("{} rows/s", si(p.rows_per_second())))
                    .unwrap_or_else(|| "-".into())
            };
            let _ = writeln!(
                body,
                "<tr><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td>{}</td><td>{}</td></tr>",
                op.name(),
                thousands(rows),
                rate(Mode::Cpu),
                rate(Mode::DataFusion),
                rate(Mode::GpuResident),
                rate(Mode::GpuTransfers),
                esc(&self.verdict_and_ratio(op, Mode::GpuResident, rows)),
                esc(&self.verdict_and_ratio(op, Mode::GpuTransfers, rows)),
            );
        }
        body += "</table>\n";
        body += &self.html_traffic();
        for &op in self.ops {
            let _ = write!(
                body,
                "<h2>{}</h2>\n<p class=what>{}<br>DataFusion: <code>{}</code></p>\n<p class=verdict>GPU, data resident: <b>{}</b>. GPU with upload + download: <b>{}</b>.</p>\n<div class=row>",
                op.name(),
                esc(op.what()),
                esc(op.sql()),
                esc(&self.verdict(op, Mode::GpuResident)),
                esc(&self.verdict(op, Mode::GpuTransfers)),
            );
            body += &chart::throughput(self.points, op, self.sizes)?;
            if let Some(rows) = self.largest_common(op) {
                body += &chart::split(self.points, op, rows)?;
            }
            body += "</div>\n";
        }
        let _ = writeln!(
            body,
            "<p class=meta>rows/s = rows in the input / wall time of the operation. \"CPU\": arrow-wgpu's exact CPU path, the reference answer. \"DataFusion\": DataFusion's own CPU execution of the SQL given for each operation, over the same rows registered as a table in a plain session with its default configuration (the time covers planning and running the query to the end; its answers are checked by row count only, since its group order, float sums and the row DISTINCT ON keeps differ from ours). \"Resident\": the batch is already on the GPU (uploaded once, untimed) and the result stays there (the group-by's small result comes back). \"With upload + download\": the batch goes from host memory to the GPU and the result back, as a one-off call does. Raw numbers: report.json. Made by arrow-wgpu {}.</p>",
            env!("CARGO_PKG_VERSION")
        );
        Ok(format!(
            "<!doctype html>\n<html lang=en><head><meta charset=utf-8><title>arrow-wgpu report</title>\n<style>{STYLE}</style></head>\n<body>\n{body}</body></html>\n"
        ))
    }
}

/// What the page says when every answer checked out.
const ANSWERS_AGREE: &str =
    "Every GPU answer equals the CPU path's, bit for bit; every DataFusion answer has as many rows";

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;max-width:1320px;margin:24px auto;padding:0 16px;color:#222}\
h1{margin-bottom:4px}h2{margin:28px 0 4px;border-bottom:1px solid #ddd}\
.meta{color:#555;font-size:14px}.what{margin:2px 0;color:#444}.verdict{margin:4px 0 8px;font-size:17px}\
.warn{background:#fff3cd;border:2px solid #e0a800;padding:10px 14px;margin:12px 0;font-size:16px}\
.ok{background:#e6f4ea;border:1px solid #34a853;padding:8px 14px;margin:12px 0}\
.bad{background:#fde8e8;border:2px solid #d93025;padding:8px 14px;margin:12px 0}\
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:4px 10px}th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\
.row{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}";

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ladder climbs by about 3x, ends at the maximum, and never wraps: at usize::MAX
    /// it ends (a wrapped decade would start again from a small size and never stop).
    #[test]
    fn ladder_ends_at_the_maximum_and_never_wraps() {
        assert_eq!(ladder(1000), vec![1000]);
        assert_eq!(ladder(5000), vec![1000, 3000, 5000]);
        assert_eq!(ladder(30_000), vec![1000, 3000, 10_000, 30_000]);
        let top = ladder(usize::MAX);
        assert!(top.windows(2).all(|w| w[0] < w[1]), "{top:?}");
        assert_eq!(top.last(), Some(&usize::MAX));
        assert!(top.len() < 50);
    }

    fn point(mode: Mode, rows: usize, seconds: f64) -> Point {
        Point {
            op: Op::Sort,
            mode,
            rows,
            seconds,
            split: [seconds * 0.2, seconds * 0.6, seconds * 0.1, 0.0],
            agrees: true,
            traffic: None,
        }
    }

    /// The GPU (with transfers) loses below 100k rows and wins from there; resident wins
    /// from 10k, loses at 100k, and wins above: its crossover is where it wins for good.
    fn points() -> Vec<Point> {
        let mut points = Vec::new();
        for (rows, cpu, resident, transfers) in [
            (1_000, 1e-5, 1e-4, 2e-4),
            (10_000, 1e-4, 5e-5, 3e-4),
            (100_000, 1e-3, 2e-3, 9e-4),
            (1_000_000, 1e-2, 1e-3, 4e-3),
        ] {
            points.push(point(Mode::Cpu, rows, cpu));
            points.push(point(Mode::DataFusion, rows, cpu * 1.5));
            points.push(point(Mode::GpuResident, rows, resident));
            points.push(point(Mode::GpuTransfers, rows, transfers));
        }
        points
    }

    #[test]
    fn crossover_is_where_the_gpu_wins_for_good() {
        let points = points();
        assert_eq!(
            crossover(&points, Op::Sort, Mode::GpuTransfers),
            Some(100_000)
        );
        assert_eq!(
            crossover(&points, Op::Sort, Mode::GpuResident),
            Some(1_000_000)
        );
        assert_eq!(crossover(&points, Op::Filter, Mode::GpuResident), None);
    }

    #[test]
    fn charts_mark_the_crossover() {
        let points = points();
        let sizes = [1_000, 10_000, 100_000, 1_000_000];
        let svg = chart::throughput(&points, Op::Sort, &sizes).unwrap();
        assert!(
            svg.contains("GPU with transfers: wins from 100k rows"),
            "{svg}"
        );
        assert!(svg.contains("GPU resident: wins from 1M rows"), "{svg}");
        assert!(svg.contains("DataFusion (CPU)"), "a line for DataFusion");
        assert!(!svg.contains("never wins"));
        let split = chart::split(&points, Op::Sort, 1_000_000).unwrap();
        assert!(split.contains("GPU kernels") && split.contains("resident"));
        assert!(split.contains("DataFusion"), "a bar for DataFusion");
        if let Ok(path) = std::env::var("ARROW_WGPU_CHART_SAMPLE") {
            std::fs::write(path, format!("<html><body>{svg}{split}</body></html>")).unwrap();
        }
    }

    #[test]
    fn numbers_read_at_a_glance() {
        assert_eq!(si(1_000.0), "1k");
        assert_eq!(si(3_000_000.0), "3M");
        assert_eq!(si(12_400_000.0), "12.4M");
        assert_eq!(si(686_000.0), "686k");
        assert_eq!(si(1_650_000.0), "1.65M");
        assert_eq!(thousands(3_000_000), "3,000,000");
        assert_eq!(
            ladder(1_000_000),
            [1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000]
        );
        assert_eq!(ladder(5_000), [1_000, 3_000, 5_000]);
    }
}
