// Group keys as key words (spliced into group_insert.wgsl and group_fused.wgsl): `words` u32 per row.
@group(0) @binding(1) var<storage, read> keys: array<u32>;

fn hash_row(row: u32) -> u32 {
    var h = 0x9e3779b9u;
    for (var w = 0u; w < params.words; w++) {
        h = mix(h ^ keys[row * params.words + w]) + w;
    }
    return mix(h);
}

fn same_keys(a: u32, b: u32) -> bool {
    for (var w = 0u; w < params.words; w++) {
        if (keys[a * params.words + w] != keys[b * params.words + w]) {
            return false;
        }
    }
    return true;
}
