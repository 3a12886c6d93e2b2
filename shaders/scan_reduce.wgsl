// Multi-level exclusive scan, up-sweep: the sum of each block of SCAN_BLOCK values
// (`sums[block]`), read coalesced. The block sums are then scanned the same way, a level
// up, and `scan_apply` writes each block's prefix sums from its block's offset; every level
// is one parallel dispatch, and no workgroup waits on another.
#import dispatch
#import scan

@group(0) @binding(0) var<uniform> params: ScanParams;
@group(0) @binding(1) var<storage, read> values: array<u32>;
@group(0) @binding(2) var<storage, read_write> sums: array<u32>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let block = flat_workgroup(wg, nwg);
    let base = block * SCAN_BLOCK;
    var sum = 0u;
    for (var k = 0u; k < SCAN_PER; k++) {
        let i = base + k * WG + lid;
        if (i < params.count) {
            sum += values[i];
        }
    }
    workgroup_exclusive_scan(lid, sum);
    if (lid == 0u && base < params.count) {
        sums[block] = workgroup_total();
    }
}
