// Sort, stage 4 of a radix pass (scatter): each key and its row index move to
// offsets[digit * tiles + tile] plus its rank: the number of keys before it in its tile
// with the same digit, so that equal digits keep their order (the sort is stable).
//
// The ranks come from bitmaps in workgroup memory: for each value of the digit's high four
// bits, and of its low four bits, one bit per key of the tile (16 values x 16 words of a
// 512-key tile, each). The keys of digit d are the AND of d's high-half and low-half maps,
// so a key's rank is the population count of that AND over the words before its own, and
// the bits below it in its own word. Two barriers, no workgroup scan and no subgroup
// operations: every adapter ranks the same way.
#import dispatch
#import radix

@group(0) @binding(2) var<storage, read> index: array<u32>;
@group(0) @binding(3) var<storage, read> offsets: array<u32>;
@group(0) @binding(4) var<storage, read_write> keys_out: array<u32>;
@group(0) @binding(5) var<storage, read_write> index_out: array<u32>;

// Words of one bitmap over the tile.
const MAP_WORDS: u32 = TILE / 32u;

// high[h * MAP_WORDS + w]: the tile's keys whose digit's high half is h; low likewise.
var<workgroup> high: array<atomic<u32>, 16u * MAP_WORDS>;
var<workgroup> low: array<atomic<u32>, 16u * MAP_WORDS>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let tile = flat_workgroup(wg, nwg);
    for (var w = lid; w < 16u * MAP_WORDS; w += WG) {
        atomicStore(&high[w], 0u);
        atomicStore(&low[w], 0u);
    }
    workgroupBarrier();
    var key: array<u32, 2>;
    var live: array<bool, 2>;
    for (var k = 0u; k < TILE / WG; k++) {
        let p = k * WG + lid;
        let i = tile * TILE + p;
        live[k] = i < params.rows;
        if (live[k]) {
            key[k] = keys[i];
            let d = digit_of(key[k]);
            let bit = 1u << (p & 31u);
            atomicOr(&high[(d >> 4u) * MAP_WORDS + (p >> 5u)], bit);
            atomicOr(&low[(d & 15u) * MAP_WORDS + (p >> 5u)], bit);
        }
    }
    workgroupBarrier();
    for (var k = 0u; k < TILE / WG; k++) {
        if (!live[k]) {
            continue;
        }
        let p = k * WG + lid;
        let i = tile * TILE + p;
        let d = digit_of(key[k]);
        let h = (d >> 4u) * MAP_WORDS;
        let l = (d & 15u) * MAP_WORDS;
        let word = p >> 5u;
        var rank = countOneBits(
            atomicLoad(&high[h + word]) & atomicLoad(&low[l + word]) & ((1u << (p & 31u)) - 1u)
        );
        for (var w = 0u; w < word; w++) {
            rank += countOneBits(atomicLoad(&high[h + w]) & atomicLoad(&low[l + w]));
        }
        let dst = offsets[d * params.tiles + tile] + rank;
        keys_out[dst] = key[k];
        if (params.identity != 0u) {
            index_out[dst] = i;
        } else {
            index_out[dst] = index[i];
        }
    }
}
