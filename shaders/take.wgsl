// Take (gather) rows of one column chunk by index: output word w gets, for each of its rows
// r whose index idx[r] falls in this input chunk ([base, base + in_rows)), that row's value.
// One invocation per output word, so no two write the same word; an output built from
// several input chunks takes one dispatch per input chunk, each OR-ing in its rows.
// params.flags: bits 0-6 the value width in bits (1, 8, 16, 32, 64); bit 8: the input is a
// validity bitmap that is absent (every row valid).
#import dispatch
#import take
#import packed

@group(0) @binding(3) var<storage, read_write> dst: array<u32>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let w = flat_workgroup(wg, nwg) * WG + lid;
    let width = params.flags & 127u;
    let all_valid = (params.flags & 256u) != 0u;
    if (width == 64u) {
        let r = w >> 1u;
        if (r >= params.rows) {
            return;
        }
        let l = chunk_row(r);
        if (l != OTHER_CHUNK) {
            dst[w] = src[l * 2u + (w & 1u)];
        }
        return;
    }
    let per = 32u / width;
    let first = w * per;
    if (first >= params.rows) {
        return;
    }
    let mask = select((1u << width) - 1u, 0xffffffffu, width == 32u);
    var acc = 0u;
    var hit = false;
    for (var j = 0u; j < per; j++) {
        let r = first + j;
        if (r >= params.rows) {
            break;
        }
        let l = chunk_row(r);
        if (l != OTHER_CHUNK) {
            var v = mask;
            if (!all_valid) {
                let at = packed_at(l, width);
                v = (src[at.x] >> at.y) & mask;
            }
            acc |= v << (j * width);
            hit = true;
        }
    }
    if (hit) {
        dst[w] |= acc;
    }
}
