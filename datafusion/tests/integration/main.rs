//! The DataFusion integration's tests, as modules of one test binary: each test binary links
//! DataFusion, wgpu and arrow and took about two minutes of a CI build to compile and link,
//! so four of them cost six minutes more than one.

#[path = "../../../tests/common/mod.rs"]
mod common;

mod distributed;
mod exact;
mod sql_props;
mod tpch;
