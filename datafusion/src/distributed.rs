//! Plans over several machines: arrow-wgpu on [datafusion-distributed] workers.
//!
//! The coordinator plans a query as on one machine, with the rule for distributed plans
//! ([`ArrowWgpuRule::for_distributed_plans`]: an aggregation keeps DataFusion's partial
//! and final steps, so the partial step runs where the rows are and only its exact
//! states cross the network), then datafusion-distributed cuts the plan into stages and
//! sends each stage's tasks to the workers over Arrow Flight.
//!
//! - [`ArrowWgpuCodec`] carries the library's operators to the workers: each travels as
//!   the DataFusion node(s) it stands for, and each worker plans them again on its own
//!   engine (its GPU, or DataFusion's node with the exact aggregates where it has none).
//!   The exact aggregate functions travel by name and every worker registers them, so
//!   float sums, means and variances give the same bits on any number of workers.
//! - [`with_workers`] is the coordinator's one call; [`worker`] and [`serve`] run a worker.
//! - A worker refuses a plan from a coordinator of another version ([`wire_version`]),
//!   and [`Workers::unreachable`] names the workers that do not answer.
//!
//! [datafusion-distributed]: https://github.com/datafusion-contrib/datafusion-distributed

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{exec_datafusion_err, not_impl_err, DataFusionError, Result};
use datafusion::execution::{SessionStateBuilder, TaskContext};
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::Distribution;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_distributed::{
    DesiredTaskCountEvent, DesiredTaskCountEventResponse, DesiredTaskCountHandler, DistributedExt,
    NetworkBoundaryExt, RouteTasksEvent, RouteTasksEventResponse, RouteTasksHandler,
    SessionStateBuilderExt, Worker, WorkerQueryContext, WorkerResolver,
};
use datafusion_proto::physical_plan::{
    PhysicalExtensionCodec, PhysicalPlanDecodeContext, PhysicalProtoConverterExtension,
};
use datafusion_proto::protobuf::PhysicalPlanNode;
use prost::Message;
use url::Url;

pub use datafusion_distributed::{display_plan_ascii, Worker as DistributedWorker};

use crate::exec::{WgpuAggregateExec, WgpuFilterExec, WgpuSortExec};
use crate::{ArrowWgpuOptions, ArrowWgpuRule, PlanNotes};

/// The header a coordinator sends its [`wire_version`] in.
pub const VERSION_HEADER: &str = "x-arrow-wgpu-version";

/// The form of what [`ArrowWgpuCodec`] writes and of the plans it stands for: raised with
/// any change to them, so that builds of one crate version that differ there refuse
/// each other.
pub const WIRE_FORM: u32 = 1;

/// The datafusion-distributed release these workers speak (its own protocol has no
/// version of its own).
const DISTRIBUTED_RELEASE: &str = "4";

/// What a coordinator and its workers must share: this crate's version and wire form,
/// DataFusion's version (plans travel as DataFusion's protobuf, with the library's
/// operators inside) and datafusion-distributed's release.
///
/// # Example
/// ```
/// let v = arrow_wgpu_datafusion::distributed::wire_version();
/// assert!(v.starts_with("arrow-wgpu ") && v.contains("DataFusion"));
/// ```
pub fn wire_version() -> String {
    format!(
        "arrow-wgpu {} (wire form {WIRE_FORM}) on DataFusion {}, datafusion-distributed {DISTRIBUTED_RELEASE}",
        env!("CARGO_PKG_VERSION"),
        datafusion::DATAFUSION_VERSION
    )
}

/// Marks a node this codec wrote, before its version.
const MAGIC: &[u8] = b"arrow-wgpu-node\0";

/// The codec that carries [`WgpuFilterExec`], [`WgpuAggregateExec`] and [`WgpuSortExec`]
/// to workers. A node travels as DataFusion's equivalent of it (its
/// `datafusion_equivalent`, in DataFusion's protobuf) behind this crate's version; the
/// worker decodes it over its real input and puts the library's operator back on its own
/// engine where that has a GPU that runs it, else keeps DataFusion's node (the exact CPU
/// path: its aggregates are the exact functions the worker registered).
///
/// # Example
/// ```
/// use std::sync::Arc;
/// use arrow_wgpu::{Backend, Engine};
/// use arrow_wgpu_datafusion::ArrowWgpuOptions;
/// use arrow_wgpu_datafusion::distributed::ArrowWgpuCodec;
///
/// let engine = Arc::new(Engine::new(Backend::Cpu).unwrap());
/// let codec = ArrowWgpuCodec::new(&ArrowWgpuOptions::new(engine));
/// # let _ = codec;
/// ```
pub struct ArrowWgpuCodec {
    rule: ArrowWgpuRule,
}

