// Group-by, stage 2: a bitmap of the rows that are their group's first row, so that the
// compaction's prefix sum over it numbers the groups in order of first appearance.
#import dispatch

struct FirstParams {
    rows: u32,
    capacity: u32,
    unused0: u32,
    unused1: u32,
}

@group(0) @binding(0) var<uniform> params: FirstParams;
@group(0) @binding(1) var<storage, read> first: array<u32>;
@group(0) @binding(2) var<storage, read_write> is_first: array<atomic<u32>>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let s = flat_workgroup(wg, nwg) * WG + lid;
    if (s >= params.capacity) {
        return;
    }
    let f = first[s];
    if (f != 0u) {
        let row = params.rows - f;
        atomicOr(&is_first[row >> 5u], 1u << (row & 31u));
    }
}
