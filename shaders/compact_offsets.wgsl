// Compaction, stage 3 of 4: the output position of each mask word's first kept row.
#import dispatch
#import mask
#import scan

@group(0) @binding(3) var<storage, read> block_offsets: array<u32>;
@group(0) @binding(4) var<storage, read_write> word_offsets: array<u32>;

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
    let before = workgroup_exclusive_scan(lid, count);
    if (w < params.words) {
        word_offsets[w] = block_offsets[block] + before;
    }
}
