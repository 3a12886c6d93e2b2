//! `arrow-wgpu sql`: SQL over Parquet, CSV and Arrow IPC files on DataFusion, with
//! arrow-wgpu's exact aggregates (and its GPU operators, where an adapter runs them) in
//! the plan.
//!
//! Files are tables three ways, as `datafusion-cli` allows: a path or glob in quotes in
//! `FROM` (`FROM 'data/*.parquet'`), `--table NAME=PATH` (a file, glob or folder), and
//! `--tables DIR` (every file or folder in DIR, named by its stem). The result goes to a
//! table on stdout or, atomically, to `--out FILE` (format by extension); a query that
//! fails, at planning or while running, leaves no output file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use arrow_wgpu::{Engine, EngineOptions};
use arrow_wgpu_datafusion::distributed::{display_plan_ascii, traffic, with_workers, Workers};
use arrow_wgpu_datafusion::{ArrowWgpuOptions, PlanNotes};
use datafusion::datasource::file_format::options::ArrowReadOptions;
use datafusion::execution::disk_manager::DiskManagerBuilder;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::SessionStateBuilder;
use datafusion::physical_plan::{displayable, execute_stream, ExecutionPlan};
use datafusion::prelude::{CsvReadOptions, ParquetReadOptions, SessionConfig, SessionContext};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};

use crate::args::SqlArgs;
use crate::write::{FileSink, Sink, TableSink, TABLE_ROWS};

/// How long a query may run before a progress spinner appears.
const PROGRESS_AFTER: Duration = Duration::from_millis(800);

/// The file formats a table may be read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TableFormat {
    Parquet,
    Csv { delimiter: u8 },
    Arrow,
}

impl TableFormat {
    /// The format of `path` (a file, glob or folder) by its extension, or for a folder by
    /// the first file in it that has one.
    fn of(path: &str) -> Result<TableFormat> {
        let p = Path::new(path);
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("reading the folder {path}"))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            entries.sort();
            for e in entries {
                if let Some(f) = e.to_str().and_then(Self::by_extension) {
                    return Ok(f);
                }
            }
            bail!("{path}: no .parquet, .csv, .tsv or .arrow files in this folder");
        }
        Self::by_extension(path).with_context(|| {
            format!(
                "{path}: unknown extension (use .parquet, .csv, .tsv, .arrow, .feather or .ipc)"
            )
        })
    }

    fn by_extension(path: &str) -> Option<TableFormat> {
        let ext = Path::new(path).extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "parquet" | "pq" => TableFormat::Parquet,
            "csv" => TableFormat::Csv { delimiter: b',' },
            "tsv" => TableFormat::Csv { delimiter: b'\t' },
            "arrow" | "feather" | "ipc" => TableFormat::Arrow,
            _ => return None,
        })
    }
}

/// Parses a size such as `512M`, `4G`, `2.5GiB` or `1000000` (bytes).
pub fn parse_size(text: &str) -> Result<usize> {
    let t = text.trim().to_ascii_lowercase();
    let t = t.trim_end_matches("ib").trim_end_matches('b');
    let (number, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&t[..i], &t[i..]),
        None => (t, ""),
    };
    let scale: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => bail!("{text}: unknown unit (use K, M, G or T)"),
    };
    let value: f64 = number
        .trim()
        .parse()
        .with_context(|| format!("{text}: not a number"))?;
    let bytes = value * scale;
    if !(bytes.is_finite() && bytes >= 1.0 && bytes < usize::MAX as f64) {
        bail!("{text}: out of range");
    }
    Ok(bytes as usize)
}

/// A DataFusion session with arrow-wgpu's rule and functions, and the engine they run on.
pub struct Session {
    pub ctx: SessionContext,
    /// Where each node of the last plan runs, and why.
    pub notes: PlanNotes,
    pub engine: Arc<Engine>,
    /// With `--workers`: the workers the plans run over.
    pub workers: Option<Workers>,
}

/// How long a worker may take to accept a connection before it counts as unreachable.
const WORKER_PROBE: Duration = Duration::from_secs(2);

