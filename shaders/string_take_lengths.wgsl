// String gather, stage 1 of 3 (lengths): each output row's string length, for the rows
// whose index falls in this input chunk ([base, base + in_rows)); one dispatch per input
// chunk, each writing its own rows of `lengths` (zeroed, rows + 1 words; the scan then
// turns them into the output's offsets, in place).
// `src`: the input chunk's offsets.
#import dispatch
#import take

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
    let l = chunk_row(o);
    if (l != OTHER_CHUNK) {
        lengths[o] = src[l + 1u] - src[l];
    }
}
