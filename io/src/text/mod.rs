//! Text files as data sets: delimited text (CSV, TSV, ...) and newline-delimited JSON, plain
//! or compressed with gzip or zstd.
//!
//! A [`TextDataset`] is opened like a Parquet one (a file, a glob, a directory or several of
//! them). Its schema is inferred from a sample of the first file (the number of records is an
//! option), and each column's type can be overridden. Text files have no footer to plan from,
//! so reading is a stream: a [`TextChunker`] cuts the decompressed bytes of the files, one
//! after the other, into chunks of whole records (a few MiB; a CSV record is only ended by a
//! newline outside quotes), and chunks are decoded into record batches independently, so
//! several threads decode one file while only the cutting is sequential. See
//! [`decode`](self::decode) for how bad records are reported or skipped.

mod chunks;
mod decode;
mod infer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

pub use chunks::{TextChunk, TextChunker};
pub use decode::ChunkDecoder;

use crate::dataset::discover;
use crate::error::{IoError, Result};

/// Compression of a text file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Plain text.
    None,
    /// gzip (one or several members).
    Gzip,
    /// Zstandard (one or several frames).
    Zstd,
}

impl Compression {
    /// The compression a file name's extension names (`.gz`, `.gzip`, `.zst`, `.zstd`).
    pub fn from_extension(name: &str) -> Self {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".gz") || lower.ends_with(".gzip") {
            Compression::Gzip
        } else if lower.ends_with(".zst") || lower.ends_with(".zstd") {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// Parse an option value: `none`, `gzip`, `zstd` (or `auto`, which gives `None`).
    pub fn parse(value: &str) -> Result<Option<Self>> {
        Ok(match value.to_ascii_lowercase().as_str() {
            "auto" | "infer" => None,
            "none" | "uncompressed" => Some(Compression::None),
            "gzip" | "gz" => Some(Compression::Gzip),
            "zstd" | "zst" => Some(Compression::Zstd),
            other => {
                return Err(IoError::InvalidArgument(format!(
                    "unknown compression '{other}'; expected one of auto, none, gzip, zstd"
                )))
            }
        })
    }
}

/// How delimited text is laid out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvOptions {
    /// Field separator (`None`: detected from the first line among `,` tab `|` `;`).
    pub delimiter: Option<u8>,
    /// Whether the first line holds column names (`None`: detected: it does when one of its
    /// values is text in a column whose other values are not).
    pub has_header: Option<bool>,
    /// Quote character.
    pub quote: u8,
    /// Escape character inside quoted fields (`None`: a quote is escaped by doubling it).
    pub escape: Option<u8>,
    /// Lines starting with this character are skipped.
    pub comment: Option<u8>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        Self {
            delimiter: None,
            has_header: None,
            quote: b'"',
            escape: None,
            comment: None,
        }
    }
}

/// The two text formats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TextFormat {
    /// Delimited text.
    Csv(CsvOptions),
    /// One JSON object per line.
    NdJson,
}

impl TextFormat {
    /// The format a file name's extension suggests (`.csv`, `.tsv`, `.json`, `.ndjson`,
    /// `.jsonl`, each optionally followed by `.gz` or `.zst`), if any.
    pub fn from_path(path: &str) -> Option<Self> {
        let lower = path.to_ascii_lowercase();
        let stem = strip_compression_extension(&lower);
        if stem.ends_with(".csv") || stem.ends_with(".txt") {
            Some(TextFormat::Csv(CsvOptions::default()))
        } else if stem.ends_with(".tsv") || stem.ends_with(".tab") {
            Some(TextFormat::Csv(CsvOptions {
                delimiter: Some(b'\t'),
                ..CsvOptions::default()
            }))
        } else if stem.ends_with(".json") || stem.ends_with(".ndjson") || stem.ends_with(".jsonl") {
            Some(TextFormat::NdJson)
        } else {
            None
        }
    }