impl fmt::Debug for ArrowWgpuCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArrowWgpuCodec").finish_non_exhaustive()
    }
}

impl ArrowWgpuCodec {
    /// The codec whose decoded nodes run on `options`' engine.
    pub fn new(options: &ArrowWgpuOptions) -> ArrowWgpuCodec {
        ArrowWgpuCodec {
            rule: ArrowWgpuRule::new(
                options.engine.clone(),
                options.batch_rows,
                PlanNotes::default(),
            ),
        }
    }
}

impl PhysicalExtensionCodec for ArrowWgpuCodec {
    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        let equivalent = if let Some(n) = node.downcast_ref::<WgpuFilterExec>() {
            n.datafusion_equivalent()
        } else if let Some(n) = node.downcast_ref::<WgpuAggregateExec>() {
            n.datafusion_equivalent()
        } else if let Some(n) = node.downcast_ref::<WgpuSortExec>() {
            n.datafusion_equivalent()
        } else {
            return not_impl_err!("{} is not an arrow-wgpu operator", node.name());
        };
        let proto = proto_converter.execution_plan_to_proto(equivalent, self)?;
        let version = wire_version();
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&(version.len() as u32).to_le_bytes());
        buf.extend_from_slice(version.as_bytes());
        proto
            .encode(buf)
            .map_err(|e| exec_datafusion_err!("encoding {}: {e}", node.name()))
    }

    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let Some(rest) = buf.strip_prefix(MAGIC) else {
            return not_impl_err!("not an arrow-wgpu operator");
        };
        let (len, rest) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| exec_datafusion_err!("an arrow-wgpu operator cut short"))?;
        let len = u32::from_le_bytes(*len) as usize;
        if rest.len() < len {
            return Err(exec_datafusion_err!("an arrow-wgpu operator cut short"));
        }
        let (version, rest) = rest.split_at(len);
        let version = String::from_utf8_lossy(version);
        check_version(Some(&version))?;
        let proto = PhysicalPlanNode::decode(rest)
            .map_err(|e| exec_datafusion_err!("decoding an arrow-wgpu operator: {e}"))?;
        let equivalent = proto_converter
            .proto_to_execution_plan(&proto, &PhysicalPlanDecodeContext::new(ctx, self))?;
        let [input] = inputs else {
            return Err(exec_datafusion_err!(
                "an arrow-wgpu operator has one input, not {}",
                inputs.len()
            ));
        };
        // The real input in place of the placeholder (the only EmptyExec: the equivalent
        // is one node, or an aggregate over its filter); DataFusion's nodes above it take
        // its partitioning.
        let mut placeholders = 0;
        let plan = equivalent
            .transform_up(|n| {
                Ok(if n.downcast_ref::<EmptyExec>().is_some() {
                    placeholders += 1;
                    Transformed::yes(input.clone())
                } else {
                    Transformed::no(n)
                })
            })?
            .data;
        if placeholders != 1 {
            return Err(exec_datafusion_err!(
                "an arrow-wgpu operator's plan has {placeholders} inputs, not one"
            ));
        }
        // The library's operator on this worker's engine where it takes the node.
        Ok(match self.rule.attempt(&plan) {
            Some((_, Ok(Some(ours)))) => ours,
            _ => plan,
        })
    }
}

/// The first line of `e`'s message.
fn first_line(e: &DataFusionError) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

/// Refuses a plan whose coordinator runs another version than this process.
fn check_version(theirs: Option<&str>) -> Result<()> {
    let ours = wire_version();
    match theirs {
        Some(v) if v == ours => Ok(()),
        Some(v) => Err(DataFusionError::Execution(format!(
            "this worker runs {ours} and the plan comes from {v}: run one version on the coordinator and every worker"
        ))),
        None => Err(DataFusionError::Execution(format!(
            "the plan came without an arrow-wgpu version ({VERSION_HEADER}); this worker runs {ours} and takes plans only from `arrow-wgpu sql --workers` or `with_workers` of the same version"
        ))),
    }
}

/// The workers a coordinator sends its stages to, and how it splits files among them.
///
/// # Example
/// ```
/// use arrow_wgpu_datafusion::distributed::Workers;
/// let w = Workers::parse("127.0.0.1:50051, http://127.0.0.1:50052").unwrap();
/// assert_eq!(w.urls()[0].as_str(), "http://127.0.0.1:50051/");
/// assert!(Workers::parse("127.0.0.1").is_err()); // no port
/// ```
#[derive(Debug, Clone)]
pub struct Workers {
    urls: Vec<Url>,
    version: String,
    task_bytes: Option<usize>,
}

