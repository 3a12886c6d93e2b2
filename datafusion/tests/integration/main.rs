//! The DataFusion integration's tests, as modules of one test binary: each test binary links
//! DataFusion, wgpu and arrow and took about two minutes of a CI build to compile and link,
//! so four of them cost six minutes more than one.

#[path = "../../../tests/common/mod.rs"]
mod common;

mod distributed;
mod exact;
mod sql_props;
mod tpch;

use arrow_wgpu_datafusion::{with_options, ArrowWgpuOptions};
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

/// A session of `config` with arrow-wgpu's rule and exact aggregate functions
/// ([`with_options`]), as a library user makes one.
fn session_with(config: SessionConfig, options: ArrowWgpuOptions) -> SessionContext {
    let builder = SessionStateBuilder::new()
        .with_default_features()
        .with_config(config);
    SessionContext::new_with_state(with_options(builder, options).build())
}
