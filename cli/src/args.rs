//! The command line: subcommands, their flags and the `--help` texts.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Query Parquet, Arrow IPC and CSV files on the GPU (filter, group-by, distinct, sort),
/// measure the GPU against the CPU, and list the GPU adapters.
#[derive(Debug, Parser)]
#[command(name = "arrow-wgpu", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Sql(SqlArgs),
    Query(QueryArgs),
    Stream(StreamArgs),
    Worker(WorkerArgs),
    Report(ReportArgs),
    Info(InfoArgs),
}

/// Where operations run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    /// The best GPU adapter; the CPU where there is none or where it can't run an
    /// operation (shown by --profile).
    Auto,
    /// The GPU or an error, never a silent CPU run.
    Gpu,
    /// The CPU path.
    Cpu,
}

impl From<BackendArg> for arrow_wgpu::Backend {
    fn from(b: BackendArg) -> Self {
        match b {
            BackendArg::Auto => arrow_wgpu::Backend::Auto,
            BackendArg::Gpu => arrow_wgpu::Backend::Gpu,
            BackendArg::Cpu => arrow_wgpu::Backend::Cpu,
        }
    }
}

/// Run a SQL query over Parquet, CSV and Arrow IPC files, on Apache DataFusion with
/// arrow-wgpu's exact aggregates and, where a GPU runs them, its GPU operators.
///
/// Tables: a quoted path or glob in FROM ('data/*.parquet'), --table NAME=PATH (a file,
/// glob or folder), or --tables DIR (every file or folder in DIR, named by its stem).
/// Float sum/avg/var/stddev are exact: the same bits whatever the partitions, batches
/// or backend.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  arrow-wgpu sql \"SELECT chrom, count(*), avg(qual) FROM 'calls/*.parquet' WHERE qual >= 30 GROUP BY chrom\"\n  arrow-wgpu sql --tables tpch/ \"SELECT l_returnflag, sum(l_quantity) FROM lineitem GROUP BY 1\" --out q.parquet\n  arrow-wgpu sql --table t=reads.csv \"SELECT DISTINCT read_id FROM t\" --explain"
)]
pub struct SqlArgs {
    /// The query (one statement).
    #[arg(value_name = "SQL")]
    pub query: String,

    /// Name a file, glob or folder as a table: NAME=PATH. Repeatable.
    #[arg(long = "table", value_name = "NAME=PATH")]
    pub table: Vec<String>,

    /// Name every file and folder in DIR as a table by its stem (tpch/lineitem.parquet
    /// is `lineitem`). Repeatable.
    #[arg(long = "tables", value_name = "DIR")]
    pub tables: Vec<PathBuf>,

    /// Write the result here; the format is the extension's: .parquet, .arrow / .feather /
    /// .ipc (IPC file), .arrows (IPC stream), .csv, .tsv. Written to a temporary name and
    /// renamed when complete; a query that fails leaves nothing. Without --out, a table is
    /// printed (at most 100 rows).
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Where operations run: auto (a hardware GPU if there is one, else the exact CPU
    /// path), gpu (a GPU, software ones too, or an error), cpu.
    #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
    pub backend: BackendArg,

    /// Print the physical plan and, for each node, where it runs and why; run nothing.
    #[arg(long)]
    pub explain: bool,

    /// Print where the time went on stderr: planning, execution and writing (adding up to
    /// the wall time), then each operator's rows and time.
    #[arg(long)]
    pub profile: bool,

    /// Cap the memory of sorts, joins and aggregates (they spill to disk beyond it):
    /// bytes, or with K, M, G (binary units).
    #[arg(long, value_name = "SIZE")]
    pub memory_limit: Option<String>,

    /// Partitions to run in parallel (default: the number of cores).
    #[arg(long, value_name = "N")]
    pub partitions: Option<usize>,

    /// Rows per batch inside the plan (default 8192).
    #[arg(long, value_name = "N")]
    pub batch_size: Option<usize>,

    /// Run the query over these workers (`arrow-wgpu worker` processes): URL,URL,... or
    /// HOST:PORT,HOST:PORT,... Each worker reads its share of the files itself (the same
    /// paths must reach the same files there) and runs our operators on its own
    /// --backend; this process plans, sends the stages and runs the last one. Float
    /// aggregates give the same bits on any number of workers.
    #[arg(long, value_name = "URLS")]
    pub workers: Option<String>,

    /// With --workers: split file scans into partitions of about this many bytes (K, M, G
    /// allowed; default 16M); a task reads --partitions of them. An input too small for
    /// two tasks is read in one, and a plan with nothing to split runs on this process.
    #[arg(long, value_name = "SIZE", requires = "workers")]
    pub task_bytes: Option<String>,

    /// No progress spinner.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Run a worker for `arrow-wgpu sql --workers`: it takes stages of distributed plans over
/// gRPC (Arrow Flight data) and runs them, our operators on its own --backend.
///
/// Prints `listening on HOST:PORT` when ready and serves until killed (Ctrl-C, SIGTERM).
/// A worker refuses plans from an arrow-wgpu of another version.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  arrow-wgpu worker --listen 127.0.0.1:50051
  arrow-wgpu worker --listen 0.0.0.0:50051 --backend cpu
  arrow-wgpu sql --workers 127.0.0.1:50051,127.0.0.1:50052 \"SELECT ... FROM '/data/*.parquet'\"")]
