//! The input of `arrow-wgpu query` as one DataFusion table: its files in the order given
//! (Parquet, Arrow IPC file or stream, CSV, mixed as they come), read by DataFusion's own
//! readers, with each row's position in the whole input as the column [`ROW`].
//!
//! `query` promises input order: groups in order of first appearance, the first or last
//! row of each distinct key, a stable sort, the first N rows. DataFusion's tables give no
//! order across files (a listing sorts them by path) nor across partitions, so the row
//! position makes every order the query needs explicit in its SQL (`ORDER BY min(row)`, a
//! sort's last key). Where the plan has such an order and every file is Parquet, the files
//! are scanned in parallel (byte ranges of each file on every core): Parquet's reader
//! numbers each row within its file (its `row_number` virtual column), and each file's
//! first row (from the footers) makes that global. Otherwise (one partition, as a plan
//! that relies on its input's order runs; CSV or IPC files, whose rows can't be numbered
//! without reading what comes before) the files are read one after another in a single
//! partition that counts the rows.

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use arrow::array::{ArrayRef, AsArray, Int64Array, RecordBatch, RecordBatchOptions};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::config::TableParquetOptions;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DFSchema, DataFusionError};
use datafusion::datasource::file_format::arrow::ArrowFormat;
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::file_format::FileFormat as DfFileFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl, PartitionedFile,
};
use datafusion::datasource::physical_plan::{FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::datasource::TableType;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr as DfExpr, TableProviderFilterPushDown};
use datafusion::object_store::{ObjectMeta, ObjectStoreExt};
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::{StreamExt, TryStreamExt};
use parquet::arrow::RowNumber;

use crate::read::FileFormat;

/// The column holding each row's position in the whole input (0, 1, ... across the files
/// in order); never part of `query`'s output.
pub const ROW: &str = "__arrow_wgpu_row";

/// Rows read to infer a CSV file's column types.
const CSV_INFER_ROWS: usize = 10_000;

/// One input file: its path and DataFusion's table over it alone.
#[derive(Debug)]
struct InputFile {
    path: PathBuf,
    table: Arc<ListingTable>,
    /// For a Parquet file: its object-store entry, its own columns and its first row's
    /// position in the whole input, for a parallel scan that numbers the rows.
    parquet: Option<ParquetFile>,
}

#[derive(Debug)]
struct ParquetFile {
    url: ListingTableUrl,
    meta: ObjectMeta,
    schema: SchemaRef,
    first_row: i64,
}

/// The files of `query`, in order, as one table of their shared columns and [`ROW`].
#[derive(Debug)]
pub struct OrderedFiles {
    files: Vec<InputFile>,
    /// The files' columns (nullable where any file's is), then [`ROW`].
    schema: SchemaRef,
    /// The most rows the input can hold (Parquet's metadata; a byte a column a row for
    /// CSV; a bit a row for Arrow IPC): no batch needs to be larger.
    pub most_rows: u64,
}

impl OrderedFiles {
    /// Opens every file (its format told by its first bytes, else its extension) and
    /// checks that they share one set of columns, before any data is read.
    pub async fn open(state: &dyn Session, paths: &[PathBuf]) -> Result<OrderedFiles> {
        let mut files = Vec::with_capacity(paths.len());
        let mut first: Option<(SchemaRef, &Path)> = None;
        let mut nullable: Vec<bool> = Vec::new();
        let mut most_rows = 0u64;
        for path in paths {
            let (table, schema, rows, parquet) = open_one(state, path, most_rows)
                .await
                .with_context(|| format!("reading {}", path.display()))?;
            match &first {
                None => first = Some((schema.clone(), path)),
                Some((want, want_path)) => {
                    if !same_columns(want, &schema) {
                        bail!(
                            "{} has other columns than {}:\n  {}\n  {}",
                            path.display(),
                            want_path.display(),
                            describe(&schema),
                            describe(want)
                        );
                    }
                }
            }
            nullable.resize(schema.fields().len(), false);
            for (n, f) in nullable.iter_mut().zip(schema.fields()) {
                *n |= f.is_nullable();
            }
            most_rows = most_rows.saturating_add(rows);
            files.push(InputFile {
                path: path.clone(),
                table,
                parquet,
            });
        }
        let (first, _) = first.context("no input files")?;
        if first.field_with_name(ROW).is_ok() {
            bail!("an input file has a column named {ROW}, which arrow-wgpu query reserves");
        }
        let mut fields: Vec<Field> = first
            .fields()
            .iter()
            .zip(&nullable)
            .map(|(f, &n)| f.as_ref().clone().with_nullable(n))
            .collect();
        fields.push(Field::new(ROW, DataType::Int64, false));
        Ok(OrderedFiles {
            files,
            schema: Arc::new(Schema::new_with_metadata(fields, first.metadata().clone())),
            most_rows,
        })
    }

