#!/usr/bin/env bash
# The test command: lints, then unit, property, edge-case and error tests, doctests and
# end-to-end tests of every crate of the workspace (the kernel library, the DataFusion
# integration, the arrow-wgpu command), on every GPU adapter found (Vulkan and GL on
# llvmpipe when there is no GPU). One feature set for the whole workspace, so each
# dependency is built once for the lints and once for the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
# Panics print backtraces (RUST_BACKTRACE); libraries that capture one for every error
# or lock (std::backtrace::Backtrace::capture) don't: that is RUST_LIB_BACKTRACE.
export RUST_LIB_BACKTRACE="${RUST_LIB_BACKTRACE:-0}"
# llvmpipe's GL adapter wants a runtime dir; harmless elsewhere.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/xdg-$(id -u)}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace --lib --bins --tests --examples
cargo test --workspace --doc
# TPC-H Q1/Q6 at SF1 against the published answers (6M rows; ignored in the plain run for
# time).
cargo test --workspace --test integration -- --ignored tpch::
# The GPU benchmark's steps on llvmpipe at small sizes (scripts/gpu-bench.sh --dry-run), so
# the one run on a real GPU finds them working.
bash scripts/gpu-bench.sh --dry-run
