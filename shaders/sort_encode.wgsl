// Sort, stage 1 (encode): one 32-bit word of a key's order-preserving encoding per row, as
// arrow's row format orders keys: a null word (nulls first or last), then the value's words
// (signed: sign bit flipped; floats: IEEE total order; descending: all bits inverted).
// Unsigned comparison of the words, most significant first, orders the rows. Each
// workgroup also folds its words into an AND and an OR, so that the host can skip the
// digits that are equal in every row.
#import dispatch

struct EncodeParams {
    rows: u32,
    // Bits 0-3: the value's kind (KIND_*); bit 4: the high word of a 64-bit value;
    // bit 5: the null word instead of the value; bit 6: descending; bit 7: nulls first;
    // bit 8: the column has a validity bitmap.
    flags: u32,
    // Where this word's AND and OR go in `bounds` (slot * 2, slot * 2 + 1).
    slot: u32,
    // Where row r's word goes: words[r * stride + offset], stride in the low 16 bits and
    // offset in the high 16 (the sort writes one buffer per word: stride 1; group-by
    // interleaves a row's words).
    placement: u32,
}

const KIND_BOOL: u32 = 0u;
const KIND_I8: u32 = 1u;
const KIND_I16: u32 = 2u;
const KIND_I32: u32 = 3u;
const KIND_U8: u32 = 4u;
const KIND_U16: u32 = 5u;
const KIND_U32: u32 = 6u;
const KIND_F32: u32 = 7u;
const KIND_I64: u32 = 8u;
const KIND_U64: u32 = 9u;
const KIND_F64: u32 = 10u;

@group(0) @binding(0) var<uniform> params: EncodeParams;
@group(0) @binding(1) var<storage, read> data: array<u32>;
@group(0) @binding(2) var<storage, read> validity: array<u32>;
@group(0) @binding(3) var<storage, read_write> words: array<u32>;
@group(0) @binding(4) var<storage, read_write> bounds: array<atomic<u32>>;

var<workgroup> wg_and: atomic<u32>;
var<workgroup> wg_or: atomic<u32>;

fn value_word(row: u32, kind: u32, high: bool) -> u32 {
    switch kind {
        case 0u: { // KIND_BOOL
            return (data[row >> 5u] >> (row & 31u)) & 1u;
        }
        case 1u: { // KIND_I8
            return ((data[row >> 2u] >> ((row & 3u) * 8u)) & 0xffu) ^ 0x80u;
        }
        case 2u: { // KIND_I16
            return ((data[row >> 1u] >> ((row & 1u) * 16u)) & 0xffffu) ^ 0x8000u;
        }
        case 3u: { // KIND_I32
            return data[row] ^ 0x80000000u;
        }
        case 4u: { // KIND_U8
            return (data[row >> 2u] >> ((row & 3u) * 8u)) & 0xffu;
        }
        case 5u: { // KIND_U16
            return (data[row >> 1u] >> ((row & 1u) * 16u)) & 0xffffu;
        }
        case 6u: { // KIND_U32
            return data[row];
        }
        case 7u: { // KIND_F32
            let b = data[row];
            return select(b ^ 0x80000000u, ~b, (b & 0x80000000u) != 0u);
        }
        case 8u: { // KIND_I64
            if (high) {
                return data[row * 2u + 1u] ^ 0x80000000u;
            }
            return data[row * 2u];
        }
        case 9u: { // KIND_U64
            return data[row * 2u + select(0u, 1u, high)];
        }
        default: { // KIND_F64
            let negative = (data[row * 2u + 1u] & 0x80000000u) != 0u;
            let w = data[row * 2u + select(0u, 1u, high)];
            if (negative) {
                return ~w;
            }
            return select(w, w ^ 0x80000000u, high);
        }
    }
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    if (lid == 0u) {
        atomicStore(&wg_and, 0xffffffffu);
        atomicStore(&wg_or, 0u);
    }
    workgroupBarrier();
    let row = flat_workgroup(wg, nwg) * WG + lid;
    let flags = params.flags;
    if (row < params.rows) {
        var valid = true;
        if ((flags & 256u) != 0u) {
            valid = ((validity[row >> 5u] >> (row & 31u)) & 1u) != 0u;
        }
        let nulls_first = (flags & 128u) != 0u;
        var w = 0u;
        if ((flags & 32u) != 0u) {
            // The null word: the side nulls go to gets 0.
            w = select(select(0u, 1u, valid), select(1u, 0u, valid), !nulls_first);
        } else if (valid) {
            w = value_word(row, flags & 15u, (flags & 16u) != 0u);
            if ((flags & 64u) != 0u) {
                w = ~w;
            }
        }
        words[row * (params.placement & 0xffffu) + (params.placement >> 16u)] = w;
        atomicAnd(&wg_and, w);
        atomicOr(&wg_or, w);
    }
    workgroupBarrier();
    if (lid == 0u) {
        let a = atomicLoad(&wg_and);
        let o = atomicLoad(&wg_or);
        if (a != 0xffffffffu) {
            atomicAnd(&bounds[params.slot * 2u], a);
        }
        if (o != 0u) {
            atomicOr(&bounds[params.slot * 2u + 1u], o);
        }
    }
}
