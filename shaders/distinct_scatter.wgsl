// Distinct, stage 3: the kept rows' indices in input order. Runs after the compaction's
// stages 1 to 3 over the bitmap of kept rows (`word_offsets`: how many kept rows come
// before each mask word), as `compact_scatter` does for a column's values.
#import dispatch
#import mask

@group(0) @binding(3) var<storage, read> word_offsets: array<u32>;
@group(0) @binding(4) var<storage, read_write> indices: array<u32>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = flat_workgroup(wg, nwg) * WG + lid;
    if (row >= params.rows) {
        return;
    }
    let w = row >> 5u;
    let keep = keep_word(w);
    let bit = row & 31u;
    if (((keep >> bit) & 1u) == 0u) {
        return;
    }
    indices[word_offsets[w] + countOneBits(keep & ((1u << bit) - 1u))] = row;
}
