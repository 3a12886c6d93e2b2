//! The 22 TPC-H queries (`queries/tpch/`) through DataFusion with arrow-wgpu added, on
//! tables generated in memory by tpchgen-arrow (shared by examples/tpch.rs and
//! benches/tpch.rs).

#![allow(dead_code)]

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow_wgpu::Engine;
use arrow_wgpu_datafusion::{with_options, ArrowWgpuOptions};
use datafusion::datasource::MemTable;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use tpchgen::generators::*;
use tpchgen_arrow::*;

/// The text of query `n` (1 to 22).
pub fn query(n: usize) -> String {
    let path = format!("{}/queries/tpch/q{n:02}.sql", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn table<I: Iterator<Item = Result<RecordBatch, arrow::error::ArrowError>>>(
    parts: i32,
    part: impl Fn(i32, i32) -> I,
) -> Arc<MemTable> {
    let partitions: Vec<Vec<RecordBatch>> = (1..=parts)
        .map(|p| part(p, parts).map(|b| b.expect("generated")).collect())
        .collect();
    let schema = partitions.iter().flatten().next().expect("rows").schema();
    Arc::new(MemTable::try_new(schema, partitions).expect("one schema"))
}

/// Every TPC-H table at scale factor `sf`, the larger ones in `parts` partitions.
pub fn tables(sf: f64, parts: i32) -> Vec<(&'static str, Arc<MemTable>)> {
    vec![
        (
            "customer",
            table(parts, |p, n| {
                CustomerArrow::new(CustomerGenerator::new(sf, p, n))
            }),
        ),
        (
            "lineitem",
            table(parts, |p, n| {
                LineItemArrow::new(LineItemGenerator::new(sf, p, n))
            }),
        ),
        (
            "nation",
            table(1, |p, n| NationArrow::new(NationGenerator::new(sf, p, n))),
        ),
        (
            "orders",
            table(parts, |p, n| OrderArrow::new(OrderGenerator::new(sf, p, n))),
        ),
        (
            "part",
            table(parts, |p, n| PartArrow::new(PartGenerator::new(sf, p, n))),
        ),
        (
            "partsupp",
            table(parts, |p, n| {
                PartSuppArrow::new(PartSuppGenerator::new(sf, p, n))
            }),
        ),
        (
            "region",
            table(1, |p, n| RegionArrow::new(RegionGenerator::new(sf, p, n))),
        ),
        (
            "supplier",
            table(parts, |p, n| {
                SupplierArrow::new(SupplierGenerator::new(sf, p, n))
            }),
        ),
    ]
}

/// A session with arrow-wgpu on `engine` and the tables registered.
pub fn session(engine: Arc<Engine>, tables: &[(&'static str, Arc<MemTable>)]) -> SessionContext {
    let state = with_options(
        SessionStateBuilder::new()
            .with_default_features()
            .with_config(SessionConfig::new()),
        ArrowWgpuOptions::new(engine),
    )
    .build();
    let ctx = SessionContext::new_with_state(state);
    for (name, t) in tables {
        ctx.register_table(*name, t.clone()).expect("a new name");
    }
    ctx
}

/// Runs query `n` and returns its result.
pub async fn run(ctx: &SessionContext, n: usize) -> datafusion::error::Result<Vec<RecordBatch>> {
    ctx.sql(&query(n)).await?.collect().await
}
