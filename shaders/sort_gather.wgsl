// Sort, between keys' words: the next word of each row in the current order,
// out[i] = words[index[i]], so that the next radix passes sort it carrying the indices.
#import dispatch

struct GatherParams {
    rows: u32,
    unused0: u32,
    unused1: u32,
    unused2: u32,
}

@group(0) @binding(0) var<uniform> params: GatherParams;
@group(0) @binding(1) var<storage, read> words: array<u32>;
@group(0) @binding(2) var<storage, read> index: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = flat_workgroup(wg, nwg) * WG + lid;
    if (i < params.rows) {
        out[i] = words[index[i]];
    }
}
