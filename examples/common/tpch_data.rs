//! TPC-H `lineitem` in memory, from the `tpchgen-arrow` crate (shared by examples/tpch.rs,
//! benches/tpch.rs and tests/tpch.rs).
//!
//! tpchgen promises the rows of TPC-H's own `dbgen` at every scale factor; the SF1 answer
//! check (`arrow_wgpu::tpch::check_q1_sf1`) confirms it for the columns Q1 and Q6 read.

#![allow(dead_code)]

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use tpchgen::generators::LineItemGenerator;
use tpchgen_arrow::LineItemArrow;

/// `lineitem` at scale factor `sf` (6,001,215 rows at SF1), projected to `columns`, as one
/// batch.
pub fn lineitem(sf: f64, columns: &[&str]) -> RecordBatch {
    let generator = LineItemArrow::new(LineItemGenerator::new(sf, 1, 1)).with_batch_size(65_536);
    let schema = LineItemArrow::schema_ref();
    let indices: Vec<usize> = columns
        .iter()
        .map(|c| schema.index_of(c).expect("a lineitem column"))
        .collect();
    let batches: Vec<RecordBatch> = generator
        .map(|b| b.expect("generated").project(&indices).expect("projection"))
        .collect();
    let projected = std::sync::Arc::new(schema.project(&indices).expect("projection"));
    concat_batches(&projected, &batches).expect("one schema")
}

/// The columns either query reads.
pub fn q1_q6_columns() -> Vec<&'static str> {
    arrow_wgpu::tpch::Q1_COLUMNS.to_vec()
}
