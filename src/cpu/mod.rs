//! The CPU path: every operation on arrow-rs's own kernels. It gives the answers the GPU
//! path is held to, and runs wherever there is no GPU.

pub(crate) mod distinct;
pub(crate) mod filter;
pub(crate) mod group_by;
pub(crate) mod keys;
pub(crate) mod sort;
