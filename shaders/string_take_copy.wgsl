// String gather, the copy: one invocation per word of the output buffer (rows + 1 offsets,
// then the bytes, then a spare word). An offset word is copied from `offsets` (by the
// first input chunk's dispatch); a bytes word finds its first row by binary search over
// the offsets, then takes each of its four bytes from the input row it belongs to, when
// that row's index falls in this input chunk, OR-ing them in (one dispatch per input
// chunk, one invocation per word, so no two invocations write one word at once).
// `src`: the input chunk (offsets, then bytes); params.flags bit 0: write the output's
// offsets (the first input chunk's dispatch).
#import dispatch
#import take

@group(0) @binding(3) var<storage, read> offsets: array<u32>;
@group(0) @binding(4) var<storage, read_write> dst: array<u32>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let t = flat_workgroup(wg, nwg) * WG + lid;
    let n = params.rows;
    if (t <= n) {
        if ((params.flags & 1u) != 0u) {
            dst[t] = offsets[t];
        }
        return;
    }
    let total = offsets[n];
    let first = (t - n - 1u) * 4u;
    if (first >= total) {
        return;
    }
    // The row holding byte `first`: the last o with offsets[o] <= first.
    var lo = 0u;
    var hi = n;
    while (hi - lo > 1u) {
        let mid = (lo + hi) / 2u;
        if (offsets[mid] <= first) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    var o = lo;
    let bytes_at = (params.in_rows + 1u) * 4u;
    var acc = 0u;
    for (var j = 0u; j < 4u; j++) {
        let b = first + j;
        if (b >= total) {
            break;
        }
        while (offsets[o + 1u] <= b) {
            o += 1u;
        }
        let l = chunk_row(o);
        if (l != OTHER_CHUNK) {
            let at = bytes_at + src[l] + (b - offsets[o]);
            let byte = (src[at >> 2u] >> ((at & 3u) * 8u)) & 0xffu;
            acc |= byte << (j * 8u);
        }
    }
    if (acc != 0u) {
        dst[t] |= acc;
    }
}