pub struct WorkerArgs {
    /// The address to listen on, HOST:PORT (port 0: one the system picks, printed).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:50051")]
    pub listen: String,

    /// Where this worker runs our operators: auto (a hardware GPU if there is one, else
    /// the exact CPU path), gpu (a GPU, software ones too, or an error), cpu.
    #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
    pub backend: BackendArg,
}

/// Which row of each distinct key `--distinct` keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeepArg {
    /// The first row of each key.
    First,
    /// The last row of each key.
    Last,
    /// Any one row of each key (today the first, as `first`).
    Any,
    /// Only the rows whose key occurs once.
    None,
}

/// Filter, group, deduplicate, sort and limit the rows of one or more files.
///
/// Steps run in SQL's order: --filter, --group-by/--agg, --distinct, --sort, --limit.
/// Expressions are SQL: columns (double-quote names with odd characters: "sum(x)"),
/// numbers, true/false, DATE '2021-01-01', + - * /, = <> < <= > >=, AND OR NOT,
/// IS [NOT] NULL, [NOT] BETWEEN, [NOT] IN (...), parentheses.
///
/// The flags become one SQL query, run as `arrow-wgpu sql` runs one (DataFusion's scans,
/// only the columns used, with arrow-wgpu's exact and GPU operators in the plan); --profile
/// prints the SQL. Input order is kept: the files are read in the order given, groups come
/// out in order of first appearance, --distinct keeps rows in input order, --sort is stable.
///
/// Memory: the input is read in batches (--batch-rows), so files larger than memory can be
/// filtered (nothing held), grouped (the groups are held), deduplicated (one row per
/// distinct key is held) and top-N sorted
/// (--sort with --limit holds N rows). Only --sort without --limit needs its whole input
/// in memory.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  arrow-wgpu query variants.parquet --filter \"qual >= 30 AND pos BETWEEN 1000 AND 2000\" --out kept.parquet\n  arrow-wgpu query a.csv b.csv --group-by chrom --agg \"count(*) AS n, mean(qual)\" --sort \"n desc\" --limit 10\n  arrow-wgpu query reads.arrow --distinct read_id --keep first --out dedup.arrow --profile"
)]
pub struct QueryArgs {
    /// Input files: Parquet (.parquet), Arrow IPC file (.arrow, .feather, .ipc) or stream
    /// (.arrows), CSV with a header (.csv, .tsv; types inferred from the first rows). The
    /// format is told by the file's first bytes, else by its extension. Several files must
    /// share one schema and are read in order.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Keep the rows where this SQL predicate is true (a null result drops the row).
    #[arg(long, value_name = "EXPR")]
    pub filter: Option<String>,

    /// Group by these columns (comma-separated; double-quote a name with a comma in it:
    /// '"a,b",c'); groups come out in order of first appearance. Without --agg, one row
    /// per group.
    #[arg(long, value_name = "a,b")]
    pub group_by: Vec<String>,

    /// Aggregates, comma-separated: count(*), count(x), count(DISTINCT x), sum, min, max,
    /// mean (avg), var (var_samp), var_pop, stddev (stddev_samp), stddev_pop, over any
    /// expression, each with an optional FILTER (WHERE ...) and AS name. Without
    /// --group-by, one global row.
    #[arg(long, value_name = "AGGS")]
    pub agg: Option<String>,

