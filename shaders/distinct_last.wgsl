// Distinct, stage 1 (keep last and keep none): every group's last row, the largest row of
// the group (atomicMax into a zeroed buffer: every group has a row, and rows start at 0).
#import dispatch

struct LastParams {
    rows: u32,
    unused0: u32,
    unused1: u32,
    unused2: u32,
}

@group(0) @binding(0) var<uniform> params: LastParams;
@group(0) @binding(1) var<storage, read> group_of_row: array<u32>;
@group(0) @binding(2) var<storage, read_write> last_of_group: array<atomic<u32>>;

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
    atomicMax(&last_of_group[group_of_row[row]], row);
}
