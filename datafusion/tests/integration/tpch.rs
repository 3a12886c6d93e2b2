//! The 22 TPC-H queries (queries/tpch) at scale factor 0.01 through DataFusion with
//! arrow-wgpu added, on the CPU engine and on every GPU adapter, against the answers DuckDB
//! computed over the same data (queries/tpch/answers/sf0.01, written by
//! scripts/tpch-answers.py; tpchgen-arrow here and tpchgen-cli there are one generator).
//!
//! Values compare as text, numbers as numbers: a decimal exactly (DataFusion's decimal
//! average truncates to its scale, so the reference is truncated to ours), a float to 1e-9
//! relative (DuckDB and DataFusion round their float sums differently).

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::DataType;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use arrow_wgpu::{Backend, Engine};
use arrow_wgpu_datafusion::ArrowWgpuOptions;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionConfig;
use tpchgen::generators::*;
use tpchgen_arrow::*;

use crate::common;
use crate::session_with;

const SF: f64 = 0.01;
/// Each table in this many parts: partitions of the table.
const PARTS: i32 = 3;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every TPC-H table at [`SF`], each as [`PARTS`] partitions.
fn tables() -> Vec<(&'static str, Arc<MemTable>)> {
    fn table<I: Iterator<Item = Result<RecordBatch, arrow::error::ArrowError>>>(
        parts: impl Fn(i32) -> I,
    ) -> Arc<MemTable> {
        table_of(PARTS, parts)
    }
    // nation and region are whole in every part: one part.
    fn table_of<I: Iterator<Item = Result<RecordBatch, arrow::error::ArrowError>>>(
        count: i32,
        parts: impl Fn(i32) -> I,
    ) -> Arc<MemTable> {
        let partitions: Vec<Vec<RecordBatch>> = (1..=count)
            .map(|p| parts(p).map(|b| b.unwrap()).collect())
            .collect();
        let schema = partitions.iter().flatten().next().unwrap().schema();
        Arc::new(MemTable::try_new(schema, partitions).unwrap())
    }
    vec![
        (
            "customer",
            table(|p| CustomerArrow::new(CustomerGenerator::new(SF, p, PARTS))),
        ),
        (
            "lineitem",
            table(|p| LineItemArrow::new(LineItemGenerator::new(SF, p, PARTS))),
        ),
        (
            "nation",
            table_of(1, |p| NationArrow::new(NationGenerator::new(SF, p, 1))),
        ),
        (
            "orders",
            table(|p| OrderArrow::new(OrderGenerator::new(SF, p, PARTS))),
        ),
        (
            "part",
            table(|p| PartArrow::new(PartGenerator::new(SF, p, PARTS))),
        ),
        (
            "partsupp",
            table(|p| PartSuppArrow::new(PartSuppGenerator::new(SF, p, PARTS))),
        ),
        (
            "region",
            table_of(1, |p| RegionArrow::new(RegionGenerator::new(SF, p, 1))),
        ),
        (
            "supplier",
            table(|p| SupplierArrow::new(SupplierGenerator::new(SF, p, PARTS))),
        ),
    ]
}

/// A value as text; a number with its digits.
fn cells(batches: &[RecordBatch]) -> (Vec<DataType>, Vec<Vec<String>>) {
    let mut rows = Vec::new();
    let types = batches
        .first()
        .map(|b| {
            b.schema()
                .fields()
                .iter()
                .map(|f| f.data_type().clone())
                .collect()
        })
        .unwrap_or_default();
    let options = FormatOptions::default().with_null("");
    for b in batches {
        let formatters: Vec<_> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
            .collect();
        for r in 0..b.num_rows() {
            rows.push(formatters.iter().map(|f| f.value(r).to_string()).collect());
        }
    }
    (types, rows)
}

/// `reference` (a decimal's text) truncated toward zero to `ours`'s fraction digits.
fn truncated_to(reference: &str, ours: &str) -> String {
    let digits = ours.split_once('.').map_or(0, |(_, f)| f.len());
    match reference.split_once('.') {
        Some((i, f)) if f.len() > digits => {
            if digits == 0 {
                i.to_string()
            } else {
                format!("{i}.{}", &f[..digits])
            }
        }
        _ => reference.to_string(),
    }
}

fn same(dt: &DataType, ours: &str, reference: &str) -> bool {
    if ours == reference {
        return true;
    }
    match dt {
        DataType::Float32 | DataType::Float64 => {
            match (ours.parse::<f64>(), reference.parse::<f64>()) {
                (Ok(a), Ok(b)) => (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0),
                _ => false,
            }
        }
        DataType::Decimal128(..) => {
            // The same number written with different trailing zeros, or DataFusion's
            // truncating average.
            let norm = |s: &str| -> String {
                let s = if s.contains('.') {
                    s.trim_end_matches('0').trim_end_matches('.')
                } else {
                    s
                };
                if s == "-0" {
                    "0".into()
                } else {
                    s.to_string()
                }
            };
            norm(ours) == norm(reference) || norm(ours) == norm(&truncated_to(reference, ours))
        }
        _ => false,
    }
}

fn answer(name: &str) -> Vec<Vec<String>> {
    let path = root().join(format!("queries/tpch/answers/sf0.01/{name}.csv"));
    let mut reader = csv::Reader::from_path(&path).unwrap();
    reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}

async fn check_all(engine: Arc<Engine>, label: &str, partitions: usize) {
    let config = SessionConfig::new().with_target_partitions(partitions);
    let mut options = ArrowWgpuOptions::new(engine.clone());
    // Small batches for the GPU operators: they merge partial results across batches.
    options.batch_rows = 20_000;
    let ctx = session_with(config, options);
    for (name, table) in tables() {
        ctx.register_table(name, table).unwrap();
    }
    let mut ran_on_gpu = 0;
    for q in 1..=22 {
        let name = format!("q{q:02}");
        let sql = std::fs::read_to_string(root().join(format!("queries/tpch/{name}.sql"))).unwrap();
        let df = ctx
            .sql(&sql)
            .await
            .unwrap_or_else(|e| panic!("{label} {name}: {e}"));
        let plan = df.clone().create_physical_plan().await.unwrap();
        let shown = datafusion::physical_plan::displayable(plan.as_ref())
            .indent(true)
            .to_string();
        ran_on_gpu += shown.contains("Wgpu") as usize;
        let batches = df
            .collect()
            .await
            .unwrap_or_else(|e| panic!("{label} {name}: {e}"));
        let (types, got) = cells(&batches);
        let want = answer(&name);
        assert_eq!(got.len(), want.len(), "{label} {name}: rows\n{shown}");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            for (c, (a, b)) in g.iter().zip(w).enumerate() {
                assert!(
                    same(&types[c], a, b),
                    "{label} {name}: row {i} column {c}: ours {a}, DuckDB {b}\n{shown}"
                );
            }
        }
    }
    if engine.adapter().is_some() {
        // Filters, aggregates or sorts of most queries run on the GPU.
        assert!(
            ran_on_gpu >= 15,
            "{label}: only {ran_on_gpu} queries used a GPU operator"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpch_sf001_matches_duckdb_on_the_cpu() {
    let cpu = Arc::new(Engine::new(Backend::Cpu).unwrap());
    for partitions in [1, 2, 7] {
        check_all(
            cpu.clone(),
            &format!("cpu, {partitions} partitions"),
            partitions,
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpch_sf001_matches_duckdb_on_every_gpu() {
    for (name, engine) in common::gpu_engines(None) {
        check_all(Arc::new(engine), &name, 2).await;
    }
}
