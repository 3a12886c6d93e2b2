//! arrow-wgpu's operators inside DataFusion's plans.
