//! The one error type of the crate.
//!
//! Every operation returns [`Result`]. Bad input gets a variant of its own (an unknown
//! column, mismatched lengths, an unsupported type, an invalid expression); GPU failures are
//! [`Error::NoAdapter`], [`Error::DeviceLost`], [`Error::OutOfMemory`] and [`Error::Gpu`].

use arrow::datatypes::DataType;
use arrow::error::ArrowError;

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in an operation.
///
/// # Example
/// ```
/// use arrow_wgpu::{col, lit, Engine, Backend, Error};
/// # use std::sync::Arc;
/// # use arrow::array::Int32Array;
/// # use arrow::record_batch::RecordBatch;
/// let batch = RecordBatch::try_from_iter([("a", Arc::new(Int32Array::from(vec![1, 2])) as _)]).unwrap();
/// let engine = Engine::new(Backend::Cpu).unwrap();
/// let err = engine.filter(&batch, &col("missing").gt(lit(1))).unwrap_err();
/// assert!(matches!(err, Error::UnknownColumn { .. }));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A column of a type that the operation does not support.
    #[error("{operation}: column '{column}' has type {data_type}, which is not supported{where_}")]
    UnsupportedType {
        /// The operation that was asked for (`filter`, `upload`, ...).
        operation: &'static str,
        /// The column's name.
        column: String,
        /// The column's type.
        data_type: DataType,
        /// Where it is unsupported: empty, or " on the GPU adapter ...".
        where_: String,
    },
    /// An expression or operation the chosen backend cannot run (for example float
    /// arithmetic on the GPU, which WGSL does not round exactly like the CPU).
    #[error("{operation} cannot run on the GPU: {reason}")]
    UnsupportedOnGpu {
        /// The operation that was asked for.
        operation: &'static str,
        /// Why it cannot run there.
        reason: String,
    },
    /// A column named in an expression or key list that the batch does not have.
    #[error("unknown column '{name}'; the batch has: {available}")]
    UnknownColumn {
        /// The name asked for.
        name: String,
        /// The names the batch has, comma-separated.
        available: String,
    },
    /// Arrays whose lengths should agree and don't.
    #[error("{what}: expected {expected} rows, got {actual}")]
    LengthMismatch {
        /// What was compared.
        what: String,
        /// The length expected.
        expected: usize,
        /// The length found.
        actual: usize,
    },
    /// An expression that does not type-check (comparing a string with a number, a
    /// predicate that is not boolean, arithmetic on booleans, ...).
    #[error("invalid expression: {0}")]
    InvalidExpression(String),
    /// An operation that needs at least one key column (sort, group-by, distinct) was
    /// given none.
    #[error("{0}: no key columns given")]
    NoKeys(&'static str),
    /// A batch whose schema is not the one an operation was planned for (a batch pushed
    /// into a [`crate::GroupByAccumulator`] made for another schema).
    #[error("schema mismatch: {0}")]
    SchemaMismatch(String),
    /// Integer division by zero in an expression (as arrow's `div`).
    #[error("divide by zero")]
    DivideByZero,
    /// Integer overflow in a checked operation (`i32::MIN / -1`, as arrow's `div`).
    #[error("arithmetic overflow: {0}")]
    ArithmeticOverflow(String),
    /// `Backend::Gpu` was asked for and no GPU adapter was found.
    #[error("no GPU adapter found{0}")]
    NoAdapter(String),
    /// The GPU device was lost (driver reset, removed, timeout).
    #[error("GPU device lost: {0}")]
    DeviceLost(String),
    /// The GPU ran out of memory for this operation.
    #[error("GPU out of memory: {0}")]
    OutOfMemory(String),
    /// Any other error reported by wgpu (validation, internal).
    #[error("GPU error: {0}")]
    Gpu(String),
    /// A window aggregator's checkpoint that can't be written or read: the file, and why
    /// (an I/O error, not a checkpoint, one of another version or another aggregation).
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The checkpoint file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// An error from an arrow-rs kernel on the CPU path.
    #[error(transparent)]
    Arrow(ArrowError),
}

impl From<ArrowError> for Error {
    fn from(e: ArrowError) -> Self {
        match e {
            ArrowError::DivideByZero => Error::DivideByZero,
            ArrowError::ArithmeticOverflow(m) => Error::ArithmeticOverflow(m),
            other => Error::Arrow(other),
        }
    }
}

impl From<wgpu::Error> for Error {
    fn from(e: wgpu::Error) -> Self {
        match e {
            wgpu::Error::OutOfMemory { .. } => Error::OutOfMemory(e.to_string()),
            other => Error::Gpu(other.to_string()),
        }
    }
}

impl Error {
    /// [`Error::UnknownColumn`] for `name`, listing the columns `schema` has.
    pub(crate) fn unknown_column(name: &str, schema: &arrow::datatypes::Schema) -> Error {
        Error::UnknownColumn {
            name: name.to_string(),
            available: schema
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    /// Whether `Backend::Auto` may answer this error by running the operation on the CPU:
    /// true for GPU-side trouble (no support, lost device, out of memory), false for bad
    /// input, which would fail on the CPU too.
    pub fn is_gpu_side(&self) -> bool {
        matches!(
            self,
            Error::UnsupportedOnGpu { .. }
                | Error::NoAdapter(_)
                | Error::DeviceLost(_)
                | Error::OutOfMemory(_)
                | Error::Gpu(_)
        ) || matches!(self, Error::UnsupportedType { where_, .. } if !where_.is_empty())
    }
}
