// Sort, stage 2 of a radix pass (histogram): how many of each tile's keys have each value of
// the 8-bit digit at `shift`. counts[digit * tiles + tile], digit-major, so that one
// exclusive scan over `counts` gives each (digit, tile) its first output position.
#import dispatch
#import radix

@group(0) @binding(2) var<storage, read_write> counts: array<u32>;

var<workgroup> hist: array<atomic<u32>, RADIX>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let tile = flat_workgroup(wg, nwg);
    atomicStore(&hist[lid], 0u);
    workgroupBarrier();
    for (var k = 0u; k < TILE / WG; k++) {
        let i = tile * TILE + k * WG + lid;
        if (i < params.rows) {
            atomicAdd(&hist[digit_of(keys[i])], 1u);
        }
    }
    workgroupBarrier();
    if (tile < params.tiles) {
        counts[lid * params.tiles + tile] = atomicLoad(&hist[lid]);
    }
}