/// The workers of `--workers` (and `--task-bytes`).
fn workers(args: &SqlArgs) -> Result<Option<Workers>> {
    let Some(list) = &args.workers else {
        return Ok(None);
    };
    let mut w = Workers::parse(list).map_err(anyhow::Error::from)?;
    if let Some(bytes) = &args.task_bytes {
        let n = parse_size(bytes).with_context(|| format!("--task-bytes {bytes}"))?;
        w = w.task_bytes(n);
    }
    Ok(Some(w))
}

/// The workers that can't serve this query (unreachable, or of another version), with
/// why, as a context line: `None` if all can. `after_failure`: a query just failed,
/// maybe because a worker was killed, which resets its connections before its listening
/// socket is gone: ask again a little later before saying every worker answers.
async fn dead_workers(workers: &Workers, after_failure: bool) -> Option<String> {
    let waits: &[u64] = if after_failure { &[0, 300, 1000] } else { &[0] };
    for &wait in waits {
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let dead = workers.unreachable(WORKER_PROBE).await;
        if !dead.is_empty() {
            let names: Vec<String> = dead
                .iter()
                .map(|(url, why)| format!("worker {url} {why}"))
                .collect();
            return Some(names.join("; "));
        }
    }
    None
}

/// A session for `args`: DataFusion with arrow-wgpu added, the tables registered, file
/// paths allowed in `FROM`.
pub async fn session(args: &SqlArgs) -> Result<Session> {
    let mut config = SessionConfig::new().with_information_schema(true);
    if let Some(p) = args.partitions {
        if p == 0 {
            bail!("--partitions must be at least 1");
        }
        config = config.with_target_partitions(p);
    }
    if let Some(b) = args.batch_size {
        if b == 0 || b > 1 << 26 {
            bail!("--batch-size must be between 1 and {}", 1 << 26);
        }
        config = config.with_batch_size(b);
    }
    let mut runtime = RuntimeEnvBuilder::new();
    if let Some(limit) = &args.memory_limit {
        let bytes = parse_size(limit).with_context(|| format!("--memory-limit {limit}"))?;
        runtime = runtime
            .with_memory_pool(Arc::new(FairSpillPool::new(bytes)))
            .with_disk_manager_builder(DiskManagerBuilder::default());
    }
    let runtime = runtime.build_arc().context("setting up the memory pool")?;
    let engine = Engine::with_options(EngineOptions {
        backend: args.backend.into(),
        ..Default::default()
    })
    .context("opening the engine")?;
    let engine = Arc::new(engine);
    let options = ArrowWgpuOptions::new(engine.clone());
    let notes = options.notes();
    let workers = workers(args)?;
    let builder = SessionStateBuilder::new()
        .with_default_features()
        .with_config(config)
        .with_runtime_env(runtime);
    let state = match &workers {
        Some(w) => with_workers(builder, options, w)
            .map_err(anyhow::Error::from)
            .context("setting up the workers")?,
        None => arrow_wgpu_datafusion::with_options(builder, options),
    }
    .build();
    let ctx = SessionContext::new_with_state(state).enable_url_table();
    for spec in &args.table {
        let (name, path) = spec
            .split_once('=')
            .with_context(|| format!("--table {spec}: expected NAME=PATH"))?;
        register(&ctx, name.trim(), path.trim()).await?;
    }
    for dir in &args.tables {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("--tables {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for path in entries {
            let Some(text) = path.to_str() else { continue };
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            if stem.is_empty() || stem.starts_with('.') {
                continue;
            }
            if TableFormat::of(text).is_ok() {
                register(&ctx, stem, text).await?;
            }
        }
    }
    Ok(Session {
        ctx,
        notes,
        engine,
        workers,
    })
}

/// Registers the file, glob or folder `path` as table `name`.
async fn register(ctx: &SessionContext, name: &str, path: &str) -> Result<()> {
    if name.is_empty() {
        bail!("--table {name}={path}: the name is empty");
    }
    let format = TableFormat::of(path)?;
    let context = || format!("table {name} = {path}");
    match format {
        TableFormat::Parquet => {
            let ext = extension_for(path, ".parquet");
            ctx.register_parquet(
                name,
                path,
                ParquetReadOptions::default().file_extension(&ext),
            )
            .await
            .with_context(context)?
        }
        TableFormat::Csv { delimiter } => {
            let ext = extension_for(path, if delimiter == b'\t' { ".tsv" } else { ".csv" });
            ctx.register_csv(
                name,
                path,
                CsvReadOptions::new()
                    .delimiter(delimiter)
                    .file_extension(&ext),
            )
            .await
            .with_context(context)?
        }
        TableFormat::Arrow => {
            let ext = extension_for(path, ".arrow");
            ctx.register_arrow(
                name,
                path,
                ArrowReadOptions {
                    file_extension: &ext,
                    ..Default::default()
                },
            )
            .await
            .with_context(context)?
        }
    }
    Ok(())
}

