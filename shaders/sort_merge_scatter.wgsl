// The merge of sorted chunks on the GPU (src/gpu/sort.rs, `merge_on_gpu`), step 3: each
// of a sorted chunk's first `len` rows goes to its place in the merged order (its place
// in its chunk plus the keys of other chunks before it, sort_merge_rank.wgsl), as a
// global row index, where that place falls in the output chunk [start, start + count).
#import dispatch

struct MergeScatterParams {
    len: u32,
    // The chunk's first row in the batch.
    base: u32,
    start: u32,
    count: u32,
}

@group(0) @binding(0) var<uniform> params: MergeScatterParams;
@group(0) @binding(1) var<storage, read> index: array<u32>;
@group(0) @binding(2) var<storage, read> pos: array<u32>;
@group(0) @binding(3) var<storage, read_write> order: array<u32>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let p = flat_workgroup(wg, nwg) * WG + lid;
    if (p >= params.len) {
        return;
    }
    let q = p + pos[p];
    if (q >= params.start && q - params.start < params.count) {
        order[q - params.start] = params.base + index[p];
    }
}