    /// Keep one row per distinct value of these columns (comma-separated, names with a
    /// comma double-quoted): whole rows, in input order.
    #[arg(long, value_name = "a,b")]
    pub distinct: Vec<String>,

    /// Which row of each distinct key --distinct keeps.
    #[arg(long, value_enum, default_value_t = KeepArg::First, requires = "distinct")]
    pub keep: KeepArg,

    /// Sort by columns, SQL style: "a desc nulls last, b". Stable. Nulls default to SQL's
    /// placement: last for asc, first for desc.
    #[arg(long, value_name = "KEYS")]
    pub sort: Option<String>,

    /// Only the first N rows (after --sort, the top N).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,

    /// Write the result here; the format is the extension's: .parquet, .arrow / .feather /
    /// .ipc (IPC file), .arrows (IPC stream), .csv, .tsv. Written to a temporary name and
    /// renamed when complete. Without --out, a table is printed (at most 100 rows unless
    /// --limit says otherwise).
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Where operations run.
    #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
    pub backend: BackendArg,

    /// Print the query as SQL, where the time went (planning, execution, writing) and each
    /// operator's rows and time (GPU steps split into upload, kernels, download), on stderr.
    #[arg(long)]
    pub profile: bool,

    /// Rows per batch inside the plan (the unit of streaming and of each GPU upload; no
    /// larger than the input): 1 to 67,108,864.
    #[arg(long, value_name = "N", default_value_t = 1 << 20, value_parser = batch_rows)]
    pub batch_rows: usize,

    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Aggregate an Arrow IPC stream of events by event-time window: tumbling, hopping or
/// session windows, a watermark, group keys and aggregates (exact, as everywhere).
///
/// Each window is written once the watermark passes its end: window_start, window_end,
/// the keys, the aggregates. Rows that arrive when their windows are already written are
/// late: dropped and counted (or written to --late-out). At the end of a finite input every
/// open window is written. With --checkpoint, the state is saved as it goes, and running
/// the same command again after a crash (kill -9 included) resumes from the last save: the
/// files in --out are then those of a run that never stopped, none lost, none twice.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  arrow-wgpu stream readings.arrows --window \"tumble(ts, INTERVAL '1 minute')\" --watermark \"ts - INTERVAL '10 seconds'\" --group-by sensor --agg \"avg(temp), max(temp)\" --out windows/\n  arrow-wgpu stream incoming/ --follow --window \"hop(ts, INTERVAL '1 minute', INTERVAL '5 minutes')\" --agg \"count(*)\" --out windows/ --checkpoint state/\n  producer | arrow-wgpu stream --window \"session(ts, INTERVAL '30 seconds')\" --group-by user --agg \"count(*)\" > sessions.arrows"
)]
pub struct StreamArgs {
    /// An Arrow IPC stream (or IPC file), or a folder whose IPC files are read in name
    /// order (hidden files skipped; files should land whole, written elsewhere and
    /// renamed in); standard input when absent or `-`.
    #[arg(value_name = "SOURCE")]
    pub source: Option<PathBuf>,

    /// Keep waiting for more data at the end of the input (new batches of a file, new files
    /// in a folder) instead of ending there. Stop with Ctrl-C (then, with --checkpoint,
    /// run again to go on).
    #[arg(long)]
    pub follow: bool,

    /// The windows, over a Timestamp column: "tumble(ts, INTERVAL '1 minute')",
    /// "hop(ts, SLIDE, WIDTH)" (a window of WIDTH every SLIDE, as Flink's HOP), or
    /// "session(ts, GAP)". Intervals: INTERVAL '90 seconds', INTERVAL '1' MINUTE,
    /// '1 hour 30 minutes', 500ms, 2s, 5m, 1h, 1d.
    #[arg(long, value_name = "WINDOW")]
    pub window: String,

    /// The watermark: "ts - INTERVAL '10 seconds'" (the largest event time seen less a
    /// delay: the out-of-order arrival tolerated), or the name of a Timestamp column whose
    /// largest value so far is the watermark. Default: the largest event time seen.
    #[arg(long, value_name = "EXPR")]
    pub watermark: Option<String>,

