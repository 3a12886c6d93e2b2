// The keep-mask of a compaction: bit r of `mask` (and of `mask_valid`, when the mask has
// nulls) says whether row r is kept; a null mask bit drops the row, as arrow's `filter`.
struct MaskParams {
    rows: u32,
    words: u32,
    has_valid: u32,
    unused: u32,
}

@group(0) @binding(0) var<uniform> params: MaskParams;
@group(0) @binding(1) var<storage, read> mask: array<u32>;
@group(0) @binding(2) var<storage, read> mask_valid: array<u32>;

fn keep_word(w: u32) -> u32 {
    var keep = mask[w];
    if (params.has_valid != 0u) {
        keep &= mask_valid[w];
    }
    // Bits past the last row may be anything in an uploaded bitmap.
    let tail = params.rows - w * 32u;
    if (tail < 32u) {
        keep &= (1u << tail) - 1u;
    }
    return keep;
}
