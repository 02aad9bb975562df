//! Shuffling rows within windows: the rows of `window` batches form a window, a seeded
//! permutation of them (module `permute`) is cut into batches of `batch_rows`, and the next
//! window is read while the batches of this one are converted.
//!
//! Cutting a window costs nothing but the seed of its permutation, drawn from the shuffle's
//! generator (ChaCha8, so a seed gives the same windows on every machine): a batch is only a
//! reference to its window and its number. The work happens where the batches are converted
//! (in the Python library, on the receiving thread, in parallel with the scan and the
//! cutting): the first batch of a window converted to a matrix permutes the whole window's
//! rows into one row-major matrix, in two cache-friendly passes, and each batch copies its
//! rows out of it. For Arrow output, each primitive column without NULLs is copied to the
//! permutation's buckets once, and each batch gathers its rows from there, within a few
//! cache-sized buckets; other columns (strings, booleans, columns with NULLs) are interleaved
//! from the window's pieces. A window's matrices and bucketed columns go back to a spare list
//! when it is dropped, so the next window's are not fresh memory to fault in.
//!
//! Over SF10 `lineitem` (five columns as `float32`, batches of 100,000 rows, windows of 8,
//! 2 cores) a shuffled pass took 5.0 s when batches gathered their rows at random from a
//! window matrix (one cache miss per row, and the scan waiting while the receiving thread
//! gathered), and about 3.0 s now, against 2.2 s for the rows in order. As Arrow batches of
//! the five columns' own types it took 4.9 s when batches took their rows from the window
//! joined into one batch, and 4.4 s with bucketed columns.

use std::sync::{Arc, Mutex, OnceLock};

use std::ops::Range;