/// The extension DataFusion should list: the path's own (a `.pq` file, say), or the
/// format's usual one for a folder.
fn extension_for(path: &str, usual: &str) -> String {
    let p = Path::new(path);
    if p.is_dir() {
        return usual.to_string();
    }
    match p.extension().and_then(|e| e.to_str()) {
        Some(e) if !e.contains('*') => format!(".{e}"),
        _ => usual.to_string(),
    }
}

pub fn run(args: SqlArgs) -> Result<()> {
    block_on(run_async(args))
}

/// Runs `work` (a query) on a multi-threaded runtime; a panic inside it becomes an error.
pub fn block_on(work: impl std::future::Future<Output = Result<()>>) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    // A panic inside DataFusion or a reader (arrow's readers panic on some corrupt
    // files) is caught and reported as an error: no panic reaches the user, and the output
    // file being written is removed as on any failure.
    crate::read::QUIET_PANICS.store(true, std::sync::atomic::Ordering::Relaxed);
    let out = runtime.block_on(futures::FutureExt::catch_unwind(
        std::panic::AssertUnwindSafe(work),
    ));
    crate::read::QUIET_PANICS.store(false, std::sync::atomic::Ordering::Relaxed);
    match out {
        Ok(result) => result.map_err(without_task_panics),
        Err(panic) => {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into());
            bail!("the query failed inside a reader or operator ({why}); is an input file corrupt?")
        }
    }
}

/// DataFusion runs a partition's work as a tokio task and reports a panic inside it (arrow's
/// readers panic on some damaged files) as an error: "task 14 panicked with message ...".
/// That error is said as what it means, once, with the reader's message.
fn without_task_panics(e: anyhow::Error) -> anyhow::Error {
    const MARK: &str = "panicked with message ";
    let text = format!("{e:#}");
    let Some(at) = text.find(MARK) else {
        return e;
    };
    let rest = &text[at + MARK.len()..];
    let why = rest
        .strip_prefix('"')
        .and_then(|r| r.split('"').next())
        .unwrap_or(rest);
    anyhow::anyhow!(
        "the query failed inside a reader or operator ({why}); is an input file corrupt?"
    )
}

async fn run_async(args: SqlArgs) -> Result<()> {
    let started = Instant::now();
    let session = session(&args).await?;
    execute(&session, &args, TABLE_ROWS, started).await
}

