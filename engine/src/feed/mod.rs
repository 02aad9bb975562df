//! Batches for models: a query's rows in batches of an exact size, optionally shuffled, ready
//! to become the arrays that out-of-core learners (`partial_fit`, data loaders) consume.
//!
//! [`Feed`] wraps any stream of record batches. With a batch size it cuts and joins the
//! stream's batches into batches of exactly that many rows (module `rebatch`); the last one may be
//! shorter, or dropped. A [`FeedBatch`] keeps the pieces it was assembled from instead of
//! copying them into one: [`FeedBatch::to_matrix`] writes them straight into a row-major
//! [`Matrix`], the only copy on the way to NumPy, and [`FeedBatch::into_record_batch`] copies
//! only when there is more than one piece. With a shuffle, rows are permuted within windows
//! of a fixed number of batches (module `shuffle`); with the query's row order
//! ([`crate::config::RowOrder::Shuffled`]) also shuffling the order in which the files'
//! slices are read, the same seed gives the same rows in the same order, in bounded memory.
//!
//! The feed knows batches only: it sits above any query (or any iterator of batches).

mod permute;
mod rebatch;
mod shuffle;

use std::collections::VecDeque;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Field, Schema, SchemaRef};

use crate::config::RowOrder;
use crate::error::{EngineError, Result};
use crate::sink::{column_as, Matrix, NpyType};

use self::rebatch::Rebatcher;
use self::shuffle::{Window, WindowShuffle};

/// Rows of a shuffled batch when no batch size is asked for.
pub const DEFAULT_SHUFFLE_BATCH_ROWS: usize = 8192;

/// Batches of a shuffle window when none is given.
pub const DEFAULT_SHUFFLE_WINDOW: usize = 8;

/// How a [`Feed`] cuts and orders its batches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FeedOptions {
    /// Rows per batch (`None`: the batches as the query makes them, minus empty ones).
    pub batch_size: Option<usize>,
    /// Drop the last batch when it is shorter than `batch_size`.
    pub drop_last: bool,
    /// Shuffle rows within windows of batches.
    pub shuffle: Option<ShuffleOptions>,
}

impl FeedOptions {
    /// The row order the query behind a feed runs with: the files' order, or with a shuffle
    /// the files' slices in an order drawn from its seed.
    pub fn row_order(&self) -> RowOrder {
        match self.shuffle {
            Some(shuffle) => RowOrder::Shuffled { seed: shuffle.seed },
            None => RowOrder::Source,
        }
    }
}

/// A shuffle within windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShuffleOptions {
    /// Seed of the permutations: the same input and seed give the same output.
    pub seed: u64,
    /// Batches per window: the rows of this many batches are permuted together, and held.
    pub window: usize,
}

impl ShuffleOptions {
    /// A shuffle with `seed` and windows of [`DEFAULT_SHUFFLE_WINDOW`] batches.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            window: DEFAULT_SHUFFLE_WINDOW,
        }
    }
}

/// One batch of a feed: the pieces (slices of the query's batches) it consists of, or rows
/// taken from a shuffle window.
#[derive(Clone, Debug)]
pub struct FeedBatch {
    schema: SchemaRef,
    rows: Rows,
}

#[derive(Clone, Debug)]
enum Rows {
    /// Slices of the query's batches, in order.
    Pieces(Vec<RecordBatch>),
    /// Batch `batch` of `window`, columns `columns` of the window's.
    Taken {
        window: Arc<Window>,
        columns: Vec<usize>,
        batch: usize,
    },
}

impl FeedBatch {
    fn new(schema: SchemaRef, pieces: Vec<RecordBatch>) -> Self {
        Self {
            schema,
            rows: Rows::Pieces(pieces),
        }
    }

    fn taken(window: Arc<Window>, batch: usize) -> Self {
        Self {
            schema: window.schema(),
            rows: Rows::Taken {
                columns: (0..window.schema().fields().len()).collect(),
                window,
                batch,
            },
        }
    }

    /// Number of rows.
    pub fn num_rows(&self) -> usize {
        match &self.rows {
            Rows::Pieces(pieces) => pieces.iter().map(|p| p.num_rows()).sum(),
            Rows::Taken { window, batch, .. } => window.batch_len(*batch),
        }
    }

    /// The schema.
    pub fn schema(&self) -> SchemaRef {
        SchemaRef::clone(&self.schema)
    }

    /// How many of the query's batches the rows are slices of, without a copy (0 when they
    /// are dealt from a shuffle window).
    pub fn piece_count(&self) -> usize {
        match &self.rows {
            Rows::Pieces(pieces) => pieces.len(),
            Rows::Taken { .. } => 0,
        }
    }

