#!/usr/bin/env bash
# The test command: unit tests, property tests, edge-case and error tests, doctests, on
# every GPU adapter found (Vulkan and GL on llvmpipe when there is no GPU), plus the lints;
# then the same for the arrow-wgpu command (feature `cli`).
set -euo pipefail
cd "$(dirname "$0")/.."
# llvmpipe's GL adapter wants a runtime dir; harmless elsewhere.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/xdg-$(id -u)}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
cargo test --lib --tests --examples
cargo test --doc
# TPC-H at SF1 against the published answers (6M rows; ignored in the plain run for time).
cargo test --test tpch -- --ignored
# The arrow-wgpu command (feature `cli`): its lints, its SQL unit tests and its end-to-end
# tests (every input and output format, streamed against one-batch answers, bad input).
cargo clippy --features cli --all-targets -- -D warnings
cargo test --features cli --bin arrow-wgpu --test cli
