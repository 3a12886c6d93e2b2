//! TPC-H Q1 and Q6 (`arrow_wgpu::tpch`) on `lineitem` from tpchgen: at a small scale factor
//! the GPU (every adapter, with transfers and resident, in one chunk and in small chunks)
//! equals the CPU exactly; at SF1 both match the published answers (ignored by default for
//! its time, about 6M rows; `scripts/test.sh` runs it with `--ignored`).

use crate::common;

#[path = "../examples/common/tpch_data.rs"]
mod data;

use arrow_wgpu::tpch;

#[test]
fn q1_and_q6_agree_between_gpu_and_cpu_at_sf_0_01() {
    let lineitem = data::lineitem(0.01, &data::q1_q6_columns());
    assert_eq!(lineitem.num_rows(), 60_175);
    let cpu = common::cpu();
    let q1 = tpch::q1(&cpu, &lineitem).unwrap();
    let q6 = tpch::q6(&cpu, &lineitem).unwrap();
    assert_eq!(q1.num_rows(), 4);
    for (name, gpu) in common::gpu_engines_and_small_chunks(64 * 1024) {
        assert_eq!(tpch::q1(&gpu, &lineitem).unwrap(), q1, "{name}: Q1");
        assert_eq!(tpch::q6(&gpu, &lineitem).unwrap(), q6, "{name}: Q6");
        let resident = gpu.upload(&lineitem).unwrap();
        assert_eq!(
            tpch::q1_resident(&resident).unwrap(),
            q1,
            "{name}: Q1 resident"
        );
        assert_eq!(
            tpch::q6_resident(&resident).unwrap(),
            q6,
            "{name}: Q6 resident"
        );
    }
}

#[test]
#[ignore = "SF1: 6M rows; scripts/test.sh runs it with --ignored"]
fn sf1_matches_the_published_answers() {
    let lineitem = data::lineitem(1.0, &data::q1_q6_columns());
    assert_eq!(lineitem.num_rows(), 6_001_215);
    let cpu = common::cpu();
    tpch::check_q1_sf1(&tpch::q1(&cpu, &lineitem).unwrap()).unwrap();
    tpch::check_q6_sf1(&tpch::q6(&cpu, &lineitem).unwrap()).unwrap();
    for (name, gpu) in common::gpu_engines(None) {
        let q1 = tpch::q1(&gpu, &lineitem).unwrap();
        tpch::check_q1_sf1(&q1).unwrap_or_else(|e| panic!("{name}: {e}"));
        let q6 = tpch::q6(&gpu, &lineitem).unwrap();
        tpch::check_q6_sf1(&q6).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