    /// The files' columns, without [`ROW`].
    pub fn file_schema(&self) -> SchemaRef {
        let fields = &self.schema.fields()[..self.schema.fields().len() - 1];
        Arc::new(Schema::new_with_metadata(
            fields.to_vec(),
            self.schema.metadata().clone(),
        ))
    }
}

/// DataFusion's table over the one file `path`, its columns, a bound on its rows, and for
/// a Parquet file what a parallel scan needs (its first row being `first_row`).
async fn open_one(
    state: &dyn Session,
    path: &Path,
    first_row: u64,
) -> Result<(Arc<ListingTable>, SchemaRef, u64, Option<ParquetFile>)> {
    let mut file = File::open(path)?;
    let format = FileFormat::sniff(path, &mut file)?;
    let bytes = file.metadata()?.len();
    // Parquet's footer first, by the parquet crate, which checks it: DataFusion's schema
    // inference panics on some damaged footers.
    let parquet_rows = match format {
        FileFormat::Parquet => {
            let reader =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                    .with_context(|| format!("not a valid {} file", format.name()))?;
            reader.metadata().file_metadata().num_rows().max(0) as u64
        }
        _ => 0,
    };
    let df_format: Arc<dyn DfFileFormat> = match format {
        // The file's own types (Utf8, not the Utf8View DataFusion reads by default).
        FileFormat::Parquet => Arc::new(ParquetFormat::default().with_force_view_types(false)),
        FileFormat::IpcFile | FileFormat::IpcStream => Arc::new(ArrowFormat),
        FileFormat::Csv { delimiter } => Arc::new(
            CsvFormat::default()
                .with_has_header(true)
                .with_delimiter(delimiter)
                .with_schema_infer_max_rec(CSV_INFER_ROWS),
        ),
    };
    let absolute = std::path::absolute(path)?;
    // A URL of the file itself, never a glob: a name may hold `*` or `[`.
    let url = url::Url::from_file_path(&absolute)
        .map_err(|()| anyhow::anyhow!("can't name {} as a URL", absolute.display()))?;
    let url = ListingTableUrl::try_new(url, None)?;
    let parquet = match format {
        FileFormat::Parquet => Some((
            url.clone(),
            state
                .runtime_env()
                .object_store(url.object_store())?
                .head(url.prefix())
                .await?,
        )),
        _ => None,
    };
    // Any extension: the URL names the one file. (A file's scan may come in several
    // partitions, which are read in order; none is split by byte ranges, since the scans
    // are not children an optimizer sees.)
    let options = ListingOptions::new(df_format).with_file_extension("");
    let schema = options
        .infer_schema(state, &url)
        .await
        .map_err(anyhow::Error::from)
        .with_context(|| format!("not a valid {} file", format.name()))?;
    if schema.fields().is_empty() {
        bail!("no columns (a CSV file needs a header row)");
    }
    let rows = match format {
        FileFormat::Parquet => parquet_rows,
        FileFormat::Csv { .. } => bytes / schema.fields().len() as u64 + 1,
        FileFormat::IpcFile | FileFormat::IpcStream => bytes.saturating_mul(8) + 1,
    };
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(schema.clone());
    let parquet = parquet.map(|(url, meta)| ParquetFile {
        url,
        meta,
        schema: schema.clone(),
        first_row: first_row as i64,
    });
    Ok((
        Arc::new(ListingTable::try_new(config)?),
        schema,
        rows,
        parquet,
    ))
}

fn same_columns(a: &SchemaRef, b: &SchemaRef) -> bool {
    a.fields().len() == b.fields().len()
        && a.fields()
            .iter()
            .zip(b.fields())
            .all(|(x, y)| x.name() == y.name() && x.data_type() == y.data_type())
}

