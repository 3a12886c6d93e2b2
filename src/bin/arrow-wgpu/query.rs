//! `arrow-wgpu query`: filter, group-by, distinct, sort and limit over streamed batches.
//!
//! The steps form a push pipeline in SQL's order. Each input batch goes through the steps
//! that stream (filter; group-by, whose partial aggregates merge exactly across batches;
//! distinct keeping first occurrences, with a host-side set of the keys seen before; a
//! top-N sort) and on to the output; the steps that need their whole input (a full sort,
//! distinct keeping last or unique rows) collect it and run once at the end.
//!
//! Every step is checked against the input's schema (on an empty batch, by the CPU path)
//! before any output file is created or any data is read, so an unknown column or an
//! expression that doesn't type-check fails at once and leaves nothing behind.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use arrow::array::{RecordBatch, UInt32Array};
use arrow::compute::{concat_batches, take_record_batch};
use arrow::datatypes::SchemaRef;
use arrow::row::{RowConverter, SortField};
use arrow_wgpu::{
    Agg, Backend, Engine, Expr, GroupByAccumulator, GroupByOptions, Keep, Phase, RanOn, SortKey,
};
use hashbrown::HashSet;
use indicatif::{ProgressBar, ProgressStyle};

use crate::args::{KeepArg, QueryArgs};
use crate::read::Input;
use crate::sql;
use crate::write::{FileSink, Sink, TableSink, TABLE_ROWS};

/// How long an input may run before a progress bar appears.
const PROGRESS_AFTER: Duration = Duration::from_millis(800);

pub fn run(args: QueryArgs) -> Result<()> {
    let started = Instant::now();
    let input = Input::open(&args.files, args.batch_rows)?;
    let engine = Engine::new(args.backend.into()).context("opening the engine")?;
    let check = Engine::new(Backend::Cpu)?;
    let mut schema = input.schema();
    let mut stages: Vec<Stage> = Vec::new();

    if let Some(text) = &args.filter {
        let predicate = sql::parse_predicate(text, &schema)?;
        check
            .filter(&RecordBatch::new_empty(schema.clone()), &predicate)
            .with_context(|| format!("--filter `{text}`"))?;
        stages.push(Stage::Filter(predicate));
    }
    if !args.group_by.is_empty() || args.agg.is_some() {
        let keys = sql::resolve_columns(&args.group_by, &schema);
        let aggs = match &args.agg {
            Some(text) => sql::parse_aggs(text, &schema)?,
            None => Vec::new(),
        };
        let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let accumulator = engine
            .group_by_accumulator(schema.clone(), &key_refs, &aggs, GroupByOptions::default())
            .context("--group-by / --agg")?;
        let out_schema = accumulator.schema();
        stages.push(Stage::GroupBy(
            Some(accumulator),
            describe_group_by(&keys, &aggs),
        ));
        schema = out_schema;
    }
    if !args.distinct.is_empty() {
        let keys = sql::resolve_columns(&args.distinct, &schema);
        let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        check
            .distinct(
                &RecordBatch::new_empty(schema.clone()),
                &key_refs,
                Keep::First,
            )
            .context("--distinct")?;
        stages.push(match args.keep {
            KeepArg::First | KeepArg::Any => {
                let fields = key_refs
                    .iter()
                    .map(|k| {
                        let field = schema.field_with_name(k).expect("checked above");
                        SortField::new(field.data_type().clone())
                    })
                    .collect();
                Stage::DistinctFirst {
                    keep: if args.keep == KeepArg::Any {
                        Keep::Any
                    } else {
                        Keep::First
                    },
                    converter: RowConverter::new(fields)?,
                    seen: HashSet::new(),
                    keys,
                }
            }
            KeepArg::Last | KeepArg::None => Stage::Collect {
                batches: Vec::new(),
                schema: schema.clone(),
                then: Whole::Distinct(
                    keys,
                    if args.keep == KeepArg::Last {
                        Keep::Last
                    } else {
                        Keep::None
                    },
                ),
            },
        });
    }
    if let Some(text) = &args.sort {
        let keys = sql::parse_sort(text, &schema)?;
        check
            .sort(&RecordBatch::new_empty(schema.clone()), &keys, None)
            .with_context(|| format!("--sort `{text}`"))?;
        stages.push(match args.limit {
            Some(limit) => Stage::TopN {
                keys,
                limit,
                best: None,
            },
            None => Stage::Collect {
                batches: Vec::new(),
                schema: schema.clone(),
                then: Whole::Sort(keys),
            },
        });
    }
    if let Some(limit) = args.limit {
        stages.push(Stage::Limit { remaining: limit });
    }

    let sink = match &args.out {
        Some(path) => Sink::File(Box::new(FileSink::create(path, &schema)?)),
        None => Sink::Table(TableSink::new(args.limit.unwrap_or(TABLE_ROWS))),
    };
    let mut pipeline = Pipeline {
        stages,
        sink,
        ctx: Ctx {
            engine,
            profile: args.profile.then(Totals::default),
        },
    };

    let mut progress = Progress::new(input.total_rows, args.quiet);
    let mut input = input;
    loop {
        let read_start = Instant::now();
        let Some(batch) = input.next() else { break };
        let batch = batch?;
        pipeline.ctx.add_io("read", read_start.elapsed());
        progress.advance(batch.num_rows() as u64);
        pipeline.push(batch)?;
        if pipeline.done() {
            break;
        }
    }
    progress.finish();
    pipeline.finish(&schema)?;
    if let Some(totals) = &pipeline.ctx.profile {
        eprint!("{}", totals.render(started.elapsed(), args.backend));
    }
    Ok(())
}