use arrow::array::{
    downcast_primitive_array, Array, ArrayRef, AsArray, PrimitiveArray, RecordBatch,
    RecordBatchOptions, UInt32Array,
};
use arrow::buffer::{Buffer, MutableBuffer, ScalarBuffer};
use arrow::datatypes::SchemaRef;
use arrow::datatypes::{
    ArrowPrimitiveType, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type,
    UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use rand::rngs::ChaCha8Rng;
use rand::{Rng, SeedableRng};

use super::permute::Permutation;
use super::FeedBatch;
use crate::error::{EngineError, Result};
use crate::sink::{column_as, Element, Matrix, MatrixData, NpyType};

pub(super) struct WindowShuffle {
    schema: SchemaRef,
    rng: ChaCha8Rng,
    batch_rows: usize,
    window_rows: usize,
    /// Rows read for the next window.
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    /// The window being handed out, and its next batch.
    current: Option<Arc<Window>>,
    next: usize,
    spare: Arc<Spare>,
    finished: bool,
}

impl WindowShuffle {
    pub(super) fn new(schema: SchemaRef, batch_rows: usize, window: usize, seed: u64) -> Self {
        let batch_rows = batch_rows.max(1);
        Self {
            schema,
            rng: ChaCha8Rng::seed_from_u64(seed),
            batch_rows,
            // Positions in a window are 32-bit.
            window_rows: batch_rows
                .saturating_mul(window.max(1))
                .min(u32::MAX as usize),
            pending: Vec::new(),
            pending_rows: 0,
            current: None,
            next: 0,
            spare: Arc::default(),
            finished: false,
        }
    }

    /// Add rows read from the input.
    pub(super) fn push(&mut self, batch: RecordBatch) {
        self.pending_rows += batch.num_rows();
        self.pending.push(batch);
    }

    /// No more input: what is pending becomes the last (shorter) window.
    pub(super) fn finish(&mut self) {
        self.finished = true;
    }

    /// The next shuffled batch, if one can be made without more input.
    pub(super) fn next_batch(&mut self) -> Result<Option<FeedBatch>> {
        if self.current.is_none() {
            let take = if self.pending_rows >= self.window_rows {
                self.window_rows
            } else if self.finished {
                self.pending_rows
            } else {
                return Ok(None);
            };
            if take == 0 {
                return Ok(None);
            }
            self.start_window(take);
        }
        let Some(window) = self.current.as_ref() else {
            return Ok(None);
        };
        let batch = FeedBatch::taken(Arc::clone(window), self.next);
        self.next += 1;
        if self.next >= window.batches() {
            // The window's rows go once the batches taken from it are gone.
            self.current = None;
            self.next = 0;
        }
        Ok(Some(batch))
    }

    /// Move the first `rows` pending rows into a new window and give each its place.
    fn start_window(&mut self, rows: usize) {
        let mut need = rows;
        let mut rest = Vec::new();
        let mut window = Vec::new();
        for batch in self.pending.drain(..) {
            let n = batch.num_rows();
            if need == 0 {
                rest.push(batch);
            } else if n <= need {
                need -= n;
                window.push(batch);
            } else {
                window.push(batch.slice(0, need));
                rest.push(batch.slice(need, n - need));
                need = 0;
            }
        }
        self.pending = rest;
        self.pending_rows -= rows;
        self.current = Some(Arc::new(Window {
            schema: SchemaRef::clone(&self.schema),
            pieces: window,
            rows,
            batch_rows: self.batch_rows,
            seed: self.rng.next_u64(),
            permutation: OnceLock::new(),
            order: OnceLock::new(),
            bucketed: (0..self.schema.fields().len())
                .map(|_| OnceLock::new())
                .collect(),
            matrices: Mutex::new(Vec::new()),
            spare: Arc::clone(&self.spare),
        }));
        self.next = 0;
    }
}

/// The rows of one shuffle window, shared by the batches taken from it, with what was built
/// from them once: the permutation, the rows joined into one batch, permuted matrices.
#[derive(Debug)]
pub(super) struct Window {
    schema: SchemaRef,
    pieces: Vec<RecordBatch>,
    rows: usize,
    batch_rows: usize,
    /// Seed of the window's permutation, drawn from the shuffle's generator when the window
    /// was cut, so that the permutation is made where the window is converted.
    seed: u64,
    permutation: OnceLock<Permutation>,
    /// The window's rows at each place, for the Arrow columns that are not bucketed.
    order: OnceLock<Vec<u32>>,
    /// Each column's values in the permutation's buckets, made for the first Arrow batch;
    /// `None` for a column of another type than a primitive one or with NULLs.
    bucketed: Vec<OnceLock<Option<ArrayRef>>>,
    /// Permuted matrices by columns and element type: batch `i` is rows
    /// `i * batch_rows..(i + 1) * batch_rows` of each.
    matrices: Mutex<Vec<WindowMatrix>>,
    /// Where the matrices' buffers go when the window is dropped.
    spare: Arc<Spare>,
}

/// A permuted matrix of a window: its columns, element type and rows.
type WindowMatrix = (Vec<usize>, NpyType, Arc<Matrix>);

impl Window {
    pub(super) fn schema(&self) -> SchemaRef {
        SchemaRef::clone(&self.schema)
    }

    fn batches(&self) -> usize {
        self.rows.div_ceil(self.batch_rows)
    }

    /// Rows of batch `batch`.
    pub(super) fn batch_len(&self, batch: usize) -> usize {
        self.batch_rows
            .min(self.rows.saturating_sub(batch * self.batch_rows))
    }

    fn permutation(&self) -> &Permutation {
        self.permutation
            .get_or_init(|| Permutation::new(self.seed, self.rows))
    }

    /// Places of the permutation that batch `batch` holds.
    fn places(&self, batch: usize) -> Range<usize> {
        let start = batch * self.batch_rows;
        start..start + self.batch_len(batch)
    }

    /// Batch `batch` as a record batch of the window's `columns`: gathered from a column's
    /// buckets when it has them, else interleaved from the window's pieces.
    pub(super) fn take(&self, columns: &[usize], batch: usize) -> Result<RecordBatch> {
        let places = self.places(batch);
        let permutation = self.permutation();
        let gather = UInt32Array::from(permutation.gather(places.clone()).to_vec());
        let mut from_pieces: Option<Vec<(usize, usize)>> = None;
        let mut arrays = Vec::with_capacity(columns.len());
        for &c in columns {
            let bucketed = self.bucketed[c]
                .get_or_init(|| {
                    let arrays: Vec<&ArrayRef> = self.pieces.iter().map(|p| p.column(c)).collect();
                    bucketed_column(permutation, &arrays, &self.spare)
                })
                .as_ref();
            arrays.push(match bucketed {
                Some(values) => arrow::compute::take(values.as_ref(), &gather, None)?,
                None => {
                    let indices =
                        from_pieces.get_or_insert_with(|| self.piece_rows(places.clone()));
                    let pieces: Vec<&dyn Array> =
                        self.pieces.iter().map(|p| p.column(c).as_ref()).collect();
                    arrow::compute::interleave(&pieces, indices)?
                }
            });
        }
        let options = RecordBatchOptions::new().with_row_count(Some(places.len()));
        Ok(RecordBatch::try_new_with_options(
            Arc::new(self.schema.project(columns)?),
            arrays,
            &options,
        )?)
    }

    /// (piece, row in the piece) of the rows at `places`.
    fn piece_rows(&self, places: Range<usize>) -> Vec<(usize, usize)> {
        let order = self.order.get_or_init(|| self.permutation().order());
        let mut starts = Vec::with_capacity(self.pieces.len() + 1);
        starts.push(0);
        for piece in &self.pieces {
            starts.push(starts[starts.len() - 1] + piece.num_rows());
        }
        order[places]
            .iter()
            .map(|&row| {
                let row = row as usize;
                let piece = starts.partition_point(|&s| s <= row) - 1;
                (piece, row - starts[piece])
            })
            .collect()
    }

    /// Batch `batch`'s matrix of `columns` as `dtype`: its rows of the window's permuted
    /// matrix, which the window's first batch converted makes for all of them.
    pub(super) fn matrix(&self, columns: &[usize], dtype: NpyType, batch: usize) -> Result<Matrix> {
        let window = {
            let mut matrices = self.matrices.lock().unwrap_or_else(|e| e.into_inner());
            match matrices
                .iter()
                .find(|(c, t, _)| c.as_slice() == columns && *t == dtype)
            {
                Some((_, _, m)) => Arc::clone(m),
                None => {
                    let pieces = self
                        .pieces
                        .iter()
                        .map(|p| p.project(columns))
                        .collect::<std::result::Result<Vec<_>, _>>()?;
                    let m = Arc::new(permuted_matrix(
                        &pieces,
                        dtype,
                        self.permutation(),
                        &self.spare,
                    )?);
                    matrices.push((columns.to_vec(), dtype, Arc::clone(&m)));
                    m
                }
            }
        };
        let rows = self.places(batch);
        let w = window.columns;
        let data = match &window.data {
            MatrixData::Float32(v) => MatrixData::Float32(v[rows.start * w..rows.end * w].to_vec()),
            MatrixData::Float64(v) => MatrixData::Float64(v[rows.start * w..rows.end * w].to_vec()),
            MatrixData::Int8(v) => MatrixData::Int8(v[rows.start * w..rows.end * w].to_vec()),
            MatrixData::Int16(v) => MatrixData::Int16(v[rows.start * w..rows.end * w].to_vec()),
            MatrixData::Int32(v) => MatrixData::Int32(v[rows.start * w..rows.end * w].to_vec()),
            MatrixData::Int64(v) => MatrixData::Int64(v[rows.start * w..rows.end * w].to_vec()),
            MatrixData::UInt8(v) => MatrixData::UInt8(v[rows.start * w..rows.end * w].to_vec()),
            MatrixData::UInt16(v) => MatrixData::UInt16(v[rows.start * w..rows.end * w].to_vec()),
            MatrixData::UInt32(v) => MatrixData::UInt32(v[rows.start * w..rows.end * w].to_vec()),
            MatrixData::UInt64(v) => MatrixData::UInt64(v[rows.start * w..rows.end * w].to_vec()),
        };
        Ok(Matrix {
            rows: rows.len(),
            columns: w,
            data,
        })
    }
}

/// The values of a column's `pieces` in the permutation's buckets, when they are of a
/// primitive type (numbers, decimals, dates, times) without NULLs, in a spare buffer when
/// there is one.
fn bucketed_column(
    permutation: &Permutation,
    pieces: &[&ArrayRef],
    spare: &Spare,
) -> Option<ArrayRef> {
    fn values<T: ArrowPrimitiveType>(
        permutation: &Permutation,
        first: &PrimitiveArray<T>,
        pieces: &[&ArrayRef],
        spare: &Spare,
    ) -> Option<ArrayRef> {
        let columns: Vec<Vec<&[T::Native]>> = pieces
            .iter()
            .map(|p| Some(vec![p.as_primitive_opt::<T>()?.values().as_ref()]))
            .collect::<Option<_>>()?;
        let mut buffer = spare.take_buffer(permutation.len() * std::mem::size_of::<T::Native>());
        permutation.bucket_into_slice(&columns, buffer.typed_data_mut::<T::Native>());
        let values = ScalarBuffer::<T::Native>::from(Buffer::from(buffer));
        let array =
            PrimitiveArray::<T>::new(values, None).with_data_type(first.data_type().clone());
        Some(Arc::new(array))
    }
    let first = pieces.first()?;
    if pieces.iter().any(|p| p.null_count() > 0) {
        return None;
    }
    downcast_primitive_array!(
        first => values(permutation, first, pieces, spare),
        _ => None
    )
}

/// The rows of `pieces` as a row-major matrix of `dtype`, permuted by `permutation`, in a
/// spare buffer when there is one.
fn permuted_matrix(
    pieces: &[RecordBatch],
    dtype: NpyType,
    permutation: &Permutation,
    spare: &Spare,
) -> Result<Matrix> {
    fn run<T: ArrowPrimitiveType>(
        pieces: &[RecordBatch],
        dtype: NpyType,
        permutation: &Permutation,
        spare: &Spare,
    ) -> Result<MatrixData>
    where
        T::Native: Element,
    {
        let converted = pieces
            .iter()
            .map(|piece| {
                piece
                    .columns()
                    .iter()
                    .zip(piece.schema().fields())
                    .map(|(column, field)| column_as(column, field.name(), dtype))
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        let values: Vec<Vec<&[T::Native]>> = converted
            .iter()
            .map(|columns| {
                columns
                    .iter()
                    .map(|c| c.as_primitive::<T>().values().as_ref())
                    .collect()
            })
            .collect();
        let rows: usize = pieces.iter().map(|p| p.num_rows()).sum();
        let width = pieces.first().map_or(0, |p| p.num_columns());
        if rows != permutation.len() || pieces.iter().any(|p| p.num_columns() != width) {
            return Err(EngineError::Internal(format!(
                "a window of {rows} rows does not fit its permutation of {} rows, or its pieces differ in width",
                permutation.len()
            )));
        }
        let mut out = spare.take::<T::Native>();
        permutation.apply_into(&values, &mut out);
        Ok(T::Native::wrap(out))
    }
    let data = match dtype {
        NpyType::Float32 => run::<Float32Type>(pieces, dtype, permutation, spare)?,
        NpyType::Float64 => run::<Float64Type>(pieces, dtype, permutation, spare)?,
        NpyType::Int8 => run::<Int8Type>(pieces, dtype, permutation, spare)?,
        NpyType::Int16 => run::<Int16Type>(pieces, dtype, permutation, spare)?,
        NpyType::Int32 => run::<Int32Type>(pieces, dtype, permutation, spare)?,
        NpyType::Int64 => run::<Int64Type>(pieces, dtype, permutation, spare)?,
        NpyType::UInt8 => run::<UInt8Type>(pieces, dtype, permutation, spare)?,
        NpyType::UInt16 => run::<UInt16Type>(pieces, dtype, permutation, spare)?,
        NpyType::UInt32 => run::<UInt32Type>(pieces, dtype, permutation, spare)?,
        NpyType::UInt64 => run::<UInt64Type>(pieces, dtype, permutation, spare)?,
    };
    Ok(Matrix {
        rows: permutation.len(),
        columns: pieces.first().map_or(0, |b| b.num_columns()),
        data,
    })
}

/// Buffers of window matrices no longer used, kept for the next windows' matrices: fresh
/// memory would be faulted in and zeroed by the kernel page by page (a 16 MB window every
/// few tens of milliseconds, after the allocator has given the last one back).
#[derive(Debug, Default)]
pub(super) struct Spare {
    matrices: Mutex<Vec<MatrixData>>,
    /// Buffers of bucketed Arrow columns.
    columns: Mutex<Vec<MutableBuffer>>,
}

/// Spare matrix buffers kept: the matrices of one window (features and target).
const SPARE_BUFFERS: usize = 2;

/// Spare column buffers kept: the bucketed columns of a window of up to this many columns.
const SPARE_COLUMN_BUFFERS: usize = 16;

impl Spare {
    /// A spare buffer of `T`s, or an empty one.
    fn take<T: Element>(&self) -> Vec<T> {
        let mut spare = self.matrices.lock().unwrap_or_else(|e| e.into_inner());
        let mut found = None;
        for data in std::mem::take(&mut *spare) {
            match found {
                None => match T::unwrap(data) {
                    Ok(values) => found = Some(values),
                    Err(data) => spare.push(data),
                },
                Some(_) => spare.push(data),
            }
        }
        found.unwrap_or_default()
    }

    fn give(&self, data: MatrixData) {
        let mut spare = self.matrices.lock().unwrap_or_else(|e| e.into_inner());
        if spare.len() < SPARE_BUFFERS {
            spare.push(data);
        }
    }

    /// A buffer of `bytes` bytes, spare if there is one (its bytes are not zeroed again, as
    /// every one of them is overwritten).
    fn take_buffer(&self, bytes: usize) -> MutableBuffer {
        let spare = self.columns.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut buffer = spare.unwrap_or_else(|| MutableBuffer::new(bytes));
        buffer.resize(bytes, 0);
        buffer
    }

    fn give_buffer(&self, buffer: MutableBuffer) {
        let mut spare = self.columns.lock().unwrap_or_else(|e| e.into_inner());
        if spare.len() < SPARE_COLUMN_BUFFERS {
            spare.push(buffer);
        }
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        let matrices = std::mem::take(self.matrices.get_mut().unwrap_or_else(|e| e.into_inner()));
        for (_, _, matrix) in matrices {
            if let Ok(matrix) = Arc::try_unwrap(matrix) {
                self.spare.give(matrix.data);
            }
        }
        for column in std::mem::take(&mut self.bucketed) {
            let Some(Some(array)) = column.into_inner() else {
                continue;
            };
            let data = array.into_data();
            let buffer = data.buffers().first().cloned();
            drop(data);
            if let Some(Ok(buffer)) = buffer.map(Buffer::into_mutable) {
                self.spare.give_buffer(buffer);
            }
        }
    }
}
