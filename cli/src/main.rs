//! `arrow-wgpu`: query Parquet, Arrow IPC and CSV files on the GPU, measure the GPU against
//! the CPU, and list the adapters. Built with `--features cli`.
//!
//! Errors print one line per cause on stderr (`error: ...`, then `caused by: ...`) and exit
//! with status 1; bad arguments exit with clap's status 2.

mod args;
mod info;
mod ordered;
mod query;
mod read;
mod report;
mod sql;
mod sql_command;
mod stream;
mod worker;
mod write;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};

/// mimalloc, as datafusion-cli: see cli/Cargo.toml.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Quiet by default: wgpu logs harmless errors while it probes adapters, and the
    // library logs each fall back to the CPU once per batch; --profile shows what ran
    // where. RUST_LOG=warn (or info) brings them back.
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("error,wgpu_hal=off"),
    )
    .init();
    // An interrupted run (Ctrl-C, SIGTERM) removes the output it was writing.
    let _ = ctrlc::set_handler(|| {
        write::remove_temporaries();
        std::process::exit(130);
    });
    read::install_panic_hook();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sql(a) => sql_command::run(a),
        Command::Query(a) => query::run(a),
        Command::Stream(a) => stream::run(a),
        Command::Worker(a) => worker::run(a),
        Command::Report(a) => report::run(a),
        Command::Info(a) => info::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
