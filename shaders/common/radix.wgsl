// The parameters of one radix pass (histogram and scatter stages of the sort).
struct PassParams {
    rows: u32,
    // The digit's lowest bit.
    shift: u32,
    // Tiles of WG keys: ceil(rows / WG).
    tiles: u32,
    // 1: the input indices are 0, 1, 2, ... (not read): the first pass.
    identity: u32,
}

@group(0) @binding(0) var<uniform> params: PassParams;
@group(0) @binding(1) var<storage, read> keys: array<u32>;
