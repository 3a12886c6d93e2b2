// Compaction, stage 4 of 4: each kept row's value goes to its output position. ${STORE}
// moves one element; packed layouts (bits, 8- and 16-bit) OR into zeroed words atomically,
// since neighbouring rows share a word.
#import dispatch
#import mask

@group(0) @binding(3) var<storage, read> word_offsets: array<u32>;
@group(0) @binding(4) var<storage, read> src: ${SRC};
@group(0) @binding(5) var<storage, read_write> dst: ${DST};

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
    let o = word_offsets[w] + countOneBits(keep & ((1u << bit) - 1u));
    ${STORE}
}
