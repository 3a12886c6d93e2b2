// Exclusive prefix sum across one workgroup (Hillis-Steele in workgroup memory), and the
// parameters and block size of the multi-level scan (`scan_reduce`, `scan_apply`). Every
// invocation of the workgroup must call the scan (it has barriers).
var<workgroup> scan_sums: array<u32, WG>;

// Values each invocation sums in the multi-level scan, and the values of one block.
const SCAN_PER: u32 = 8u;
const SCAN_BLOCK: u32 = WG * SCAN_PER;

struct ScanParams {
    count: u32,
    // Where the top level writes the total.
    slot: u32,
    // 1: `offsets` holds each block's offset (a lower level of a multi-level scan).
    has_offsets: u32,
    unused: u32,
}

fn workgroup_exclusive_scan(lid: u32, value: u32) -> u32 {
    scan_sums[lid] = value;
    workgroupBarrier();
    for (var d = 1u; d < WG; d <<= 1u) {
        var add = 0u;
        if (lid >= d) {
            add = scan_sums[lid - d];
        }
        workgroupBarrier();
        scan_sums[lid] += add;
        workgroupBarrier();
    }
    return scan_sums[lid] - value;
}

fn workgroup_total() -> u32 {
    return scan_sums[WG - 1u];
}
