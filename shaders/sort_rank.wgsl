// Top-k, after the select: a few candidates (at most a thousand or so) sorted in one
// dispatch instead of a radix sort's passes. Each thread ranks one candidate among all of
// them, by its key words (up to four, most significant first) and then its place among
// the candidates (their row order), so the order is stable; it writes its row in the
// chunk at that rank.
#import dispatch

struct RankParams {
    // Candidates.
    rows: u32,
    // Key words bound (0 to 4): w0 is the most significant.
    words: u32,
    unused0: u32,
    unused1: u32,
}

@group(0) @binding(0) var<uniform> params: RankParams;
@group(0) @binding(1) var<storage, read> w0: array<u32>;
@group(0) @binding(2) var<storage, read> w1: array<u32>;
@group(0) @binding(3) var<storage, read> w2: array<u32>;
@group(0) @binding(4) var<storage, read> w3: array<u32>;
// Each candidate's row in the chunk.
@group(0) @binding(5) var<storage, read> chosen: array<u32>;
@group(0) @binding(6) var<storage, read_write> index: array<u32>;

fn word(k: u32, i: u32) -> u32 {
    switch k {
        case 0u: { return w0[i]; }
        case 1u: { return w1[i]; }
        case 2u: { return w2[i]; }
        default: { return w3[i]; }
    }
}

// Whether candidate a comes before candidate b.
fn before(a: u32, b: u32) -> bool {
    for (var k = 0u; k < params.words; k++) {
        let x = word(k, a);
        let y = word(k, b);
        if (x != y) {
            return x < y;
        }
    }
    return a < b;
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = flat_workgroup(wg, nwg) * WG + lid;
    if (i >= params.rows) {
        return;
    }
    var rank = 0u;
    for (var j = 0u; j < params.rows; j++) {
        if (before(j, i)) {
            rank += 1u;
        }
    }
    index[rank] = chosen[i];
}