fn describe(schema: &SchemaRef) -> String {
    schema
        .fields()
        .iter()
        .map(|f| format!("{}: {}", f.name(), f.data_type()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[async_trait]
impl TableProvider for OrderedFiles {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&DfExpr],
    ) -> datafusion::common::Result<Vec<TableProviderFilterPushDown>> {
        // Passed on to each file's scan (Parquet prunes row groups by them); DataFusion
        // still applies them.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[DfExpr],
        limit: Option<usize>,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        let row_index = self.schema.fields().len() - 1;
        let wanted: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        let file_columns: Vec<usize> = wanted.iter().copied().filter(|&i| i != row_index).collect();
        // Each output column: the row position, or the file scan's column at this index.
        let mut next = 0;
        let columns: Vec<Option<usize>> = wanted
            .iter()
            .map(|&i| {
                (i != row_index).then(|| {
                    next += 1;
                    next - 1
                })
            })
            .collect();
        let pushed: Vec<DfExpr> = filters
            .iter()
            .filter(|f| !f.column_refs().iter().any(|c| c.name == ROW))
            .cloned()
            .collect();
        let schema = Arc::new(self.schema.project(&wanted)?);
        let partitions = state.config().target_partitions();
        let row_wanted = wanted.contains(&row_index);
        let parquet: Option<Vec<&ParquetFile>> =
            self.files.iter().map(|f| f.parquet.as_ref()).collect();
        // In parallel where the plan has partitions to run them on and either needs no
        // positions or every file is Parquet (whose reader numbers the rows).
        let parallel = partitions > 1 && (!row_wanted || parquet.is_some());
        let mut parts = Vec::new();
        for (k, f) in self.files.iter().enumerate() {
            let numbered = match &parquet {
                Some(files) if parallel && row_wanted => Some(files[k]),
                _ => None,
            };
            let scan = match numbered {
                Some(pq) => numbered_scan(state, pq, &file_columns, &pushed, limit)?,
                None => {
                    f.table
                        .scan(state, Some(&file_columns), &pushed, limit)
                        .await?
                }
            };
            let scan = if parallel {
                scan.repartitioned(partitions, state.config_options())?
                    .unwrap_or(scan)
            } else {
                scan
            };
            for p in 0..scan.properties().output_partitioning().partition_count() {
                parts.push(Part {
                    path: f.path.clone(),
                    scan: scan.clone(),
                    partition: p,
                    first_row: numbered.map(|pq| pq.first_row),
                });
            }
        }
        Ok(Arc::new(OrderedScanExec::new(
            parts, columns, schema, parallel,
        )))
    }
}

/// A scan of the Parquet file `pq` (the columns `file_columns`, then each row's number in
/// the file) that may be split into byte ranges: the reader numbers the rows wherever a
/// range starts.
fn numbered_scan(
    state: &dyn Session,
    pq: &ParquetFile,
    file_columns: &[usize],
    filters: &[DfExpr],
    limit: Option<usize>,
) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
    let row_number =
        Field::new("__arrow_wgpu_file_row", DataType::Int64, true).with_extension_type(RowNumber);
    let table_schema = TableSchema::builder(pq.schema.clone())
        .with_virtual_columns(vec![Arc::new(row_number)])
        .build();
    let mut source =
        ParquetSource::new(table_schema).with_table_parquet_options(TableParquetOptions {
            global: state.config_options().execution.parquet.clone(),
            ..Default::default()
        });
    // The filters prune row groups and pages; DataFusion still applies them.
    if let Some(predicate) = conjunction(filters.iter().cloned()) {
        let df_schema = DFSchema::try_from(pq.schema.as_ref().clone())?;
        source = source.with_predicate(state.create_physical_expr(predicate, &df_schema)?);
    }
    let mut indices = file_columns.to_vec();
    indices.push(pq.schema.fields().len());
    let config = FileScanConfigBuilder::new(pq.url.object_store(), Arc::new(source))
        .with_file(PartitionedFile::from(pq.meta.clone()))
        .with_projection_indices(Some(indices))?
        .with_limit(limit)
        .build();
    Ok(DataSourceExec::from_data_source(config))
}

/// One partition of one file's scan. With `first_row`, the scan's last column is each
/// row's number in its file, and `first_row` plus it is the row's position in the input;
/// without, positions are counted as the parts are read in order.
#[derive(Debug, Clone)]
struct Part {
    path: PathBuf,
    scan: Arc<dyn ExecutionPlan>,
    partition: usize,
    first_row: Option<i64>,
}

