//! The `distributed` feature inside one process: [`ArrowWgpuCodec`] carries each of the
//! library's operators and gives it back on the receiving engine (the library's node on a
//! GPU, DataFusion's on the CPU) with the same answer, bit for bit; a worker served on
//! 127.0.0.1 runs a plan from a coordinator of its version with the single-process
//! answer, and refuses one that claims another version, saying so.

#![cfg(feature = "distributed")]

use crate::common;
use crate::session_with;

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow_wgpu::{Backend, Engine};
use arrow_wgpu_datafusion::distributed::{
    display_plan_ascii, serve, with_workers, worker, ArrowWgpuCodec, Workers,
};
use arrow_wgpu_datafusion::ArrowWgpuOptions;
use common::gen::{order_sensitive_floats, Rng};
use common::rows_by_bits;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::datasource::MemTable;
use datafusion::execution::SessionStateBuilder;
use datafusion::physical_plan::{collect, ExecutionPlan};
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use datafusion_proto::physical_plan::{DefaultPhysicalProtoConverter, PhysicalExtensionCodec};

fn data(seed: u64, rows: usize) -> RecordBatch {
    order_sensitive_floats(&mut Rng(seed), rows, 5)
}

fn cells(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    rows_by_bits(batches)
}

fn session(engine: Arc<Engine>, partitions: usize) -> SessionContext {
    session_with(
        SessionConfig::new().with_target_partitions(partitions),
        ArrowWgpuOptions::new(engine),
    )
}

const QUERIES: [&str; 3] = [
    "SELECT k, v FROM t WHERE v > 0.25 OR k = 2",
    "SELECT k, sum(v) AS s, avg(v) AS a, count(*) AS n FROM t WHERE k <> 1 GROUP BY k",
    "SELECT k, v FROM t ORDER BY v DESC NULLS LAST, k LIMIT 50",
];

/// Each of the library's operators in a GPU plan, encoded and decoded on the CPU engine
/// (DataFusion's node back) and on the GPU engine (the library's node back), runs to the
/// plan's own answer.
#[tokio::test(flavor = "multi_thread")]
async fn every_operator_travels_and_comes_back_on_the_receiving_engine() {
    let table = data(7, 30_000);
    let cpu = Arc::new(Engine::new(Backend::Cpu).unwrap());
    for (gpu_name, gpu) in common::gpu_engines(None) {
        let gpu = Arc::new(gpu);
        for sql in QUERIES {
            let ctx = session(gpu.clone(), 1);
            let mem = MemTable::try_new(table.schema(), vec![vec![table.clone()]]).unwrap();
            ctx.register_table("t", Arc::new(mem)).unwrap();
            let plan = ctx
                .sql(sql)
                .await
                .unwrap()
                .create_physical_plan()
                .await
                .unwrap();
            let expected = cells(&collect(plan.clone(), ctx.task_ctx()).await.unwrap());
            let mut ours = 0;
            for (label, engine) in [("cpu", cpu.clone()), (gpu_name.as_str(), gpu.clone())] {
                let codec = ArrowWgpuCodec::new(&ArrowWgpuOptions::new(engine.clone()));
                let task_ctx = ctx.task_ctx();
                let mut replaced = 0;
                let travelled = plan
                    .clone()
                    .transform_up(|node| {
                        if !node.name().starts_with("Wgpu") {
                            return Ok(Transformed::no(node));
                        }
                        replaced += 1;
                        let mut buf = Vec::new();
                        codec.try_encode(
                            node.clone(),
                            &mut buf,
                            &DefaultPhysicalProtoConverter {},
                        )?;
                        let inputs: Vec<Arc<dyn ExecutionPlan>> =
                            node.children().into_iter().cloned().collect();
                        let back = codec.try_decode(
                            &buf,
                            &inputs,
                            &task_ctx,
                            &DefaultPhysicalProtoConverter {},
                        )?;
                        // The receiving engine decides: the library's node on a GPU,
                        // DataFusion's on the CPU.
                        assert_eq!(
                            back.name().starts_with("Wgpu"),
                            engine.adapter().is_some(),
                            "{sql} on {label}: {} came back as {}",
                            node.name(),
                            back.name()
                        );
                        // Cut short, or another version's, it is refused.
                        assert!(codec
                            .try_decode(
                                &buf[..buf.len() / 2],
                                &inputs,
                                &task_ctx,
                                &DefaultPhysicalProtoConverter {}
                            )
                            .is_err());
                        let mut other = buf.clone();
                        let at =
                            other.windows(10).position(|w| w == b"arrow-wgpu").unwrap() + 16 + 4;
                        other[at + 11] ^= 1; // a digit of the version
                        let err = codec
                            .try_decode(
                                &other,
                                &inputs,
                                &task_ctx,
                                &DefaultPhysicalProtoConverter {},
                            )
                            .unwrap_err()
                            .to_string();
                        assert!(err.contains("run one version"), "{err}");
                        Ok(Transformed::yes(back))
                    })
                    .unwrap()
                    .data;
                ours = replaced;
                let got = cells(&collect(travelled, ctx.task_ctx()).await.unwrap());
                assert_eq!(got, expected, "{sql}: decoded on {label}");
            }
            assert!(ours > 0, "{sql}: no arrow-wgpu operator in the GPU plan");
        }
    }
}

