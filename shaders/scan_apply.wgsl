// Multi-level exclusive scan, down-sweep: each block of SCAN_BLOCK values replaced, in
// place, by its exclusive prefix sums plus the block's offset (`offsets[block]`, the
// scanned sums of the level below; none at the top level, one block, which writes the
// total to `totals[slot]`). The block goes through workgroup memory so that global reads
// and writes are coalesced while each invocation sums a contiguous run.
#import dispatch
#import scan

@group(0) @binding(0) var<uniform> params: ScanParams;
@group(0) @binding(1) var<storage, read_write> values: array<u32>;
@group(0) @binding(2) var<storage, read> offsets: array<u32>;
@group(0) @binding(3) var<storage, read_write> totals: array<u32>;

var<workgroup> block_values: array<u32, SCAN_BLOCK>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let block = flat_workgroup(wg, nwg);
    let base = block * SCAN_BLOCK;
    for (var k = 0u; k < SCAN_PER; k++) {
        let i = base + k * WG + lid;
        var v = 0u;
        if (i < params.count) {
            v = values[i];
        }
        block_values[k * WG + lid] = v;
    }
    workgroupBarrier();
    let run = lid * SCAN_PER;
    var sum = 0u;
    for (var k = 0u; k < SCAN_PER; k++) {
        sum += block_values[run + k];
    }
    var running = workgroup_exclusive_scan(lid, sum);
    if (params.has_offsets != 0u) {
        running += offsets[block];
    }
    for (var k = 0u; k < SCAN_PER; k++) {
        let v = block_values[run + k];
        block_values[run + k] = running;
        running += v;
    }
    workgroupBarrier();
    for (var k = 0u; k < SCAN_PER; k++) {
        let i = base + k * WG + lid;
        if (i < params.count) {
            values[i] = block_values[k * WG + lid];
        }
    }
    if (params.has_offsets == 0u && lid == WG - 1u) {
        totals[params.slot] = workgroup_total();
    }
}
