// Compaction, stage 1 of 4 (reduce): the kept rows in each block of WG mask words.
#import dispatch
#import mask
#import scan

@group(0) @binding(3) var<storage, read_write> block_counts: array<u32>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let block = flat_workgroup(wg, nwg);
    let w = block * WG + lid;
    var count = 0u;
    if (w < params.words) {
        count = countOneBits(keep_word(w));
    }
    workgroup_exclusive_scan(lid, count);
    if (lid == 0u && block * WG < params.words) {
        block_counts[block] = workgroup_total();
    }
}
