// What the hash tables of group-by and distinct share (group_insert.wgsl,
// group_fused.wgsl): their parameters, which the KEYS sources read (`rows`, `words`), and
// the 32-bit finalizer they hash key words with.

struct TableParams {
    rows: u32,
    // Key words per row (keys[row * words + w]); for a string key, whether it has a
    // validity bitmap.
    words: u32,
    // Slots, a power of two.
    capacity: u32,
    // Claimed slots beyond this set the overflow flag.
    limit: u32,
}

@group(0) @binding(0) var<uniform> params: TableParams;

fn mix(h: u32) -> u32 {
    var x = h;
    x ^= x >> 16u;
    x *= 0x7feb352du;
    x ^= x >> 15u;
    x *= 0x846ca68bu;
    x ^= x >> 16u;
    return x;
}
