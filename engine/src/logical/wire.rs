//! How the leaves of a plan and its constants travel to another process (the tasks of a
//! distributed query, `crate::distributed`): the plan's other types derive serde; these do not
//! hold plain data.
//!
//! * A constant ([`ScalarValue`]) and an in-memory table ([`MemoryTable`]) are Arrow IPC
//!   streams, written as hexadecimal text.
//! * A scan of Parquet files names the locations it was opened from and, for each file found,
//!   its path, size and footer hash. The receiver opens the locations again and refuses to go
//!   on when the files it finds differ (a file added, removed or rewritten since): the tasks of
//!   one query must read the same data.
//! * A scan of an earlier stage's output names its exchange files.
//! * Scans of text files and of cached results are refused with an error naming them.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Field, Schema, SchemaRef};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

use crate::logical::expr::Expr;
use crate::logical::scalar::ScalarValue;
use crate::logical::schema::PlanSchema;
use crate::logical::source::{ExchangeInput, MemoryTable, ScanSource, TableScan};

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| -> Option<u8> {
        Some(match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        })
    };
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

fn ipc_encode(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<String, String> {
    let mut bytes = Vec::new();
    {
        let mut writer = arrow::ipc::writer::StreamWriter::try_new(&mut bytes, schema)
            .map_err(|e| e.to_string())?;
        for batch in batches {
            writer.write(batch).map_err(|e| e.to_string())?;
        }
        writer.finish().map_err(|e| e.to_string())?;
    }
    Ok(to_hex(&bytes))
}

fn ipc_decode(text: &str) -> Result<(SchemaRef, Vec<RecordBatch>), String> {
    let bytes = from_hex(text).ok_or("not hexadecimal")?;
    let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)
        .map_err(|e| e.to_string())?;
    let schema = reader.schema();
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    Ok((schema, batches))
}

impl Serialize for ScalarValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let array = Arc::clone(self.array());
        let schema = Arc::new(Schema::new(vec![Field::new(
            "v",
            array.data_type().clone(),
            true,
        )]));
        let batch = RecordBatch::try_new(Arc::clone(&schema), vec![array])
            .map_err(serde::ser::Error::custom)?;
        ipc_encode(&schema, &[batch])
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ScalarValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let (_, batches) = ipc_decode(&text).map_err(de::Error::custom)?;
        match batches.as_slice() {
            [batch] if batch.num_rows() == 1 && batch.num_columns() == 1 => {
                Ok(ScalarValue::from_array(Arc::clone(batch.column(0))))
            }
            _ => Err(de::Error::custom("a constant is one value")),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct MemoryWire {
    name: String,
    data: String,
}

impl Serialize for MemoryTable {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let schema = self.schema().to_arrow();
        MemoryWire {
            name: self.name.clone(),
            data: ipc_encode(&schema, &self.batches).map_err(serde::ser::Error::custom)?,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for MemoryTable {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = MemoryWire::deserialize(deserializer)?;
        let (schema, batches) = ipc_decode(&wire.data).map_err(de::Error::custom)?;
        MemoryTable::try_new(wire.name, schema, batches).map_err(de::Error::custom)
    }
}

/// One Parquet file as the sender found it.
#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct FileWire {
    path: std::path::PathBuf,
    size: u64,
    footer_hash: u64,
}

#[derive(Serialize, Deserialize)]
enum SourceWire {
    Parquet {
        locations: Vec<String>,
        files: Vec<FileWire>,
    },
    Exchange(ExchangeInput),
}

#[derive(Serialize, Deserialize)]
struct ScanWire {
    table_name: String,
    source: SourceWire,
    projection: Option<Vec<usize>>,
    filters: Vec<Expr>,
    fetch: Option<usize>,
    /// `(file, row group)` pairs.
    split: Option<Vec<(usize, usize)>>,
    schema: PlanSchema,
}

impl Serialize for TableScan {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let source = match &self.source {
            ScanSource::Parquet(dataset) => SourceWire::Parquet {
                locations: dataset.locations().to_vec(),
                files: dataset
                    .files()
                    .iter()
                    .map(|f| FileWire {
                        path: f.path.clone(),
                        size: f.size,
                        footer_hash: f.footer_hash(),
                    })
                    .collect(),
            },
            ScanSource::Exchange(input) => SourceWire::Exchange(input.as_ref().clone()),
            ScanSource::Text(_) => {
                return Err(serde::ser::Error::custom(format!(
                    "table {}: scans of CSV or NDJSON files cannot run in other processes \
                     yet (convert them to Parquet)",
                    self.table_name
                )))
            }
            ScanSource::Cached(_) => {
                return Err(serde::ser::Error::custom(format!(
                    "table {}: a persisted result lives in this machine's cache and cannot be \
                     read by other processes (write it to Parquet on a shared file system)",
                    self.table_name
                )))
            }
        };
        ScanWire {
            table_name: self.table_name.clone(),
            source,
            projection: self.projection.clone(),
            filters: self.filters.clone(),
            fetch: self.fetch,
            split: self
                .split
                .as_ref()
                .map(|s| s.iter().map(|rg| (rg.file, rg.row_group)).collect()),
            schema: self.schema().clone(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for TableScan {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = ScanWire::deserialize(deserializer)?;
        let mut scan = match wire.source {
            SourceWire::Parquet { locations, files } => {
                let dataset =
                    ooc_io::ParquetDataset::open_many(&locations).map_err(de::Error::custom)?;
                let found: Vec<FileWire> = dataset
                    .files()
                    .iter()
                    .map(|f| FileWire {
                        path: f.path.clone(),
                        size: f.size,
                        footer_hash: f.footer_hash(),
                    })
                    .collect();
                if found != files {
                    let changed = files
                        .iter()
                        .find(|f| !found.contains(f))
                        .or_else(|| found.iter().find(|f| !files.contains(f)))
                        .map_or_else(|| locations.join(", "), |f| f.path.display().to_string());
                    return Err(de::Error::custom(format!(
                        "table {}: the files differ from those the query was planned with \
                         ({changed} was added, removed or rewritten since)",
                        wire.table_name
                    )));
                }
                let mut scan = TableScan::try_new(wire.table_name, Arc::new(dataset))
                    .map_err(de::Error::custom)?;
                scan.projection = wire.projection;
                scan
            }
            SourceWire::Exchange(input) => TableScan::exchange(input, wire.schema.clone()),
        };
        scan.filters = wire.filters;
        scan.fetch = wire.fetch;
        scan.split = wire.split.map(|pairs| {
            Arc::new(
                pairs
                    .into_iter()
                    .map(|(file, row_group)| ooc_io::RowGroupRef { file, row_group })
                    .collect(),
            )
        });
        Ok(scan.with_schema(wire.schema))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(from_hex(&to_hex(&bytes)).unwrap(), bytes);
        assert!(from_hex("abc").is_none());
        assert!(from_hex("zz").is_none());
    }

    #[test]
    fn constants_keep_their_exact_types() {
        for value in [
            ScalarValue::int64(-7),
            ScalarValue::null(&arrow::datatypes::DataType::Date32),
            ScalarValue::from_array(Arc::new(
                arrow::array::Decimal128Array::from(vec![12345])
                    .with_precision_and_scale(15, 2)
                    .unwrap(),
            )),
            ScalarValue::utf8("naïve"),
        ] {
            let text = serde_json::to_string(&value).unwrap();
            let back: ScalarValue = serde_json::from_str(&text).unwrap();
            assert_eq!(back.data_type(), value.data_type());
            assert_eq!(back.to_string(), value.to_string());
        }
    }
}