/// The files' scans: each part its own partition where every part numbers its rows, else
/// one partition reading the parts in order and counting.
#[derive(Debug)]
struct OrderedScanExec {
    /// Each file's scan (DataFusion's, with the projection, filters and limit pushed
    /// down), by partition. They are this node's own, not its children, so no optimizer
    /// splits or reorders them.
    parts: Vec<Part>,
    /// Each output column: `None` for [`ROW`], else the scans' column at that index.
    columns: Vec<Option<usize>>,
    /// Whether each part is a partition of its own.
    parallel: bool,
    properties: Arc<PlanProperties>,
}

impl OrderedScanExec {
    /// With `parallel`, each part is a partition of its own (its rows numbered by the
    /// Parquet reader where [`ROW`] is wanted); else one partition reads them in order.
    fn new(
        parts: Vec<Part>,
        columns: Vec<Option<usize>>,
        schema: SchemaRef,
        parallel: bool,
    ) -> OrderedScanExec {
        let partitions = if parallel { parts.len().max(1) } else { 1 };
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        OrderedScanExec {
            parts,
            columns,
            parallel,
            properties,
        }
    }
}

impl DisplayAs for OrderedScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let mut names: Vec<String> = self
            .parts
            .iter()
            .map(|p| p.path.display().to_string())
            .collect();
        names.dedup();
        let row_wanted = self.columns.contains(&None);
        let how = match (self.parallel, row_wanted) {
            (true, true) => format!(
                "in {} parallel parts, rows numbered by the Parquet reader",
                self.parts.len()
            ),
            (true, false) => format!("in {} parallel parts", self.parts.len()),
            (false, true) => "in order, rows counted".to_string(),
            (false, false) => "in order".to_string(),
        };
        write!(
            f,
            "OrderedScanExec: {} file(s) {how}: [{}]",
            names.len(),
            names.join(", ")
        )
    }
}

impl ExecutionPlan for OrderedScanExec {
    fn name(&self) -> &str {
        "OrderedScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> datafusion::common::Result<TreeNodeRecursion>,
    ) -> datafusion::common::Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> datafusion::common::Result<SendableRecordBatchStream> {
        let count = self.properties.output_partitioning().partition_count();
        if partition >= count {
            return Err(DataFusionError::Internal(format!(
                "OrderedScanExec has {count} partition(s), not {}",
                partition + 1
            )));
        }
        let parts: Vec<Part> = if self.parallel {
            self.parts.get(partition).cloned().into_iter().collect()
        } else {
            self.parts.clone()
        };
        let schema = self.schema();
        let out_schema = schema.clone();
        let columns = self.columns.clone();
        let mut next_row = 0i64;
        let stream = futures::stream::iter(parts)
            .map(move |part| {
                let what = format!("reading {}", part.path.display());
                let first_row = part.first_row;
                part.scan
                    .execute(part.partition, context.clone())
                    .map(move |s| {
                        s.map(move |b| b.map(|b| (b, first_row)))
                            .map_err(move |e| e.context(what.clone()))
                    })
            })
            .try_flatten()
            .map(move |item| {
                let (batch, first_row) = item?;
                let rows = batch.num_rows();
                let positions: Option<ArrayRef> = match first_row {
                    // The reader's row numbers in the file, as positions in the input.
                    Some(first) => {
                        let numbers = batch
                            .column(batch.num_columns() - 1)
                            .as_primitive::<Int64Type>();
                        Some(Arc::new(numbers.unary::<_, Int64Type>(|n| n + first)))
                    }
                    None if columns.contains(&None) => Some(Arc::new(
                        Int64Array::from_iter_values(next_row..next_row + rows as i64),
                    )),
                    None => None,
                };
                next_row += rows as i64;
                let out: Vec<ArrayRef> = columns
                    .iter()
                    .map(|c| match c {
                        Some(i) => batch.column(*i).clone(),
                        None => positions.clone().expect("positions are made when wanted"),
                    })
                    .collect();
                Ok(RecordBatch::try_new_with_options(
                    out_schema.clone(),
                    out,
                    &RecordBatchOptions::new().with_row_count(Some(rows)),
                )?)
            });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}
