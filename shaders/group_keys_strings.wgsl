// A group key of one string column (spliced into group_insert.wgsl and
// group_fused.wgsl, its validity at binding KEY_VALID): rows are equal when
// both are null, or both valid with the same length and bytes (arrow's row-format
// equality). The strings lie in the GPU layout (common/strings.wgsl); `src_valid` is read
// only when `params.words` says the chunk has a validity bitmap.
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(${KEY_VALID}) var<storage, read> src_valid: array<u32>;

fn key_valid(row: u32) -> bool {
    return params.words == 0u || ((src_valid[row >> 5u] >> (row & 31u)) & 1u) != 0u;
}

// The word of bytes [k, k + 4) of the string at byte position `at` of length `len`, with
// the bytes past its end cleared.
fn key_word(at: u32, len: u32, k: u32) -> u32 {
    let p = at + k;
    return str_funnel(src[p >> 2u], src[(p >> 2u) + 1u], p) & str_tail_mask(len - k);
}

fn hash_row(row: u32) -> u32 {
    if (!key_valid(row)) {
        return mix(0x2545f491u);
    }
    let start = src[row];
    let len = src[row + 1u] - start;
    let at = (params.rows + 1u) * 4u + start;
    var h = mix(0x9e3779b9u ^ len);
    for (var k = 0u; k < len; k += 4u) {
        h = mix(h ^ key_word(at, len, k)) + k;
    }
    return mix(h);
}

fn same_keys(a: u32, b: u32) -> bool {
    let valid = key_valid(a);
    if (valid != key_valid(b)) {
        return false;
    }
    if (!valid) {
        return true;
    }
    let start_a = src[a];
    let start_b = src[b];
    let len = src[a + 1u] - start_a;
    if (src[b + 1u] - start_b != len) {
        return false;
    }
    let at_a = (params.rows + 1u) * 4u + start_a;
    let at_b = (params.rows + 1u) * 4u + start_b;
    for (var k = 0u; k < len; k += 4u) {
        if (key_word(at_a, len, k) != key_word(at_b, len, k)) {
            return false;
        }
    }
    return true;
}