impl Workers {
    /// The workers at `urls` (`http://HOST:PORT`).
    pub fn new(urls: Vec<Url>) -> Workers {
        Workers {
            urls,
            version: wire_version(),
            task_bytes: None,
        }
    }

    /// Workers from a comma-separated list of `http://HOST:PORT`s or `HOST:PORT`s (which
    /// mean `http://HOST:PORT`).
    pub fn parse(list: &str) -> Result<Workers> {
        let mut urls = Vec::new();
        for item in list.split(',').map(str::trim) {
            if item.is_empty() {
                continue;
            }
            let text = if item.contains("://") {
                item.to_string()
            } else {
                format!("http://{item}")
            };
            let bad = |why: &str| {
                DataFusionError::Configuration(format!(
                    "worker {item}: {why} (expected HOST:PORT or http://HOST:PORT)"
                ))
            };
            let url = Url::parse(&text).map_err(|e| bad(&e.to_string()))?;
            if url.scheme() != "http" {
                // The workers serve plain gRPC (no TLS in this build).
                return Err(bad("the scheme is not http"));
            }
            // An explicit port (the URL drops `:80`, the scheme's own).
            let after_host = text.split("://").nth(1).unwrap_or_default();
            let authority = after_host.split('/').next().unwrap_or_default();
            let has_port = authority
                .rsplit_once(':')
                .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
            if url.host_str().is_none() || !has_port {
                return Err(bad("no host and port"));
            }
            urls.push(url);
        }
        if urls.is_empty() {
            return Err(DataFusionError::Configuration(
                "no workers given (expected HOST:PORT,HOST:PORT,...)".into(),
            ));
        }
        Ok(Workers::new(urls))
    }

    /// The workers' URLs.
    pub fn urls(&self) -> &[Url] {
        &self.urls
    }

    /// Splits file scans into partitions of about `bytes` bytes each; a scan's task takes
    /// as many partitions as the session's target partitions, so a task reads about
    /// `bytes` × target partitions (datafusion-distributed's default is 16 MiB a
    /// partition; an input too small for two tasks is read in one, and a plan with
    /// nothing to split runs on the coordinator alone).
    pub fn task_bytes(mut self, bytes: usize) -> Workers {
        self.task_bytes = Some(bytes.max(1));
        self
    }

    /// Sends `version` to the workers instead of [`wire_version`]: a test of how a
    /// worker refuses a plan from another version.
    pub fn claiming_version(mut self, version: impl Into<String>) -> Workers {
        self.version = version.into();
        self
    }

    /// The workers that can't serve this coordinator now, each with why: no answer
    /// within `timeout` (a dead or unreachable worker), or another [`wire_version`] than
    /// the one this coordinator sends (a stock datafusion-distributed worker would run
    /// DataFusion's inexact float sums under the same names). A query that fails over
    /// workers names them with this.
    pub async fn unreachable(&self, timeout: Duration) -> Vec<(Url, String)> {
        let resolver = datafusion_distributed::grpc::DefaultChannelResolver::default();
        let mut out = Vec::new();
        for url in &self.urls {
            let ask = async {
                let channel = resolver.get_channel(url).await?;
                let mut client = datafusion_distributed::grpc::create_worker_client(channel);
                client
                    .get_worker_info(datafusion_distributed::GetWorkerInfoRequest {})
                    .await
            };
            match tokio::time::timeout(timeout, ask).await {
                Ok(Ok(info)) if info.version == self.version => {}
                Ok(Ok(info)) => out.push((
                    url.clone(),
                    format!(
                        "runs another version: {:?}, this coordinator {:?}",
                        info.version, self.version
                    ),
                )),
                Ok(Err(e)) => {
                    out.push((url.clone(), format!("can't be reached: {}", first_line(&e))))
                }
                Err(_) => out.push((
                    url.clone(),
                    format!("can't be reached: no answer in {timeout:?}"),
                )),
            }
        }
        out
    }

    /// Where each stage of `plan` (as [`with_workers`] planned it) runs: one line per
    /// stage, in stage order, its tasks and their workers. The head stage, the plan's
    /// root, runs on the coordinator; a plan of no stages runs there whole.
    pub fn placement(&self, plan: &Arc<dyn ExecutionPlan>) -> Vec<String> {
        if self.urls.is_empty() {
            return Vec::new();
        }
        let mut lines = Vec::new();
        place_stages(plan, &self.urls, &mut lines);
        lines.sort();
        lines.dedup();
        lines.into_iter().map(|(_, line)| line).collect()
    }
}