    /// One record batch: the piece itself when there is one, else a copy of the rows.
    pub fn into_record_batch(self) -> Result<RecordBatch> {
        match self.rows {
            Rows::Pieces(mut pieces) => {
                if pieces.len() == 1 {
                    if let Some(piece) = pieces.pop() {
                        return Ok(piece);
                    }
                }
                Ok(arrow::compute::concat_batches(&self.schema, &pieces)?)
            }
            Rows::Taken {
                window,
                columns,
                batch,
            } => window.take(&columns, batch),
        }
    }

    /// One record batch with every column converted to `dtype` (an error names a column that
    /// holds a NULL, is not a number or has a value `dtype` cannot hold).
    pub fn into_record_batch_as(self, dtype: NpyType) -> Result<RecordBatch> {
        let batch = self.into_record_batch()?;
        let columns = batch
            .columns()
            .iter()
            .zip(batch.schema().fields())
            .map(|(c, f)| column_as(c, f.name(), dtype))
            .collect::<Result<Vec<_>>>()?;
        let fields: Vec<Field> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), dtype.arrow(), false))
            .collect();
        Ok(RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            columns,
        )?)
    }

    /// The columns at `indices` (no copy).
    pub fn project(&self, indices: &[usize]) -> Result<FeedBatch> {
        let schema = Arc::new(self.schema.project(indices)?);
        let rows = match &self.rows {
            Rows::Pieces(pieces) => Rows::Pieces(
                pieces
                    .iter()
                    .map(|p| p.project(indices))
                    .collect::<std::result::Result<Vec<_>, _>>()?,
            ),
            Rows::Taken {
                window,
                columns,
                batch,
            } => Rows::Taken {
                window: Arc::clone(window),
                columns: indices.iter().map(|&i| columns[i]).collect(),
                batch: *batch,
            },
        };
        Ok(FeedBatch { schema, rows })
    }

    /// The rows as a row-major matrix of `dtype`, columns in schema order. The first batch
    /// of a shuffle window converted deals the matrices of all its batches, in one pass over
    /// the window's rows; the others take theirs.
    pub fn to_matrix(&self, dtype: NpyType) -> Result<Matrix> {
        match &self.rows {
            Rows::Pieces(pieces) => {
                let mut matrix = Matrix::from_batches(pieces, dtype)?;
                matrix.columns = self.schema.fields().len();
                Ok(matrix)
            }
            Rows::Taken {
                window,
                columns,
                batch,
            } => window.matrix(columns, dtype, *batch),
        }
    }
}

/// A stream of batches of exact sizes, optionally shuffled (see the module docs).
pub struct Feed<I> {
    input: I,
    schema: SchemaRef,
    options: FeedOptions,
    rebatcher: Option<Rebatcher>,
    shuffle: Option<WindowShuffle>,
    ready: VecDeque<FeedBatch>,
    input_done: bool,
    failed: bool,
}

impl<I: Iterator<Item = Result<RecordBatch>>> Feed<I> {
    /// Cut and order the batches of `input` (of `schema`) as `options` ask.
    pub fn new(input: I, schema: SchemaRef, options: FeedOptions) -> Result<Self> {
        if options.batch_size == Some(0) {
            return Err(EngineError::Plan("a batch size must be at least 1".into()));
        }
        if options.drop_last && options.batch_size.is_none() {
            return Err(EngineError::Plan(
                "drop_last needs a batch size: without one no batch is short".into(),
            ));
        }
        if options.shuffle.is_some_and(|s| s.window == 0) {
            return Err(EngineError::Plan(
                "a shuffle window must hold at least 1 batch".into(),
            ));
        }
        let shuffle = options.shuffle.map(|s| {
            WindowShuffle::new(
                SchemaRef::clone(&schema),
                options.batch_size.unwrap_or(DEFAULT_SHUFFLE_BATCH_ROWS),
                s.window,
                s.seed,
            )
        });
        let rebatcher = match (&shuffle, options.batch_size) {
            (None, Some(size)) => Some(Rebatcher::new(SchemaRef::clone(&schema), size)),
            _ => None,
        };
        Ok(Self {
            input,
            schema,
            options,
            rebatcher,
            shuffle,
            ready: VecDeque::new(),
            input_done: false,
            failed: false,
        })
    }

    /// The schema of the batches.
    pub fn schema(&self) -> SchemaRef {
        SchemaRef::clone(&self.schema)
    }

