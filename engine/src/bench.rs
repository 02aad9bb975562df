//! Entry points into internals for ooc's criterion micro-benchmarks (`benches/micro`), which
//! measure kernels that have no public API: compiled expressions, the in-place arithmetic
//! kernel and spill files. Compiled only with the `bench` feature, hidden from the docs, and
//! not a stable API: the benchmarks are its only users.

use arrow::array::{ArrayRef, BooleanArray, PrimitiveArray, RecordBatch};
use arrow::datatypes::{ArrowPrimitiveType, Schema};
use arrow::error::ArrowError;

use crate::error::Result;
use crate::eval::constant::fold_expr;
use crate::eval::{create_physical_expr, in_place, PhysicalExpr};
use crate::logical::expr::Expr;
use crate::logical::schema::PlanSchema;
use crate::logical::types::coerce;
use crate::memory::{SpillFile, SpillManager};

/// An expression compiled as the planner compiles it: type-checked, constant-folded, its
/// columns resolved to positions of `schema`.
#[derive(Debug)]
pub struct CompiledExpr(PhysicalExpr);

impl CompiledExpr {
    /// Compile `expr` over batches of `schema`.
    pub fn compile(expr: Expr, schema: &Schema) -> Result<Self> {
        let schema = PlanSchema::from_arrow(None, schema);
        let expr = fold_expr(coerce(expr, &schema)?)?;
        Ok(Self(create_physical_expr(&expr, &schema)?))
    }

    /// Evaluate on `batch`.
    pub fn evaluate(&self, batch: &RecordBatch) -> Result<ArrayRef> {
        self.0.evaluate(batch)?.into_array(batch.num_rows())
    }

    /// Evaluate a predicate on `batch` into a filter mask (NULL counts as false).
    pub fn evaluate_mask(&self, batch: &RecordBatch) -> Result<BooleanArray> {
        self.0.evaluate_mask(batch)
    }
}

/// The engine's in-place binary kernel (see `eval::in_place::binary`): writes into an operand
/// that nothing else holds, allocates otherwise.
pub fn in_place_binary<T, F>(
    a: ArrayRef,
    b: ArrayRef,
    f: F,
) -> std::result::Result<PrimitiveArray<T>, ArrowError>
where
    T: ArrowPrimitiveType,
    F: Fn(T::Native, T::Native) -> T::Native,
{
    in_place::binary(a, b, f)
}

/// Spill files in the system temporary directory, as operators write them.
#[derive(Debug)]
pub struct SpillFiles(SpillManager);

impl Default for SpillFiles {
    fn default() -> Self {
        Self(SpillManager::new(None, u64::MAX))
    }
}

impl SpillFiles {
    /// Write `batches` (at least one, all of one schema) to a new spill file.
    pub fn write(&self, batches: &[RecordBatch]) -> Result<WrittenSpill> {
        let mut writer = self.0.create("bench", &batches[0].schema())?;
        for batch in batches {
            writer.write(batch)?;
        }
        Ok(WrittenSpill(writer.finish()?))
    }
}

/// A finished spill file (deleted when dropped).
#[derive(Debug)]
pub struct WrittenSpill(SpillFile);

impl WrittenSpill {
    /// Compressed bytes on disk.
    pub fn bytes(&self) -> u64 {
        self.0.bytes()
    }

    /// Read the batches back, handing each to `f`; returns the rows read.
    pub fn read(&self, mut f: impl FnMut(&RecordBatch)) -> Result<usize> {
        let mut rows = 0;
        for batch in self.0.read()? {
            let batch = batch?;
            rows += batch.num_rows();
            f(&batch);
        }
        Ok(rows)
    }
}
