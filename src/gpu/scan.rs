//! The multi-level exclusive prefix sum the other stages share (the radix sort's digit
//! counts, compaction's block counts, a string gather's block sums).
//!
//! Reduce-then-scan, every level parallel: `scan_reduce.wgsl` sums each block of
//! `SCAN_BLOCK` values, the block sums are scanned by the same steps one level up, and
//! `scan_apply.wgsl` writes each block's prefix sums from its block's offset. A level of
//! one block is scanned by one workgroup, which writes the total. Workgroups never wait on
//! one another, so it holds on every WebGPU adapter (WebGPU promises no forward progress
//! between workgroups, which a single-pass scan would need).

use super::shader::{self, assemble};
use super::{GpuContext, WORKGROUP_SIZE};
use crate::error::Result;

/// Values one workgroup scans (`SCAN_BLOCK` in `shaders/common/scan.wgsl`).
pub(crate) const SCAN_BLOCK: u32 = WORKGROUP_SIZE * 8;

/// Records into `encoder` the exclusive prefix sum of `values[..count]`, in place, and the
/// total into `totals[slot]` (u32s; the sum must fit in 32 bits).
pub(crate) fn record_exclusive_scan(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    values: &wgpu::Buffer,
    count: u32,
    totals: &wgpu::Buffer,
    slot: u32,
) -> Result<()> {
    let apply = ctx.pipeline("scan_apply", || assemble(shader::SCAN_APPLY, &[]))?;
    if count <= SCAN_BLOCK {
        let params = ctx.params([count, slot, 0, 0])?;
        // The top level has no block offsets to read.
        let bg = ctx.bind(&apply, &[&params, values, &ctx.unread, totals]);
        ctx.dispatch(encoder, &apply, &bg, WORKGROUP_SIZE as u64);
        return Ok(());
    }
    let reduce = ctx.pipeline("scan_reduce", || assemble(shader::SCAN_REDUCE, &[]))?;
    let blocks = count.div_ceil(SCAN_BLOCK);
    let sums = ctx.storage_zeroed("scan block sums", blocks as u64 * 4)?;
    let params = ctx.params([count, slot, 1, 0])?;
    let threads = blocks as u64 * WORKGROUP_SIZE as u64;
    let bg = ctx.bind(&reduce, &[&params, values, &sums]);
    ctx.dispatch(encoder, &reduce, &bg, threads);
    record_exclusive_scan(ctx, encoder, &sums, blocks, totals, slot)?;
    let bg = ctx.bind(&apply, &[&params, values, &sums, totals]);
    ctx.dispatch(encoder, &apply, &bg, threads);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::tests::{spilling_contexts, test_contexts};

    /// The scan of `values` on the GPU: (prefix sums, total).
    fn scan_on(ctx: &GpuContext, values: &[u32]) -> (Vec<u32>, u32) {
        let bytes: &[u8] = if values.is_empty() {
            &[0; 4]
        } else {
            bytemuck::cast_slice(values)
        };
        let buffer = ctx.storage_from_bytes("scan test", bytes).unwrap();
        let totals = ctx.storage_zeroed("scan test totals", 8).unwrap();
        let mut encoder = ctx.encoder();
        let n = values.len() as u32;
        record_exclusive_scan(ctx, &mut encoder, &buffer, n, &totals, 1).unwrap();
        ctx.submit(encoder).unwrap();
        let read = ctx
            .read_many(&[(&buffer, n.max(1) as u64 * 4), (&totals, 8)])
            .unwrap();
        let out: Vec<u32> = bytemuck::pod_collect_to_vec(&read[0]);
        let totals: Vec<u32> = bytemuck::pod_collect_to_vec(&read[1]);
        assert_eq!(totals[0], 0, "only the slot asked for is written");
        (out[..values.len()].to_vec(), totals[1])
    }

    /// One level (a block or less), two (up to a block of blocks) and three, at the edges
    /// of each: every prefix and the total against the host's.
    #[test]
    fn every_level_of_the_scan_adds_up() {
        let b = SCAN_BLOCK as usize;
        for (name, ctx) in test_contexts() {
            for n in [
                0,
                1,
                2,
                b - 1,
                b,
                b + 1,
                3 * b + 5,
                b * b,
                b * b + 1,
                b * b + b + 3,
            ] {
                let values: Vec<u32> = (0..n as u32)
                    .map(|i| i.wrapping_mul(2_654_435_761) >> 29)
                    .collect();
                let mut want = Vec::with_capacity(n);
                let mut sum = 0u32;
                for &v in &values {
                    want.push(sum);
                    sum += v;
                }
                let (got, total) = scan_on(&ctx, &values);
                assert_eq!(total, sum, "{name}: total of {n}");
                if let Some(at) = (0..n).find(|&i| got[i] != want[i]) {
                    panic!(
                        "{name}: {n} values: prefix {at} is {}, not {}",
                        got[at], want[at]
                    );
                }
            }
        }
    }

    /// Three levels with every level's workgroups spread over the grid's y dimension.
    #[test]
    fn the_scan_holds_when_workgroups_spill_into_y() {
        let b = SCAN_BLOCK as usize;
        for (name, ctx) in spilling_contexts() {
            let n = b * b + 1;
            let values: Vec<u32> = (0..n as u32).map(|i| i % 5).collect();
            let (got, total) = scan_on(&ctx, &values);
            let mut sum = 0u32;
            for (i, &v) in values.iter().enumerate() {
                assert_eq!(got[i], sum, "{name}: prefix {i}");
                sum += v;
            }
            assert_eq!(total, sum, "{name}");
        }
    }
}
