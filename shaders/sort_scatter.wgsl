// Sort, stage 4 of a radix pass (scatter): each key and its row index move to
// offsets[digit * tiles + tile] plus the number of keys before it in its tile with the same
// digit, so that equal digits keep their order (the sort is stable). The ranks come from
// one workgroup scan of one-hot digit counts packed four 8-bit lanes to a word.
#import dispatch
#import radix

@group(0) @binding(2) var<storage, read> index: array<u32>;
@group(0) @binding(3) var<storage, read> offsets: array<u32>;
@group(0) @binding(4) var<storage, read_write> keys_out: array<u32>;
@group(0) @binding(5) var<storage, read_write> index_out: array<u32>;

var<workgroup> sums: array<vec4<u32>, WG>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let tile = flat_workgroup(wg, nwg);
    let i = tile * WG + lid;
    let live = i < params.rows;
    var key = 0u;
    var digit = 0u;
    var mine = vec4<u32>(0u);
    if (live) {
        key = keys[i];
        digit = (key >> params.shift) & 15u;
        mine[digit >> 2u] = 1u << ((digit & 3u) * 8u);
    }
    // Inclusive Hillis-Steele scan; lanes may carry into each other on the way, but the
    // exclusive result (inclusive minus own) has every lane below 256, so it comes out exact
    // in modular arithmetic.
    sums[lid] = mine;
    workgroupBarrier();
    for (var d = 1u; d < WG; d <<= 1u) {
        var add = vec4<u32>(0u);
        if (lid >= d) {
            add = sums[lid - d];
        }
        workgroupBarrier();
        sums[lid] += add;
        workgroupBarrier();
    }
    if (live) {
        let before = sums[lid] - mine;
        let rank = (before[digit >> 2u] >> ((digit & 3u) * 8u)) & 0xffu;
        let dst = offsets[digit * params.tiles + tile] + rank;
        keys_out[dst] = key;
        if (params.identity != 0u) {
            index_out[dst] = i;
        } else {
            index_out[dst] = index[i];
        }
    }
}
