// Compaction, stage 2 of 4 (scan): exclusive prefix sum of the block counts, in place, by
// one workgroup (each invocation sums a run of blocks, the workgroup scans the runs); the
// chunk's total goes to totals[slot]. No workgroup waits on another.
#import dispatch
#import scan

struct ScanParams {
    count: u32,
    slot: u32,
    unused0: u32,
    unused1: u32,
}

@group(0) @binding(0) var<uniform> params: ScanParams;
@group(0) @binding(1) var<storage, read_write> values: array<u32>;
@group(0) @binding(2) var<storage, read_write> totals: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
    let per = (params.count + WG - 1u) / WG;
    let begin = min(lid * per, params.count);
    let end = min(begin + per, params.count);
    var sum = 0u;
    for (var i = begin; i < end; i++) {
        sum += values[i];
    }
    var running = workgroup_exclusive_scan(lid, sum);
    for (var i = begin; i < end; i++) {
        let v = values[i];
        values[i] = running;
        running += v;
    }
    if (lid == WG - 1u) {
        totals[params.slot] = workgroup_total();
    }
}
