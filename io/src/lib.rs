//! # ooc-io
//!
//! File reading for ooc (Parquet, CSV, NDJSON): turns bytes on disk into Arrow record batches, and nothing more
//! (planning lives in the engine).
//!
//! * [`ParquetDataset`] discovers files (a file, a list, a glob, or a directory with hive
//!   `key=value` folders), reads their footers and unifies their schemas.
//! * [`PruneExpr`] evaluates predicates three-valued against row-group statistics and
//!   partition values, so row groups that cannot match are never read, and within the row
//!   groups kept, against bloom filters for `=` and `IN`
//!   ([`ParquetDataset::bloom_excludes`]) and page statistics
//!   ([`ParquetDataset::prune_pages`]), so row groups and pages that cannot match are skipped.
//! * [`TextDataset`] reads CSV and NDJSON files (plain, gzip or zstd) as a stream of chunks of
//!   whole records ([`TextChunker`]) decoded in parallel ([`ChunkDecoder`]), with the schema
//!   inferred from a sample and bad records reported by file and line.
//! * [`Morsel`]s are row-group slices of bounded row count; [`ParquetDataset::read_morsel`]
//!   decodes one morsel's projected columns from a memory map, releasing the mapped pages
//!   afterwards, so neither a huge row group nor a huge file sets the memory peak.

#![warn(missing_docs, unreachable_pub)]

mod bloom;
pub mod cache;
mod dataset;
mod describe;
mod error;
#[cfg(any(test, fuzzing))]
pub mod fuzzing;
pub mod index;
mod ipc_check;
mod page_header;
mod page_index;
mod page_prune;
mod prune;
mod read;
mod text;

pub use dataset::{ParquetDataset, ParquetFile, RowGroupRef};
pub use describe::describe;
pub use error::{IoError, Result};
pub use ipc_check::check_ipc_messages;
pub use page_prune::{intersect_ranges, PageSelection};
pub use prune::{exact_cast, CmpOp, FilePruneStats, PruneExpr, PruneOutcome, PruneStats};
pub use read::{
    contain_panic, with_types, LateFilter, LatePredicate, Morsel, MorselReader, ReadOptions,
};
pub use text::{
    ChunkDecoder, Compression, CsvOptions, TextChunk, TextChunker, TextDataset, TextFile,
    TextFormat, TextOptions,
};
