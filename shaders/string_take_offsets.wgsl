// String gather, stages 2 and 4 of 4 (around the scan of the block sums, stage 3): the
// exclusive prefix sum of the output lengths, which is the output's offsets (`count` = rows + 1 values, the
// last length 0, so the last offset is the total). Mode 0 sums each block of WG values;
// mode 1, after the block sums are scanned, writes every offset.
#import dispatch
#import scan

struct OffsetsParams {
    count: u32,
    mode: u32,
    unused0: u32,
    unused1: u32,
}

@group(0) @binding(0) var<uniform> params: OffsetsParams;
@group(0) @binding(1) var<storage, read> lengths: array<u32>;
@group(0) @binding(2) var<storage, read_write> block_sums: array<u32>;
@group(0) @binding(3) var<storage, read_write> offsets: array<u32>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let block = flat_workgroup(wg, nwg);
    let i = block * WG + lid;
    var value = 0u;
    if (i < params.count) {
        value = lengths[i];
    }
    let before = workgroup_exclusive_scan(lid, value);
    if (params.mode == 0u) {
        if (lid == 0u && block * WG < params.count) {
            block_sums[block] = workgroup_total();
        }
    } else if (i < params.count) {
        offsets[i] = block_sums[block] + before;
    }
}