fn describe_group_by(keys: &[String], aggs: &[Agg]) -> String {
    format!(
        "[{}] {}",
        keys.join(", "),
        aggs.iter().map(Agg::name).collect::<Vec<_>>().join(", ")
    )
}

/// What runs on the whole input at the end.
enum Whole {
    Sort(Vec<SortKey>),
    Distinct(Vec<String>, Keep),
}

/// One step of the pipeline.
enum Stage {
    Filter(Expr),
    GroupBy(Option<GroupByAccumulator>, String),
    /// Distinct keeping the first row of each key: each batch's own distinct rows (on the
    /// engine), less the keys an earlier batch had (their row-format encodings, on the host).
    DistinctFirst {
        keys: Vec<String>,
        keep: Keep,
        converter: RowConverter,
        seen: HashSet<Box<[u8]>>,
    },
    /// The best `limit` rows so far by `keys`: each batch is sorted with the best before it
    /// (first, so ties keep input order) and cut to `limit`.
    TopN {
        keys: Vec<SortKey>,
        limit: usize,
        best: Option<RecordBatch>,
    },
    Collect {
        batches: Vec<RecordBatch>,
        schema: SchemaRef,
        then: Whole,
    },
    Limit {
        remaining: usize,
    },
}

struct Ctx {
    engine: Engine,
    profile: Option<Totals>,
}

impl Ctx {
    /// Runs one engine call, adding its profile to the totals when profiling.
    fn call<T>(
        &mut self,
        f: impl FnOnce(&Engine) -> arrow_wgpu::Result<T>,
    ) -> arrow_wgpu::Result<T> {
        match &mut self.profile {
            None => f(&self.engine),
            Some(totals) => {
                let (out, profile) = self.engine.profiled(f)?;
                totals.add(&profile);
                Ok(out)
            }
        }
    }

    fn add_io(&mut self, what: &'static str, d: Duration) {
        if let Some(t) = &mut self.profile {
            *t.io.entry(what).or_default() += d;
        }
    }
}