/// A worker on 127.0.0.1 (on the CPU, then on each GPU) runs the stages of a coordinator
/// of its version, with the
/// single-process answer for 2 and 3 partitions (one partition plans a single-step aggregate, which stays on one machine), and refuses a coordinator that claims
/// another version, with a message that says so.
#[tokio::test(flavor = "multi_thread")]
async fn a_worker_answers_its_version_and_refuses_another() {
    let dir =
        std::env::temp_dir().join(format!("arrow-wgpu-df-distributed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for part in 0..3 {
        let batch = data(100 + part, 10_000);
        let file = std::fs::File::create(dir.join(format!("p{part}.parquet"))).unwrap();
        let mut w =
            datafusion::parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }
    let path = dir.to_str().unwrap().to_string();
    let sql = "SELECT k, sum(v) AS s, avg(v) AS a, var(v) AS va, count(v) AS n FROM t \
               WHERE k <> 1 GROUP BY k ORDER BY k";

    let cpu = Arc::new(Engine::new(Backend::Cpu).unwrap());
    let local = session(cpu.clone(), 1);
    local
        .register_parquet("t", &path, ParquetReadOptions::default())
        .await
        .unwrap();
    let expected = cells(&local.sql(sql).await.unwrap().collect().await.unwrap());

    // A worker and its coordinator on each engine: on a GPU, the coordinator ships the
    // library's filter in a stage, and the worker runs it on its GPU.
    for (engine_name, engine) in common::all_engines() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(
            worker(ArrowWgpuOptions::new(engine.clone())),
            listener,
            async move {
                let _ = stopped.await;
            },
        ));
        for (partitions, claim) in [
            (2, None),
            (3, None),
            (3, Some("arrow-wgpu 0.0.0 on DataFusion 1.0.0")),
        ] {
            let label = format!("{engine_name}, {partitions} partitions");
            let mut workers = Workers::parse(&url).unwrap().task_bytes(1);
            if let Some(v) = claim {
                workers = workers.claiming_version(v);
            }
            let builder = SessionStateBuilder::new()
                .with_default_features()
                .with_config(SessionConfig::new().with_target_partitions(partitions));
            let state = with_workers(builder, ArrowWgpuOptions::new(engine.clone()), &workers)
                .unwrap()
                .build();
            let ctx = SessionContext::new_with_state(state);
            ctx.register_parquet("t", &path, ParquetReadOptions::default())
                .await
                .unwrap();
            let df = ctx.sql(sql).await.unwrap();
            let plan = df.clone().create_physical_plan().await.unwrap();
            let shown = display_plan_ascii(plan.as_ref(), false);
            assert!(
                !workers.placement(&plan).is_empty(),
                "{label}: not distributed: {shown}"
            );
            // The library's filter is inside a stage (below a network boundary).
            let stages = shown.find("Stage 1").map_or("", |at| &shown[at..]);
            assert_eq!(
                stages.contains("WgpuFilterExec"),
                engine.adapter().is_some(),
                "{label}: {shown}"
            );
            // The coordinator asks the worker its version before anything runs.
            let refused = workers.unreachable(std::time::Duration::from_secs(5)).await;
            assert_eq!(
                refused.len(),
                usize::from(claim.is_some()),
                "{label}: {refused:?}"
            );
            let got = df.collect().await;
            match claim {
                None => assert_eq!(cells(&got.unwrap()), expected, "{label}"),
                Some(v) => {
                    let err = got.unwrap_err().to_string();
                    assert!(
                        err.contains("run one version") && err.contains(v),
                        "{label}: another version's plan: {err}"
                    );
                }
            }
        }
        stop.send(()).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(20), server)
            .await
            .expect("the worker stops")
            .unwrap()
            .unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