    /// Group by these columns within each window (comma-separated).
    #[arg(long, value_name = "a,b")]
    pub group_by: Vec<String>,

    /// Aggregates, as `query --agg`: count(*), count(x), count(DISTINCT x), sum, min, max,
    /// mean (avg), var, var_pop, stddev, stddev_pop, each with FILTER (WHERE ...) and AS.
    /// Default: count(*).
    #[arg(long, value_name = "AGGS")]
    pub agg: Option<String>,

    /// A folder for the windows: one Arrow IPC file per batch of windows written,
    /// 0000000001.arrow, 0000000002.arrow, ..., each written whole (a temporary name,
    /// renamed). Without --out, an Arrow IPC stream on standard output.
    #[arg(long, short, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// A folder for the late rows (those dropped as late), one Arrow IPC file per input
    /// batch that had any: late-0000000001.arrow (the batch's number).
    #[arg(long, value_name = "DIR")]
    pub late_out: Option<PathBuf>,

    /// A folder for the checkpoint (the file `state` there, replaced whole at each save).
    /// When it holds one, the run resumes from it: the same input, flags and --out must be
    /// given. Needs --out.
    #[arg(long, value_name = "DIR", requires = "out")]
    pub checkpoint: Option<PathBuf>,

    /// How often to save: every N batches ("100"), or every N seconds ("30s"). Also saved at
    /// the end of the input.
    #[arg(long, value_name = "N", default_value = "10s", requires = "checkpoint")]
    pub checkpoint_every: String,

    /// Where the aggregation of each batch runs.
    #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
    pub backend: BackendArg,

    /// No progress line on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Run every operation over a ladder of sizes on the GPU (resident and with transfers) and
/// on the CPU, check that the answers agree, and write report.html (charts), report.md and
/// report.json.
///
/// The default ladder (1k to 3M rows) takes about two minutes on a 2-core machine with a
/// software GPU driver; --quick stops at 100k rows, --max-rows goes further.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// A short ladder (up to 100,000 rows, one timed run per point).
    #[arg(long)]
    pub quick: bool,

    /// The largest size of the ladder (sizes step by about 3x from 1,000), 1,000 to
    /// 4,000,000,000 (about 160 GB of generated columns at the top).
    #[arg(long, value_name = "ROWS", conflicts_with = "quick", value_parser = report_rows)]
    pub max_rows: Option<usize>,

    /// Timed runs per point (the median is reported); default 3, or 1 with --quick.
    #[arg(long, value_name = "N")]
    pub runs: Option<usize>,

    /// The directory to write report.html, report.md and report.json into.
    #[arg(long, value_name = "DIR", default_value = "arrow-wgpu-report")]
    pub out: PathBuf,

    /// Only these operations (comma-separated: filter, sort, group_by, distinct).
    #[arg(long, value_delimiter = ',', value_name = "OPS")]
    pub ops: Vec<String>,

    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// The GPU adapters wgpu finds: name, backend, device type, driver, features and limits.
#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    /// Every feature and limit, not only those arrow-wgpu uses.
    #[arg(long)]
    pub all: bool,
}

/// The most rows a batch may hold (`--batch-rows`): 64M rows of 8-byte columns are 512 MiB
/// a column, far beyond what a batch needs; a larger value is a typo, not a request to
/// allocate terabytes.
pub const MAX_BATCH_ROWS: usize = 1 << 26;

/// The largest `report --max-rows`: the report generates 5 columns of this many rows in
/// memory, ~40 bytes a row; anything above is a typo, not a ladder to climb.
pub const MAX_REPORT_ROWS: u64 = 4_000_000_000;

fn report_rows(text: &str) -> Result<usize, String> {
    let n: u64 = text
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a whole number of rows"))?;
    if !(1000..=MAX_REPORT_ROWS).contains(&n) {
        return Err(format!("{n} rows: use 1000 to {MAX_REPORT_ROWS}"));
    }
    usize::try_from(n).map_err(|_| format!("{n} rows don't fit this machine's usize"))
}

fn batch_rows(text: &str) -> Result<usize, String> {
    let n: u64 = text
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a whole number of rows"))?;
    if n == 0 || n > MAX_BATCH_ROWS as u64 {
        return Err(format!("{n} rows: use 1 to {MAX_BATCH_ROWS}"));
    }
    Ok(n as usize)
}