    /// The name used in messages.
    pub fn name(&self) -> &'static str {
        match self {
            TextFormat::Csv(_) => "CSV",
            TextFormat::NdJson => "NDJSON",
        }
    }

    fn accepts(&self, name: &str) -> bool {
        let lower = name.to_ascii_lowercase();
        let stem = strip_compression_extension(&lower);
        match self {
            TextFormat::Csv(_) => [".csv", ".tsv", ".tab", ".txt"]
                .iter()
                .any(|e| stem.ends_with(e)),
            TextFormat::NdJson => [".json", ".ndjson", ".jsonl"]
                .iter()
                .any(|e| stem.ends_with(e)),
        }
    }
}

fn strip_compression_extension(name: &str) -> &str {
    for ext in [".gz", ".gzip", ".zst", ".zstd"] {
        if let Some(stem) = name.strip_suffix(ext) {
            return stem;
        }
    }
    name
}

/// Everything that says how to read a set of text files.
#[derive(Clone, Debug, PartialEq)]
pub struct TextOptions {
    /// CSV or NDJSON.
    pub format: TextFormat,
    /// `None`: from each file's extension (`.gz`, `.zst`) or, failing that, its first bytes.
    pub compression: Option<Compression>,
    /// CSV values read as NULL, besides the empty field, which always is. Compared with the
    /// whole field.
    pub null_values: Vec<String>,
    /// Column types that replace the inferred ones, by column name.
    pub types: Vec<(String, DataType)>,
    /// Records of the first file sampled to infer the schema.
    pub sample_rows: usize,
    /// Skip (and count) records that cannot be read as the schema says instead of failing.
    pub skip_bad_rows: bool,
}

impl TextOptions {
    /// Defaults for `format`.
    pub fn new(format: TextFormat) -> Self {
        Self {
            format,
            compression: None,
            null_values: Vec::new(),
            types: Vec::new(),
            sample_rows: 20_480,
            skip_bad_rows: false,
        }
    }
}

/// A text file of a data set.
#[derive(Clone, Debug)]
pub struct TextFile {
    /// Where it is.
    pub path: PathBuf,
    /// Bytes on disk.
    pub size: u64,
    /// How it is compressed.
    pub compression: Compression,
}

/// The CSV layout once every detected setting is known.
#[derive(Clone, Debug)]
pub(crate) struct CsvLayout {
    pub(crate) delimiter: u8,
    pub(crate) has_header: bool,
    pub(crate) quote: u8,
    pub(crate) escape: Option<u8>,
    pub(crate) comment: Option<u8>,
}

/// Text files read as one table.
#[derive(Debug)]
pub struct TextDataset {
    files: Vec<TextFile>,
    schema: SchemaRef,
    options: TextOptions,
    csv: Option<CsvLayout>,
    null_regex: Option<regex::Regex>,
    estimated_rows: u64,
}

impl TextDataset {
    /// Open a file, a directory (every file with the format's extensions) or a glob.
    pub fn open(location: &str, options: TextOptions) -> Result<Self> {
        Self::open_many(&[location.to_string()], options)
    }

    /// Open several locations as one table; every file must have the first one's columns.
    pub fn open_many(locations: &[String], options: TextOptions) -> Result<Self> {
        let mut files = Vec::new();
        let accept: fn(&str) -> bool = match options.format {
            TextFormat::Csv(_) => |n| TextFormat::Csv(CsvOptions::default()).accepts(n),
            TextFormat::NdJson => |n| TextFormat::NdJson.accepts(n),
        };
        for location in locations {
            let (mut found, _) = discover(location, accept)?;
            found.sort();
            if found.is_empty() {
                return Err(IoError::NoFiles {
                    location: location.clone(),
                    kind: options.format.name(),
                });
            }
            for path in found {
                let size = std::fs::metadata(&path)
                    .map_err(|source| IoError::Io {
                        path: path.clone(),
                        source,
                    })?
                    .len();
                let compression = match options.compression {
                    Some(c) => c,
                    None => detect_compression(&path)?,
                };
                files.push(TextFile {
                    path,
                    size,
                    compression,
                });
            }
        }
        // Without extra NULL spellings no regex is needed: arrow's decoder then tests for the
        // empty field directly, which is much cheaper than a regex match per field.
        let null_regex = match options.format {
            TextFormat::Csv(_) if options.null_values.iter().any(|v| !v.is_empty()) => {
                Some(null_regex(&options.null_values)?)
            }
            _ => None,
        };
        let inferred = infer::infer(&files[0], &options, null_regex.as_ref())?;
        let schema = apply_overrides(inferred.schema, &options.types)?;
        let total_bytes: u64 = files.iter().map(|f| f.size).sum();
        let estimated_rows = if inferred.complete && files.len() == 1 {
            inferred.rows
        } else {
            let per_row = inferred.bytes as f64 / inferred.rows.max(1) as f64;
            (total_bytes as f64 / per_row.max(1.0)) as u64
        };
        Ok(Self {
            files,
            schema: Arc::new(schema),
            options,
            csv: inferred.csv,
            null_regex,
            estimated_rows,
        })
    }

