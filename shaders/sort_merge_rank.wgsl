// The merge of sorted chunks on the GPU (src/gpu/sort.rs, `merge_on_gpu`), step 2: for
// each of a sorted chunk's first `len` keys (sort_merge_keys.wgsl), how many keys of
// another sorted chunk come before it in the merged order, added to pos[p]: the other's
// keys that are smaller, and the equal ones too when the other chunk is an earlier one
// (a stable merge: among equal keys, earlier rows first). The other chunk is sorted, so
// the keys that come before are a prefix of it, found by a binary search.
#import dispatch

struct MergeRankParams {
    len: u32,
    // Keys of the other chunk.
    other: u32,
    words: u32,
    // 1 when the other chunk comes before this one in the batch.
    earlier: u32,
}

@group(0) @binding(0) var<uniform> params: MergeRankParams;
@group(0) @binding(1) var<storage, read> keys: array<u32>;
@group(0) @binding(2) var<storage, read> others: array<u32>;
@group(0) @binding(3) var<storage, read_write> pos: array<u32>;

// Whether the other chunk's key q comes before this chunk's key p.
fn before(q: u32, p: u32) -> bool {
    for (var w = 0u; w < params.words; w++) {
        let a = others[q * params.words + w];
        let b = keys[p * params.words + w];
        if (a != b) {
            return a < b;
        }
    }
    return params.earlier == 1u;
}

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
    var lo = 0u;
    var hi = params.other;
    while (lo < hi) {
        let mid = lo + (hi - lo) / 2u;
        if (before(mid, p)) {
            lo = mid + 1u;
        } else {
            hi = mid;
        }
    }
    pos[p] += lo;
}
