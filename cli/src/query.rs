//! `arrow-wgpu query`: filter, group-by, distinct, sort and limit, as one SQL query on
//! DataFusion with arrow-wgpu's operators in its plan (the same path as `arrow-wgpu sql`).
//!
//! The flags keep the library's meaning. Each is checked first by the library itself, on
//! the input's columns (so an unknown column, an expression the library can't evaluate or
//! one that doesn't type-check fails at once, with the library's message, before any
//! output exists), then written as SQL with every column resolved and quoted. The input
//! order the flags promise is made explicit with each row's position in the input
//! ([`ROW`], numbered by [`OrderedFiles`]):
//!
//! - `--group-by`: `GROUP BY keys ... ORDER BY min(row)`, groups in order of first
//!   appearance;
//! - `--distinct` keeping the first / last row of each key: `GROUP BY` the keys, each
//!   other column `first_value(c ORDER BY row)` / `last_value(...)`; keeping none: the
//!   same with `HAVING count(*) = 1`; in input order (`ORDER BY` the kept row's position);
//! - `--sort`: the keys, then `row`, a stable sort; with `--limit`, DataFusion's top-k;
//! - `--filter` and `--limit` alone stream in one partition, in input order.
//!
//! With a group-by, distinct or sort the plan runs on every core, and so does the scan
//! when the files are Parquet (the reader numbers their rows); CSV and IPC files are read
//! in one partition that counts the rows.

use std::time::Instant;

use anyhow::{Context, Result};
use arrow::array::RecordBatch;
use arrow_wgpu::{Backend, Engine, Keep};
use datafusion::prelude::SessionContext;

use crate::args::{KeepArg, QueryArgs, SqlArgs};
use crate::ordered::{OrderedFiles, ROW};
use crate::sql::{self, quote};
use crate::sql_command::{self, execute};
use crate::write::TABLE_ROWS;

pub fn run(args: QueryArgs) -> Result<()> {
    sql_command::block_on(run_async(args))
}

async fn run_async(args: QueryArgs) -> Result<()> {
    let started = Instant::now();
    // The files' tables hold no session: they are opened once, with a plain one, before
    // the batch size (bounded by the rows they can hold) is known.
    let input = OrderedFiles::open(&SessionContext::new().state(), &args.files).await?;
    let plan = plan(&args, &input)?;
    let sql_args = SqlArgs {
        query: plan.sql.clone(),
        table: Vec::new(),
        tables: Vec::new(),
        out: args.out.clone(),
        backend: args.backend,
        explain: false,
        profile: args.profile,
        memory_limit: None,
        partitions: plan.in_order.then_some(1),
        // No batch larger than the input: readers size their buffers by it.
        batch_size: Some(
            args.batch_rows
                .min(usize::try_from(input.most_rows.max(1)).unwrap_or(usize::MAX)),
        ),
        workers: None,
        task_bytes: None,
        quiet: args.quiet,
    };
    let session = sql_command::session(&sql_args).await?;
    session
        .ctx
        .register_table("input", std::sync::Arc::new(input))
        .context("registering the input")?;
    if args.profile {
        let place = match session.engine.adapter() {
            Some(a) => format!("GPU ({}, {:?})", a.name, a.backend),
            None => "CPU (exact)".to_string(),
        };
        eprintln!(
            "query: {} on {place} (--backend {:?}), as SQL:\n  {}",
            plan.steps.join(" -> "),
            args.backend,
            plan.sql
        );
    }
    execute(
        &session,
        &sql_args,
        args.limit.unwrap_or(TABLE_ROWS).max(1),
        started,
    )
    .await
}

/// The flags as one SQL query over the table `input`.
struct Plan {
    sql: String,
    /// The steps, in SQL's order (`filter`, `group_by`, `distinct`, `sort`, `limit`).
    steps: Vec<&'static str>,
    /// Whether the plan must keep its input's order itself (its rows stream through a
    /// filter and limit, with no `ORDER BY` to restore it): it then runs in one partition.
    in_order: bool,
}

