// The merge of sorted chunks on the GPU (src/gpu/sort.rs, `merge_on_gpu`), step 1: a
// sorted chunk's key words in its order, row p's words at keys[p * words + w], from the
// words by row: word `word` of each of the first `len` rows of the order.
#import dispatch

struct MergeKeysParams {
    len: u32,
    words: u32,
    word: u32,
    unused: u32,
}

@group(0) @binding(0) var<uniform> params: MergeKeysParams;
@group(0) @binding(1) var<storage, read> index: array<u32>;
// One key word of every row of the chunk, by row.
@group(0) @binding(2) var<storage, read> by_row: array<u32>;
@group(0) @binding(3) var<storage, read_write> keys: array<u32>;

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
    keys[p * params.words + params.word] = by_row[index[p]];
}