/// Plans `args.query` and runs it: the plan with `--explain`, else the result to `--out`
/// (atomically) or a table of at most `table_rows` rows, and with `--profile` where the
/// time since `started` went.
pub async fn execute(
    session: &Session,
    args: &SqlArgs,
    table_rows: usize,
    started: Instant,
) -> Result<()> {
    let Session {
        ctx,
        notes,
        workers,
        ..
    } = session;
    let df = ctx
        .sql(&args.query)
        .await
        .map_err(anyhow::Error::from)
        .context("planning the query")?;
    let plan: Arc<dyn ExecutionPlan> = df
        .create_physical_plan()
        .await
        .map_err(anyhow::Error::from)
        .context("planning the query")?;
    let planned = started.elapsed();
    if args.explain {
        print_explain(&plan, notes, workers.as_ref());
        return Ok(());
    }
    if let Some(w) = workers {
        // Each worker must answer before anything runs: a clear error naming the ones
        // that don't, rather than a transport error from the middle of the plan.
        if let Some(dead) = dead_workers(w, false).await {
            bail!("{dead}; the query did not start");
        }
    }
    let schema = plan.schema();
    let mut sink = match &args.out {
        Some(path) => Sink::File(Box::new(FileSink::create(path, &schema)?)),
        None => Sink::Table(TableSink::new(table_rows)),
    };
    let progress = Progress::new(args.quiet);
    let task_ctx = ctx.task_ctx();
    let mut stream = execute_stream(plan.clone(), task_ctx).context("running the query")?;
    let mut write_time = Duration::ZERO;
    let mut rows = 0u64;
    let exec_start = Instant::now();
    while let Some(batch) = stream.next().await {
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                let mut e = anyhow::Error::from(e).context("running the query");
                if let Some(w) = workers {
                    if let Some(dead) = dead_workers(w, true).await {
                        e = e.context(dead);
                    }
                }
                return Err(e);
            }
        };
        rows += batch.num_rows() as u64;
        let w = Instant::now();
        sink.write(&batch)?;
        write_time += w.elapsed();
        progress.update(rows);
    }
    let executed = exec_start.elapsed();
    progress.finish();
    let w = Instant::now();
    sink.finish(&schema)?;
    write_time += w.elapsed();
    if args.profile {
        let total = started.elapsed();
        eprintln!("profile ({} rows out)", rows);
        eprintln!(
            "  plan      {:>10.3} ms  (SQL to an optimized physical plan)",
            ms(planned)
        );
        eprintln!(
            "  execute   {:>10.3} ms  (reading, operators, until the last batch)",
            ms(executed.saturating_sub(write_time))
        );
        eprintln!("  write     {:>10.3} ms", ms(write_time));
        let accounted = planned + executed + (write_time.saturating_sub(write_time.min(executed)));
        eprintln!(
            "  other     {:>10.3} ms  (set-up, tables)",
            ms(total.saturating_sub(accounted))
        );
        eprintln!("  total     {:>10.3} ms", ms(total));
        if workers.is_some() {
            // Every stage's metrics, gathered from the workers, and what crossed the network.
            let (t, with_metrics) = traffic(plan.clone())
                .await
                .map_err(anyhow::Error::from)
                .context("gathering the workers' metrics")?;
            eprintln!(
                "network: {} bytes of Arrow data between stages, {} bytes of plans sent",
                t.between_stages, t.plans
            );
            eprintln!("stages (rows out and time per operator, summed over each stage's tasks):");
            eprintln!(
                "{}",
                display_plan_ascii(with_metrics.as_ref(), true).trim_end()
            );
        } else {
            eprintln!(
                "operators (rows out, CPU time summed over partitions; GPU steps under ours):"
            );
            eprintln!(
                "{}",
                displayable(plan.as_ref())
                    .indent(true)
                    .to_string()
                    .trim_end()
            );
            let metrics =
                datafusion::physical_plan::display::DisplayableExecutionPlan::with_metrics(
                    plan.as_ref(),
                )
                .indent(true)
                .to_string();
            eprintln!("{}", metrics.trim_end());
        }
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn print_explain(plan: &Arc<dyn ExecutionPlan>, notes: &PlanNotes, workers: Option<&Workers>) {
    match workers {
        Some(w) => {
            println!("{}", display_plan_ascii(plan.as_ref(), false).trim_end());
            println!();
            println!("where each stage runs (the head stage, at the top, on this process):");
            let stages = w.placement(plan);
            if stages.is_empty() {
                println!("  nothing to split: the whole plan runs on this process");
            }
            for line in stages {
                println!("  {line}");
            }
        }
        None => println!(
            "{}",
            displayable(plan.as_ref())
                .indent(true)
                .to_string()
                .trim_end()
        ),
    }
    let notes = notes.take();
    if !notes.is_empty() {
        println!();
        println!("where each node runs:");
        for n in notes {
            println!("  {n}");
        }
    }
}

/// A spinner with the rows out and the time, after [`PROGRESS_AFTER`], on a terminal.
struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
}

impl Progress {
    fn new(quiet: bool) -> Progress {
        let bar = (!quiet && std::io::IsTerminal::is_terminal(&std::io::stderr())).then(|| {
            let bar = ProgressBar::hidden();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar
        });
        Progress {
            bar,
            started: Instant::now(),
        }
    }

    fn update(&self, rows: u64) {
        if let Some(bar) = &self.bar {
            if bar.is_hidden() && self.started.elapsed() > PROGRESS_AFTER {
                bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                bar.enable_steady_tick(Duration::from_millis(120));
            }
            bar.set_message(format!("{rows} rows out"));
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