/// The stages under `plan` (to the next network boundaries and through them), each
/// placed as [`RoundRobin`] places it.
fn place_stages(plan: &Arc<dyn ExecutionPlan>, urls: &[Url], lines: &mut Vec<(usize, String)>) {
    let mut stack = vec![plan.clone()];
    while let Some(node) = stack.pop() {
        if let Some(nb) = node.as_network_boundary() {
            let stage = nb.input_stage();
            let Some(stage_plan) = stage.local_plan() else {
                continue;
            };
            place_stages(stage_plan, urls, lines);
            let workers = RoundRobin::place(stage.task_count(), urls);
            lines.push((
                stage.num(),
                format!(
                    "Stage {} ({} task{}): {}",
                    stage.num(),
                    stage.task_count(),
                    if stage.task_count() == 1 { "" } else { "s" },
                    workers
                        .iter()
                        .enumerate()
                        .map(|(i, u)| format!("t{i} on {u}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
            continue;
        }
        stack.extend(node.children().into_iter().cloned());
    }
}

/// The task routing [`Workers::placement`] explains: task `i` of a stage to worker `i`
/// mod the count. (A stage of one task over an input stage of one task has no network
/// boundary between them: datafusion-distributed merges the two when it plans, so no
/// stage needs to follow its input's worker.)
struct RoundRobin(Vec<Url>);

impl RoundRobin {
    fn place(tasks: usize, urls: &[Url]) -> Vec<Url> {
        (0..tasks).map(|i| urls[i % urls.len()].clone()).collect()
    }
}

impl RouteTasksHandler for RoundRobin {
    fn handle(&self, ev: RouteTasksEvent) -> Option<Result<RouteTasksEventResponse>> {
        if self.0.is_empty() {
            return Some(Err(DataFusionError::Configuration(
                "no workers given".into(),
            )));
        }
        Some(Ok(RouteTasksEventResponse::new(RoundRobin::place(
            ev.task_count,
            &self.0,
        ))))
    }
}

/// A node that needs all its input in one partition (a single-step aggregate, ours or
/// DataFusion's, a sort of ours, a global limit) runs in a stage of one task: split over
/// tasks, each task would give its own "whole" answer.
struct OnePartitionOneTask;

#[async_trait::async_trait]
impl DesiredTaskCountHandler for OnePartitionOneTask {
    async fn handle(
        &self,
        ev: DesiredTaskCountEvent<'_>,
    ) -> Option<Result<DesiredTaskCountEventResponse>> {
        ev.plan
            .input_distribution_requirements()
            .into_per_child()
            .iter()
            .any(|d| matches!(d, Distribution::SinglePartition))
            .then(|| Ok(DesiredTaskCountEventResponse::maximum(1)))
    }
}

#[derive(Debug)]
struct FixedWorkers(Vec<Url>);

impl WorkerResolver for FixedWorkers {
    fn get_urls(&self) -> Result<Vec<Url>> {
        Ok(self.0.clone())
    }
}

/// Makes a session being built a coordinator over `workers`: arrow-wgpu added as
/// [`crate::with_options`] adds it (with the rule for distributed plans), then
/// datafusion-distributed's planner, the workers, [`ArrowWgpuCodec`] and the version
/// header. Call it after `with_default_features()` and `with_config(..)` (which would
/// replace the settings this writes).
///
/// # Example
/// ```
/// use std::sync::Arc;
/// use arrow_wgpu::{Backend, Engine};
/// use arrow_wgpu_datafusion::ArrowWgpuOptions;
/// use arrow_wgpu_datafusion::distributed::{with_workers, Workers};
/// use datafusion::execution::SessionStateBuilder;
/// use datafusion::prelude::SessionContext;
///
/// let engine = Arc::new(Engine::new(Backend::Cpu).unwrap());
/// let workers = Workers::parse("127.0.0.1:50051,127.0.0.1:50052").unwrap();
/// let builder = SessionStateBuilder::new().with_default_features();
/// let state = with_workers(builder, ArrowWgpuOptions::new(engine), &workers).unwrap().build();
/// let ctx = SessionContext::new_with_state(state);
/// // ctx.sql(..) now plans over the two workers (`arrow-wgpu worker` on each).
/// # let _ = ctx;
/// ```
pub fn with_workers(
    builder: SessionStateBuilder,
    options: ArrowWgpuOptions,
    workers: &Workers,
) -> Result<SessionStateBuilder> {
    let codec = ArrowWgpuCodec::new(&options);
    let mut headers = http::HeaderMap::new();
    headers.insert(
        VERSION_HEADER,
        http::HeaderValue::from_str(&workers.version)
            .map_err(|e| DataFusionError::Configuration(format!("version header: {e}")))?,
    );
    let builder = crate::add(builder, options, true)
        .with_distributed_planner()
        .with_distributed_worker_resolver(FixedWorkers(workers.urls.clone()))
        .with_distributed_user_codec(codec)
        .with_distributed_route_tasks_handler(RoundRobin(workers.urls.clone()))
        .with_distributed_passthrough_headers(headers)?
        // Up to two tasks a stage even with one worker: datafusion-distributed keeps a
        // plan of one-task stages at home, and one worker should take the work too.
        .with_distributed_max_tasks_per_stage(workers.urls.len().max(2))?
        // Stages fixed when planned, so that `placement` says where they run.
        .with_distributed_dynamic_task_count(false)?
        .with_distributed_desired_task_count_handler(OnePartitionOneTask);
    match workers.task_bytes {
        Some(bytes) => builder.with_distributed_file_scan_config_bytes_per_partition(bytes),
        None => Ok(builder),
    }
}

/// A worker whose queries run on `options`' engine: it refuses a plan from a coordinator
/// of another [`wire_version`], registers the exact aggregate functions, and decodes the
/// library's operators with [`ArrowWgpuCodec`]. Serve it with [`serve`].
///
/// # Example
/// ```
/// use std::sync::Arc;
/// use arrow_wgpu::{Backend, Engine};
/// use arrow_wgpu_datafusion::ArrowWgpuOptions;
/// use arrow_wgpu_datafusion::distributed::{worker, wire_version};
///
/// let engine = Arc::new(Engine::new(Backend::Cpu).unwrap());
/// let w = worker(ArrowWgpuOptions::new(engine));
/// assert_eq!(w.version(), wire_version());
/// ```
pub fn worker(options: ArrowWgpuOptions) -> Worker {
    Worker::from_session_builder(move |ctx: WorkerQueryContext| {
        let options = options.clone();
        async move {
            let theirs = ctx
                .headers
                .get(VERSION_HEADER)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            check_version(theirs.as_deref())?;
            let codec = ArrowWgpuCodec::new(&options);
            Ok(crate::add(ctx.builder, options, true)
                .with_distributed_user_codec(codec)
                .build())
        }
    })
    .with_version(wire_version())
}

/// Serves `worker` on `listener` (gRPC, Arrow Flight data) until `shutdown` completes.
///
/// # Example
/// ```
/// use std::sync::Arc;
/// use arrow_wgpu::{Backend, Engine};
/// use arrow_wgpu_datafusion::ArrowWgpuOptions;
/// use arrow_wgpu_datafusion::distributed::{serve, worker};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let engine = Arc::new(Engine::new(Backend::Cpu).unwrap());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// let server = tokio::spawn(serve(worker(ArrowWgpuOptions::new(engine)), listener, async move {
///     let _ = stopped.await;
/// }));
/// stop.send(()).unwrap();
/// server.await.unwrap().unwrap();
/// # });
/// ```
pub async fn serve(
    worker: Worker,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    tonic::transport::Server::builder()
        .add_service(worker.into_worker_server())
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            shutdown,
        )
        .await
        .map_err(|e| DataFusionError::External(Box::new(e)))
}

/// What a distributed query sent over the network, from its metrics once it has run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Bytes of Arrow data received between stages (Flight messages as encoded, from
    /// every worker and the coordinator).
    pub between_stages: u64,
    /// Bytes of plans the coordinator sent to the workers.
    pub plans: u64,
}

/// The traffic of `plan` (as [`with_workers`] planned it), after it ran to its end;
/// `plan` with every stage's metrics (for [`display_plan_ascii`] with metrics) beside it.
/// A plan that ran on the coordinator alone moved nothing.
pub async fn traffic(plan: Arc<dyn ExecutionPlan>) -> Result<(Traffic, Arc<dyn ExecutionPlan>)> {
    let plan = datafusion_distributed::rewrite_distributed_plan_with_metrics(
        plan,
        datafusion_distributed::DistributedMetricsFormat::Aggregated,
    )
    .await?;
    let mut t = Traffic::default();
    let mut stack = vec![plan.clone()];
    while let Some(node) = stack.pop() {
        if let Some(set) = node.metrics() {
            for m in set.iter() {
                let bytes = m.value().as_usize() as u64;
                match m.value().name() {
                    "bytes_transferred" => t.between_stages += bytes,
                    "plan_bytes_sent" => t.plans += bytes,
                    _ => {}
                }
            }
        }
        // A network boundary's child is its input stage's plan.
        stack.extend(node.children().into_iter().cloned());
    }
    Ok((t, plan))
}
