//! The library's integration tests, as modules of one test binary (`cargo test --test
//! integration`; a module's tests by its name, as in `cargo test --test integration
//! sort_props`). One binary rather than one per file: each linked wgpu and arrow again, and
//! `cargo test` ran the binaries one after another, so a file with one long property test
//! left the second core idle while it ran; here every test shares both cores.

mod common;

mod decimal_edges;
mod decimal_props;
mod deep_expressions;
mod distinct_edges;
mod distinct_props;
mod errors;
mod filter_edges;
mod filter_props;
mod gpu_failures;
mod group_by_edges;
mod group_by_gpu;
mod group_by_props;
mod group_by_stream;
mod softfloat;
mod sort_edges;
mod sort_props;
mod strings_edges;
mod strings_props;
mod tpch;
mod traffic;
mod window_edges;
mod window_props;
