//! Links the command as a position-dependent executable on Linux.
//!
//! The binary carries ~250k relative relocations (DataFusion's, arrow's and wgpu's
//! vtables and tables: 4 MB of `.data.rel.ro`). As a position-independent executable the
//! dynamic loader rewrites every one of them at each start, copying each page it touches:
//! about 10 ms of a query that takes 60 ms. Linked at a fixed address, those pages are
//! read from the file as they are, and only the pages used are.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