    /// The columns (all nullable).
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// The files, in reading order.
    pub fn files(&self) -> &[TextFile] {
        &self.files
    }

    /// The options the data set was opened with.
    pub fn options(&self) -> &TextOptions {
        &self.options
    }

    /// Rows expected (exact when the sample read a whole single file; otherwise extrapolated
    /// from the sample's bytes per row).
    pub fn estimated_rows(&self) -> u64 {
        self.estimated_rows
    }

    /// Bytes of all files on disk.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// The detected delimiter and header setting, for EXPLAIN (`None` for NDJSON).
    pub fn csv_settings(&self) -> Option<(u8, bool)> {
        self.csv.as_ref().map(|c| (c.delimiter, c.has_header))
    }

    /// Indices of `names` in the schema, failing on an unknown one with the valid names.
    pub fn projection_indices(&self, names: &[String]) -> Result<Vec<usize>> {
        names
            .iter()
            .map(|n| {
                self.schema.index_of(n).map_err(|_| {
                    IoError::InvalidArgument(format!(
                        "unknown column '{n}'; the columns are: {}",
                        self.schema
                            .fields()
                            .iter()
                            .map(|f| f.name().as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })
            })
            .collect()
    }

    pub(crate) fn csv_layout(&self) -> Option<&CsvLayout> {
        self.csv.as_ref()
    }

    pub(crate) fn null_regex(&self) -> Option<&regex::Regex> {
        self.null_regex.as_ref()
    }
}

/// The compression of `path`, from its extension, else from its first bytes.
fn detect_compression(path: &Path) -> Result<Compression> {
    let name = path.to_string_lossy();
    let by_name = Compression::from_extension(&name);
    if by_name != Compression::None {
        return Ok(by_name);
    }
    use std::io::Read;
    let mut magic = [0u8; 4];
    let mut file = std::fs::File::open(path).map_err(|source| IoError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let n = file.read(&mut magic).map_err(|source| IoError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(match &magic[..n] {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd] => Compression::Zstd,
        _ => Compression::None,
    })
}

/// A regex matching exactly the empty field and the given NULL spellings.
fn null_regex(values: &[String]) -> Result<regex::Regex> {
    let alternatives: Vec<String> = values
        .iter()
        .filter(|v| !v.is_empty())
        .map(|v| regex::escape(v))
        .collect();
    let pattern = if alternatives.is_empty() {
        "^$".to_string()
    } else {
        format!("^(?:|{})$", alternatives.join("|"))
    };
    regex::Regex::new(&pattern)
        .map_err(|e| IoError::InvalidArgument(format!("bad NULL values {values:?}: {e}")))
}

/// Replace inferred types by the requested ones (every named column must exist).
fn apply_overrides(schema: Schema, types: &[(String, DataType)]) -> Result<Schema> {
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    for (name, data_type) in types {
        let Some(field) = fields
            .iter_mut()
            .find(|f| f.name() == name || f.name().eq_ignore_ascii_case(name))
        else {
            return Err(IoError::InvalidArgument(format!(
                "a type is given for column '{name}', which the file does not have; the columns are: {}",
                schema
                    .fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        *field = Field::new(field.name(), data_type.clone(), true);
    }
    Ok(Schema::new(fields))
}

#[cfg(test)]
mod tests;
