// String gather, stage 1 of 4 (lengths): each output row's string length, for the rows
// whose index falls in this input chunk ([base, base + in_rows)); one dispatch per input
// chunk, each writing its own rows of `lengths` (zeroed, rows + 1 words).
#import dispatch

struct TakeParams {
    // Output rows.
    rows: u32,
    // The input chunk's first row (global) and its row count.
    base: u32,
    in_rows: u32,
    // Bit 0 (copy stage): write the output's offsets (the first input chunk's dispatch).
    flags: u32,
}

@group(0) @binding(0) var<uniform> params: TakeParams;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read> idx: array<u32>;
@group(0) @binding(3) var<storage, read_write> lengths: array<u32>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let o = flat_workgroup(wg, nwg) * WG + lid;
    if (o >= params.rows) {
        return;
    }
    let g = idx[o];
    if (g >= params.base && g - params.base < params.in_rows) {
        let l = g - params.base;
        lengths[o] = src[l + 1u] - src[l];
    }
}