    /// Take batches from the input until one is ready (or the input ends).
    fn fill(&mut self) -> Result<()> {
        while self.ready.is_empty() && !self.input_done {
            if let Some(shuffle) = self.shuffle.as_mut() {
                if let Some(batch) = shuffle.next_batch()? {
                    self.ready.push_back(batch);
                    break;
                }
            }
            match self.input.next() {
                Some(batch) => {
                    let batch = batch?;
                    if batch.num_rows() == 0 {
                        continue;
                    }
                    if let Some(shuffle) = self.shuffle.as_mut() {
                        shuffle.push(batch);
                    } else if let Some(rebatcher) = self.rebatcher.as_mut() {
                        rebatcher.push(batch);
                        while let Some(full) = rebatcher.pop_full() {
                            self.ready.push_back(full);
                        }
                    } else {
                        self.ready
                            .push_back(FeedBatch::new(SchemaRef::clone(&self.schema), vec![batch]));
                    }
                }
                None => {
                    self.input_done = true;
                    if let Some(rebatcher) = self.rebatcher.as_mut() {
                        self.ready.extend(rebatcher.finish());
                    }
                    if let Some(shuffle) = self.shuffle.as_mut() {
                        shuffle.finish();
                    }
                }
            }
        }
        if self.ready.is_empty() {
            if let Some(shuffle) = self.shuffle.as_mut() {
                self.ready.extend(shuffle.next_batch()?);
            }
        }
        Ok(())
    }
}

