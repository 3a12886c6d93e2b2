// The per-row inputs of a group-by aggregate stage: the value column, its validity bitmap
// (bound to anything when absent), every row's group, and the groups' atomic state.
@group(0) @binding(1) var<storage, read> values: array<u32>;
@group(0) @binding(2) var<storage, read> validity: array<u32>;
@group(0) @binding(3) var<storage, read> group_of_row: array<u32>;
@group(0) @binding(4) var<storage, read_write> state: array<atomic<u32>>;

// Whether `row` holds a value: its validity bit, or true without a bitmap.
fn row_valid(row: u32, has_validity: bool) -> bool {
    return !has_validity || ((validity[row >> 5u] >> (row & 31u)) & 1u) != 0u;
}
