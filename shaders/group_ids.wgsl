// Group-by, stage 3: every row's group number (the rank of its group's first row among all
// first rows), and every group's first row.
#import dispatch

struct IdsParams {
    rows: u32,
    unused0: u32,
    unused1: u32,
    unused2: u32,
}

@group(0) @binding(0) var<uniform> params: IdsParams;
@group(0) @binding(1) var<storage, read> slot_of_row: array<u32>;
@group(0) @binding(2) var<storage, read> first: array<u32>;
@group(0) @binding(3) var<storage, read> is_first: array<u32>;
@group(0) @binding(4) var<storage, read> word_offsets: array<u32>;
@group(0) @binding(5) var<storage, read_write> group_of_row: array<u32>;
@group(0) @binding(6) var<storage, read_write> first_of_group: array<u32>;

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
    let r = params.rows - first[slot_of_row[row]];
    let w = r >> 5u;
    let below = is_first[w] & ((1u << (r & 31u)) - 1u);
    let g = word_offsets[w] + countOneBits(below);
    group_of_row[row] = g;
    if (r == row) {
        first_of_group[g] = row;
    }
}