/// Checks every flag with the library, on the columns each step sees, and writes the
/// query.
fn plan(args: &QueryArgs, input: &OrderedFiles) -> Result<Plan> {
    let check = Engine::new(Backend::Cpu)?;
    let mut schema = input.file_schema();
    let row = quote(ROW);
    let mut from = "input".to_string();
    let mut steps = Vec::new();
    // Whether rows may come out of a step in another order than they went in.
    let mut reordered = false;
    // Whether a step aggregates (its output is not the input's rows, streamed).
    let mut aggregated = false;

    if let Some(text) = &args.filter {
        let (predicate, predicate_sql) = sql::predicate_with_sql(text, &schema)?;
        check
            .filter(&RecordBatch::new_empty(schema.clone()), &predicate)
            .with_context(|| format!("--filter `{text}`"))?;
        from = format!("(SELECT * FROM {from} WHERE {predicate_sql})");
        steps.push("filter");
    }
    if !args.group_by.is_empty() || args.agg.is_some() {
        let keys = sql::resolve_columns(&args.group_by, &schema);
        let (aggs, aggs_sql) = match &args.agg {
            Some(text) => sql::aggs_with_sql(text, &schema)?,
            None => (Vec::new(), Vec::new()),
        };
        let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let grouped = check
            .group_by(&RecordBatch::new_empty(schema.clone()), &key_refs, &aggs)
            .context("--group-by / --agg")?;
        // Keys, then each aggregate under the library's name for it, then the position of
        // the group's first row.
        let mut items: Vec<String> = keys.iter().map(|k| quote(k)).collect();
        let names = grouped.schema().fields()[keys.len()..]
            .iter()
            .map(|f| f.name().clone())
            .collect::<Vec<_>>();
        for (agg, name) in aggs_sql.iter().zip(&names) {
            items.push(format!("{agg} AS {}", quote(name)));
        }
        // A global aggregate is one row: no position to keep (and no column to read).
        items.push(if keys.is_empty() {
            format!("CAST(0 AS BIGINT) AS {row}")
        } else {
            format!("min({row}) AS {row}")
        });
        let group_by = if keys.is_empty() {
            String::new()
        } else {
            format!(" GROUP BY {}", list(&keys))
        };
        from = format!("(SELECT {} FROM {from}{group_by})", items.join(", "));
        schema = grouped.schema();
        steps.push("group_by");
        reordered = !keys.is_empty();
        aggregated = true;
    }
    if !args.distinct.is_empty() {
        let keys = sql::resolve_columns(&args.distinct, &schema);
        let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let keep = match args.keep {
            KeepArg::First => Keep::First,
            KeepArg::Last => Keep::Last,
            KeepArg::Any => Keep::Any,
            KeepArg::None => Keep::None,
        };
        check
            .distinct(&RecordBatch::new_empty(schema.clone()), &key_refs, keep)
            .context("--distinct")?;
        // One row per key, with the values of the row it keeps (by position: the first,
        // the last, or the only one) and that row's position: one aggregate over the
        // input, no join.
        let (pick, value, having) = match keep {
            Keep::First | Keep::Any => ("min", "first_value", ""),
            Keep::Last => ("max", "last_value", ""),
            Keep::None => ("min", "first_value", " HAVING count(*) = 1"),
        };
        let mut items: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| {
                let c = quote(f.name());
                if keys.contains(f.name()) {
                    c
                } else {
                    format!("{value}({c} ORDER BY {row}) AS {c}")
                }
            })
            .collect();
        items.push(format!("{pick}({row}) AS {row}"));
        from = format!(
            "(SELECT {} FROM {from} GROUP BY {}{having})",
            items.join(", "),
            list(&keys)
        );
        steps.push("distinct");
        reordered = true;
        aggregated = true;
    }
    let mut order = Vec::new();
    if let Some(text) = &args.sort {
        let keys = sql::parse_sort(text, &schema)?;
        check
            .sort(&RecordBatch::new_empty(schema.clone()), &keys, None)
            .with_context(|| format!("--sort `{text}`"))?;
        order = sql::sort_sql(&keys);
        steps.push("sort");
    }
    // Ties (and everything, without --sort) in input order.
    if !order.is_empty() || reordered {
        order.push(row);
    }
    let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let mut sql = format!("SELECT {} FROM {from} AS r", list(&columns));
    if !order.is_empty() {
        sql += &format!(" ORDER BY {}", order.join(", "));
    }
    if let Some(limit) = args.limit {
        sql += &format!(" LIMIT {limit}");
        steps.push("limit");
    }
    if steps.is_empty() {
        steps.push("read");
    }
    Ok(Plan {
        sql,
        steps,
        in_order: order.is_empty() && !aggregated,
    })
}

/// Names as a comma-separated list of quoted identifiers.
fn list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| quote(n))
        .collect::<Vec<_>>()
        .join(", ")
}
