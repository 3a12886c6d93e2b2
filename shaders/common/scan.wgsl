// Exclusive prefix sum across one workgroup (Hillis-Steele in workgroup memory). Every
// invocation of the workgroup must call it (it has barriers).
var<workgroup> scan_sums: array<u32, WG>;

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