impl<I: Iterator<Item = Result<RecordBatch>>> Iterator for Feed<I> {
    type Item = Result<FeedBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if let Err(e) = self.fill() {
            self.failed = true;
            return Some(Err(e));
        }
        let batch = self.ready.pop_front()?;
        // Only the last batch can be short.
        match (self.options.drop_last, self.options.batch_size) {
            (true, Some(size)) if batch.num_rows() < size => None,
            _ => Some(Ok(batch)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Array, AsArray, Int64Array};
    use arrow::datatypes::{DataType, Field, Int64Type, Schema};

    use super::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]))
    }

    /// Batches of the given sizes holding 0, 1, 2, ... in order.
    fn input(sizes: &[usize]) -> Vec<Result<RecordBatch>> {
        let mut next = 0i64;
        sizes
            .iter()
            .map(|&n| {
                let values: Vec<i64> = (next..next + n as i64).collect();
                next += n as i64;
                Ok(RecordBatch::try_new(
                    schema(),
                    vec![Arc::new(Int64Array::from(values))],
                )?)
            })
            .collect()
    }

    fn values(batch: FeedBatch) -> Vec<i64> {
        let b = batch.into_record_batch().unwrap();
        b.column(0).as_primitive::<Int64Type>().values().to_vec()
    }

    fn run(sizes: &[usize], options: FeedOptions) -> Vec<Vec<i64>> {
        Feed::new(input(sizes).into_iter(), schema(), options)
            .unwrap()
            .map(|b| values(b.unwrap()))
            .collect()
    }

    #[test]
    fn batches_have_the_exact_size_and_keep_the_order() {
        let out = run(
            &[3, 0, 7, 2, 5],
            FeedOptions {
                batch_size: Some(4),
                ..FeedOptions::default()
            },
        );
        let sizes: Vec<usize> = out.iter().map(|b| b.len()).collect();
        assert_eq!(sizes, vec![4, 4, 4, 4, 1]);
        assert_eq!(out.concat(), (0..17).collect::<Vec<i64>>());
        let dropped = run(
            &[3, 0, 7, 2, 5],
            FeedOptions {
                batch_size: Some(4),
                drop_last: true,
                ..FeedOptions::default()
            },
        );
        assert_eq!(dropped.len(), 4);
    }

    #[test]
    fn a_batch_inside_one_input_batch_is_a_slice_of_it() {
        let feed = Feed::new(
            input(&[10]).into_iter(),
            schema(),
            FeedOptions {
                batch_size: Some(4),
                ..FeedOptions::default()
            },
        )
        .unwrap();
        let pieces: Vec<usize> = feed.map(|b| b.unwrap().piece_count()).collect();
        assert_eq!(pieces, vec![1, 1, 1]);
    }

    #[test]
    fn a_shuffle_keeps_every_row_and_repeats_with_its_seed() {
        let options = |seed| FeedOptions {
            batch_size: Some(5),
            shuffle: Some(ShuffleOptions { seed, window: 3 }),
            ..FeedOptions::default()
        };
        let sizes = [7, 9, 1, 13, 8, 4];
        let a = run(&sizes, options(7));
        let sizes_out: Vec<usize> = a.iter().map(|b| b.len()).collect();
        assert_eq!(sizes_out, vec![5, 5, 5, 5, 5, 5, 5, 5, 2]);
        let mut all = a.concat();
        assert_ne!(all, (0..42).collect::<Vec<i64>>());
        all.sort();
        assert_eq!(all, (0..42).collect::<Vec<i64>>());
        assert_eq!(a, run(&sizes, options(7)));
        assert_ne!(a, run(&sizes, options(8)));
        // A window mixes only its own rows: the first 15 rows out are the first 15 in.
        let mut first: Vec<i64> = a[..3].concat();
        first.sort();
        assert_eq!(first, (0..15).collect::<Vec<i64>>());
    }

    #[test]
    fn shuffled_arrow_columns_of_every_kind_keep_their_rows_together() {
        // A primitive column (bucketed), a string column and a column with NULLs (both
        // interleaved from the pieces) must put the same rows at the same places.
        let schema = Arc::new(Schema::new(vec![
            Field::new("v", DataType::Int64, false),
            Field::new("s", DataType::Utf8, false),
            Field::new("n", DataType::Int64, true),
            Field::new("d", DataType::Decimal128(15, 2), false),
        ]));
        let mut next = 0i64;
        let input: Vec<Result<RecordBatch>> = [7usize, 12, 1, 20]
            .iter()
            .map(|&rows| {
                let v: Vec<i64> = (next..next + rows as i64).collect();
                next += rows as i64;
                let s: Vec<String> = v.iter().map(|x| format!("row {x}")).collect();
                let n: Vec<Option<i64>> =
                    v.iter().map(|&x| (x % 3 != 0).then_some(x * 2)).collect();
                let d = arrow::array::Decimal128Array::from(
                    v.iter().map(|&x| i128::from(x) * 101).collect::<Vec<_>>(),
                )
                .with_precision_and_scale(15, 2)?;
                Ok(RecordBatch::try_new(
                    SchemaRef::clone(&schema),
                    vec![
                        Arc::new(Int64Array::from(v)),
                        Arc::new(arrow::array::StringArray::from(s)),
                        Arc::new(Int64Array::from(n)),
                        Arc::new(d),
                    ],
                )?)
            })
            .collect();
        let options = FeedOptions {
            batch_size: Some(8),
            shuffle: Some(ShuffleOptions {
                seed: 11,
                window: 3,
            }),
            ..FeedOptions::default()
        };
        let mut seen = Vec::new();
        for batch in Feed::new(input.into_iter(), SchemaRef::clone(&schema), options).unwrap() {
            let b = batch.unwrap().into_record_batch().unwrap();
            assert_eq!(b.schema(), schema);
            let v = b.column(0).as_primitive::<Int64Type>();
            let s = b.column(1).as_string::<i32>();
            let n = b.column(2).as_primitive::<Int64Type>();
            let d = b
                .column(3)
                .as_primitive::<arrow::datatypes::Decimal128Type>();
            assert_eq!(d.data_type(), &DataType::Decimal128(15, 2));
            for i in 0..b.num_rows() {
                let x = v.value(i);
                assert_eq!(s.value(i), format!("row {x}"));
                assert_eq!(n.is_null(i), x % 3 == 0);
                if !n.is_null(i) {
                    assert_eq!(n.value(i), x * 2);
                }
                assert_eq!(d.value(i), i128::from(x) * 101);
                seen.push(x);
            }
        }
        assert_ne!(seen, (0..40).collect::<Vec<i64>>());
        seen.sort();
        assert_eq!(seen, (0..40).collect::<Vec<i64>>());
    }

    #[test]
    fn shuffled_matrices_hold_the_same_rows_as_shuffled_batches() {
        let options = FeedOptions {
            batch_size: Some(6),
            shuffle: Some(ShuffleOptions { seed: 4, window: 2 }),
            ..FeedOptions::default()
        };
        let feed = Feed::new(input(&[5, 9, 3]).into_iter(), schema(), options).unwrap();
        for batch in feed {
            let batch = batch.unwrap();
            assert_eq!(batch.piece_count(), 0);
            let m = batch.to_matrix(NpyType::Int64).unwrap();
            let projected = batch
                .project(&[0])
                .unwrap()
                .to_matrix(NpyType::Int64)
                .unwrap();
            assert_eq!(m, projected);
            let crate::sink::MatrixData::Int64(from_matrix) = m.data else {
                panic!("an int64 matrix holds i64s");
            };
            assert_eq!(from_matrix, values(batch));
        }
    }

    #[test]
    fn bad_options_are_refused() {
        let refused = |options| Feed::new(input(&[1]).into_iter(), schema(), options).is_err();
        assert!(refused(FeedOptions {
            batch_size: Some(0),
            ..FeedOptions::default()
        }));
        assert!(refused(FeedOptions {
            drop_last: true,
            ..FeedOptions::default()
        }));
    }

    #[test]
    fn a_matrix_is_filled_from_the_pieces() {
        let mut feed = Feed::new(
            input(&[2, 2]).into_iter(),
            schema(),
            FeedOptions {
                batch_size: Some(3),
                ..FeedOptions::default()
            },
        )
        .unwrap();
        let first = feed.next().unwrap().unwrap();
        assert_eq!(first.piece_count(), 2);
        let m = first.to_matrix(NpyType::Float64).unwrap();
        assert_eq!((m.rows, m.columns), (3, 1));
        assert_eq!(
            m.data,
            crate::sink::MatrixData::Float64(vec![0.0, 1.0, 2.0])
        );
    }
}
