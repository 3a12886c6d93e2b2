// The inputs of a gather by index (take.wgsl and the string gather's stages): output row o
// takes global input row idx[o]. An input of several chunks takes one dispatch per chunk,
// each handling the output rows whose index falls in it ([base, base + in_rows)).
struct TakeParams {
    // Output rows.
    rows: u32,
    // The input chunk's first row (global) and its row count.
    base: u32,
    in_rows: u32,
    // The stage's own flags (see each stage).
    flags: u32,
}

@group(0) @binding(0) var<uniform> params: TakeParams;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read> idx: array<u32>;

// Not a row of this chunk (a chunk has fewer than 2^32 - 1 rows).
const OTHER_CHUNK: u32 = 0xffffffffu;

// The row of this input chunk that output row `o` takes, or OTHER_CHUNK.
fn chunk_row(o: u32) -> u32 {
    let g = idx[o];
    if (g >= params.base && g - params.base < params.in_rows) {
        return g - params.base;
    }
    return OTHER_CHUNK;
}