impl Stage {
    /// Feeds one batch; returns what the step passes on now.
    fn push(&mut self, batch: RecordBatch, ctx: &mut Ctx) -> Result<Vec<RecordBatch>> {
        Ok(match self {
            Stage::Filter(predicate) => vec![ctx.call(|e| e.filter(&batch, predicate))?],
            Stage::GroupBy(acc, _) => {
                let acc = acc.as_mut().expect("pushed before finish");
                ctx.call(|_| acc.push(&batch))?;
                Vec::new()
            }
            Stage::DistinctFirst {
                keys,
                keep,
                converter,
                seen,
            } => {
                let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
                let firsts = ctx.call(|e| e.distinct(&batch, &key_refs, *keep))?;
                let columns = key_refs
                    .iter()
                    .map(|k| firsts.column_by_name(k).expect("checked").clone())
                    .collect::<Vec<_>>();
                let rows = converter.convert_columns(&columns)?;
                let new: Vec<u32> = (0..rows.num_rows())
                    .filter(|&i| seen.insert(rows.row(i).as_ref().into()))
                    .map(|i| i as u32)
                    .collect();
                if new.len() == firsts.num_rows() {
                    vec![firsts]
                } else {
                    vec![take_record_batch(&firsts, &UInt32Array::from(new))?]
                }
            }
            Stage::TopN { keys, limit, best } => {
                let candidates = match best.take() {
                    Some(b) => concat_batches(&batch.schema(), [&b, &batch])?,
                    None => batch,
                };
                *best = Some(ctx.call(|e| e.sort(&candidates, keys, Some(*limit)))?);
                Vec::new()
            }
            Stage::Collect { batches, .. } => {
                batches.push(batch);
                Vec::new()
            }
            Stage::Limit { remaining } => {
                let take = batch.num_rows().min(*remaining);
                *remaining -= take;
                if take == 0 {
                    Vec::new()
                } else {
                    vec![batch.slice(0, take)]
                }
            }
        })
    }

    /// The input has ended; returns what the step still holds.
    fn finish(&mut self, ctx: &mut Ctx) -> Result<Vec<RecordBatch>> {
        Ok(match self {
            Stage::GroupBy(acc, what) => {
                let acc = acc.take().expect("finished once");
                vec![ctx
                    .call(|_| acc.finish())
                    .with_context(|| format!("group-by {what}"))?]
            }
            Stage::TopN { best, .. } => best.take().into_iter().collect(),
            Stage::Collect {
                batches,
                schema,
                then,
            } => {
                let all = concat_batches(schema, batches.iter())?;
                batches.clear();
                vec![match then {
                    Whole::Sort(keys) => ctx.call(|e| e.sort(&all, keys, None))?,
                    Whole::Distinct(keys, keep) => {
                        let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
                        ctx.call(|e| e.distinct(&all, &key_refs, *keep))?
                    }
                }]
            }
            Stage::Filter(_) | Stage::DistinctFirst { .. } | Stage::Limit { .. } => Vec::new(),
        })
    }
}

struct Pipeline {
    stages: Vec<Stage>,
    sink: Sink,
    ctx: Ctx,
}

impl Pipeline {
    fn push(&mut self, batch: RecordBatch) -> Result<()> {
        self.feed(0, batch)
    }

    /// Feeds `batch` to step `from` and what comes out to the steps after it.
    fn feed(&mut self, from: usize, batch: RecordBatch) -> Result<()> {
        if from == self.stages.len() {
            if batch.num_rows() > 0 {
                let start = Instant::now();
                self.sink.write(&batch)?;
                self.ctx.add_io("write", start.elapsed());
            }
            return Ok(());
        }
        let out = self.stages[from].push(batch, &mut self.ctx)?;
        for b in out {
            self.feed(from + 1, b)?;
        }
        Ok(())
    }

    /// Whether the output is complete (a limit reached): reading can stop.
    fn done(&self) -> bool {
        matches!(self.stages.last(), Some(Stage::Limit { remaining: 0 }))
    }

    fn finish(&mut self, schema: &SchemaRef) -> Result<()> {
        for i in 0..self.stages.len() {
            let out = self.stages[i].finish(&mut self.ctx)?;
            for b in out {
                self.feed(i + 1, b)?;
            }
        }
        let start = Instant::now();
        let sink = std::mem::replace(&mut self.sink, Sink::Table(TableSink::new(0)));
        sink.finish(schema)?;
        self.ctx.add_io("write", start.elapsed());
        Ok(())
    }
}

/// One operation on one backend, over the whole run.
#[derive(Default)]
struct StepTotal {
    calls: usize,
    /// Time in each of [`PHASES`].
    phases: [Duration; 4],
    /// Why it fell back to the CPU, each reason once.
    fallbacks: Vec<String>,
}

