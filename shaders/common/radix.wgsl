// The parameters of one radix pass (histogram and scatter stages of the sort), and its
// shape: 8-bit digits (RADIX values), tiles of TILE keys (two per invocation; RADIX must
// equal WG: one invocation per digit value).
const RADIX: u32 = 256u;
const TILE: u32 = 2u * WG;

struct PassParams {
    rows: u32,
    // The digit's lowest bit.
    shift: u32,
    // Tiles of TILE keys: ceil(rows / TILE).
    tiles: u32,
    // 1: the input indices are 0, 1, 2, ... (not read): the first pass.
    identity: u32,
}

@group(0) @binding(0) var<uniform> params: PassParams;
@group(0) @binding(1) var<storage, read> keys: array<u32>;

fn digit_of(key: u32) -> u32 {
    return (key >> params.shift) & (RADIX - 1u);
}
