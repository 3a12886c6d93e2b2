//! `arrow-wgpu worker`: a datafusion-distributed worker with arrow-wgpu's operators and
//! exact aggregates, for `arrow-wgpu sql --workers`.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, Result};
use arrow_wgpu::{Engine, EngineOptions};
use arrow_wgpu_datafusion::distributed::{serve, worker};
use arrow_wgpu_datafusion::ArrowWgpuOptions;

use crate::args::WorkerArgs;

pub fn run(args: WorkerArgs) -> Result<()> {
    let engine = Engine::with_options(EngineOptions {
        backend: args.backend.into(),
        ..Default::default()
    })
    .context("opening the engine")?;
    let place = arrow_wgpu_datafusion::exec::engine_place(&engine);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let addr = listener.local_addr().context("the listening address")?;
        // The line scripts wait for (with the port the system picked for port 0).
        println!("listening on {addr} ({place})");
        let _ = std::io::stdout().flush();
        // Until killed: Ctrl-C and SIGTERM end the process (main's handler).
        serve(
            worker(ArrowWgpuOptions::new(Arc::new(engine))),
            listener,
            std::future::pending(),
        )
        .await
        .context("serving")
    })
}