/// Time per phase for each operation and backend, over the whole run.
#[derive(Default)]
struct Totals {
    /// (operation, where it ran) -> its totals.
    steps: BTreeMap<(String, String), StepTotal>,
    io: BTreeMap<&'static str, Duration>,
}

const PHASES: [Phase; 4] = [Phase::Upload, Phase::Kernels, Phase::Download, Phase::Cpu];

impl Totals {
    fn add(&mut self, profile: &arrow_wgpu::Profile) {
        for step in &profile.steps {
            let on = match &step.ran_on {
                RanOn::Gpu(name) => format!("GPU ({name})"),
                RanOn::Cpu => "CPU".to_string(),
            };
            let entry = self
                .steps
                .entry((step.operation.to_string(), on))
                .or_default();
            entry.calls += 1;
            for (i, phase) in PHASES.iter().enumerate() {
                entry.phases[i] += step.time_in(*phase);
            }
            if let Some(why) = &step.fallback {
                if !entry.fallbacks.contains(why) {
                    entry.fallbacks.push(why.clone());
                }
            }
        }
    }

    fn render(&self, wall: Duration, backend: crate::args::BackendArg) -> String {
        let ms = |d: Duration| {
            if d.is_zero() {
                "-".to_string()
            } else {
                format!("{:.1} ms", d.as_secs_f64() * 1e3)
            }
        };
        let mut out = format!(
            "profile (--backend {backend:?}, wall {:.1} ms)\n{:<10} {:>6} {:>11} {:>11} {:>11} {:>11} {:>11} {:>11}  ran on\n",
            wall.as_secs_f64() * 1e3,
            "step",
            "calls",
            "read",
            "upload",
            "kernels",
            "download",
            "cpu",
            "write"
        )
        .to_ascii_lowercase();
        let io = |what| self.io.get(what).copied().unwrap_or_default();
        out += &format!(
            "{:<10} {:>6} {:>11} {:>11} {:>11} {:>11} {:>11} {:>11}  host\n",
            "read",
            "",
            ms(io("read")),
            "-",
            "-",
            "-",
            "-",
            "-"
        );
        for ((op, on), total) in &self.steps {
            let (calls, t, fallbacks) = (total.calls, &total.phases, &total.fallbacks);
            out += &format!(
                "{:<10} {:>6} {:>11} {:>11} {:>11} {:>11} {:>11} {:>11}  {on}\n",
                op,
                calls,
                "-",
                ms(t[0]),
                ms(t[1]),
                ms(t[2]),
                ms(t[3]),
                "-"
            );
            for why in fallbacks {
                out += &format!("{:<10} fell back to the CPU: {why}\n", "");
            }
        }
        out += &format!(
            "{:<10} {:>6} {:>11} {:>11} {:>11} {:>11} {:>11} {:>11}  host\n",
            "write",
            "",
            "-",
            "-",
            "-",
            "-",
            "-",
            ms(io("write"))
        );
        out
    }
}

/// A progress bar on stderr (rows, rows/s), shown once the input takes more than a
/// moment, and only on a terminal.
struct Progress {
    start: Instant,
    rows: u64,
    total: Option<u64>,
    bar: Option<ProgressBar>,
    quiet: bool,
}

impl Progress {
    fn new(total: Option<u64>, quiet: bool) -> Progress {
        Progress {
            start: Instant::now(),
            rows: 0,
            total,
            bar: None,
            quiet,
        }
    }

    fn advance(&mut self, rows: u64) {
        self.rows += rows;
        if self.bar.is_none() && !self.quiet && self.start.elapsed() > PROGRESS_AFTER {
            let (bar, template) = match self.total {
                Some(total) => (
                    ProgressBar::new(total),
                    "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} rows ({per_sec}, eta {eta})",
                ),
                None => (
                    ProgressBar::no_length(),
                    "{spinner} [{elapsed_precise}] {human_pos} rows ({per_sec})",
                ),
            };
            let style = ProgressStyle::with_template(template).expect("a valid template");
            self.bar = Some(bar.with_style(style).with_elapsed(self.start.elapsed()));
        }
        if let Some(bar) = &self.bar {
            bar.set_position(self.rows);
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
