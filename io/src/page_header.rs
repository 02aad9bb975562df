//! Reading a few rows of a column chunk without its dictionary page, when the data pages that
//! hold them do not use it.
//!
//! A writer that dictionary-encodes a column falls back to plain encoding once the dictionary
//! grows past its limit (parquet-rs and Arrow C++ at 1 MiB): the chunk starts with a large
//! dictionary page and a few dictionary-encoded pages, and the rest is plain. The Parquet
//! reader reads and decompresses the dictionary page of every chunk it touches, which for a
//! lookup of a few rows (an index answer, a page-pruned slice) is most of the bytes read: on
//! SF10 `lineitem`, 1.6 MiB of dictionaries per row group against about 0.6 MiB of data pages
//! holding one row of every column.
//!
//! So, for the pages a morsel selects, the encoding is read from each page header (a Thrift
//! struct a few dozen bytes long, parsed here by hand: the parquet crate keeps its parser to
//! itself), and a chunk none of whose selected pages is dictionary-encoded is read through
//! metadata that says it has no dictionary page. Any doubt — a header that does not parse, a
//! page of another type, no offset index — keeps the dictionary.

use std::ops::Range;
use std::sync::Arc;

use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::file::metadata::page_index::PageIndexProvider;

use crate::dataset::ParquetFile;

/// Thrift compact protocol field types.
const BOOL_TRUE: u8 = 1;
const BOOL_FALSE: u8 = 2;
const BYTE: u8 = 3;
const I16: u8 = 4;
const I32: u8 = 5;
const I64: u8 = 6;
const DOUBLE: u8 = 7;
const BINARY: u8 = 8;
const LIST: u8 = 9;
const SET: u8 = 10;
const MAP: u8 = 11;
const STRUCT: u8 = 12;

/// Deepest nesting skipped (page headers nest two or three levels; damage must not recurse
/// without end).
const MAX_DEPTH: usize = 8;

struct Compact<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Compact<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn zigzag(&mut self) -> Option<i64> {
        let v = self.varint()?;
        Some((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    /// The next field's id and type (`None` at the struct's end, or on damage).
    fn field(&mut self, last: &mut i16) -> Option<(i16, u8)> {
        let b = self.byte()?;
        if b == 0 {
            return None;
        }
        let (delta, ty) = (b >> 4, b & 0x0F);
        let id = if delta == 0 {
            i16::try_from(self.zigzag()?).ok()?
        } else {
            last.checked_add(i16::from(delta))?
        };
        *last = id;
        Some((id, ty))
    }

    fn skip(&mut self, ty: u8, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match ty {
            BOOL_TRUE | BOOL_FALSE => {}
            BYTE => {
                self.byte()?;
            }
            I16 | I32 | I64 => {
                self.varint()?;
            }
            DOUBLE => self.pos = self.pos.checked_add(8).filter(|&p| p <= self.buf.len())?,
            BINARY => {
                let n = usize::try_from(self.varint()?).ok()?;
                self.pos = self.pos.checked_add(n).filter(|&p| p <= self.buf.len())?;
            }
            LIST | SET => {
                let b = self.byte()?;
                let (short, elem) = (b >> 4, b & 0x0F);
                let n = if short == 15 {
                    self.varint()?
                } else {
                    u64::from(short)
                };
                for _ in 0..n {
                    if matches!(elem, BOOL_TRUE | BOOL_FALSE) {
                        self.byte()?;
                    } else {
                        self.skip(elem, depth + 1)?;
                    }
                }
            }
            MAP => {
                let n = self.varint()?;
                if n > 0 {
                    let kv = self.byte()?;
                    for _ in 0..n {
                        self.skip(kv >> 4, depth + 1)?;
                        self.skip(kv & 0x0F, depth + 1)?;
                    }
                }
            }
            STRUCT => {
                let mut last = 0;
                while let Some((_, t)) = self.field(&mut last) {
                    self.skip(t, depth + 1)?;
                }
            }
            _ => return None,
        }
        Some(())
    }

    /// In a struct, the value of the `i32` field `want` (skipping the others).
    fn i32_field(&mut self, want: i16) -> Option<i64> {
        let mut last = 0;
        while let Some((id, ty)) = self.field(&mut last) {
            if id == want && ty == I32 {
                return self.zigzag();
            }
            self.skip(ty, 1)?;
        }
        None
    }
}

/// Whether the data page whose header starts `bytes` needs the chunk's dictionary: `Some`
/// only for a data page (v1 or v2) whose header parses.
pub(crate) fn page_needs_dictionary(bytes: &[u8]) -> Option<bool> {
    const DATA_PAGE: i64 = 0;
    const DATA_PAGE_V2: i64 = 3;
    const PLAIN_DICTIONARY: i64 = 2;
    const RLE_DICTIONARY: i64 = 8;
    let mut c = Compact { buf: bytes, pos: 0 };
    let mut last = 0;
    let mut page_type = None;
    while let Some((id, ty)) = c.field(&mut last) {
        match (id, ty) {
            (1, I32) => page_type = Some(c.zigzag()?),
            // DataPageHeader.encoding is field 2, DataPageHeaderV2.encoding field 4.
            (5, STRUCT) if page_type == Some(DATA_PAGE) => {
                let e = c.i32_field(2)?;
                return Some(matches!(e, PLAIN_DICTIONARY | RLE_DICTIONARY));
            }
            (8, STRUCT) if page_type == Some(DATA_PAGE_V2) => {
                let e = c.i32_field(4)?;
                return Some(matches!(e, PLAIN_DICTIONARY | RLE_DICTIONARY));
            }
            _ => c.skip(ty, 1)?,
        }
    }
    None
}

/// The leaves among `leaves` of row group `rg` that have a dictionary page which none of the
/// data pages overlapping `ranges` needs.
pub(crate) fn dictionaries_not_needed(
    file: &ParquetFile,
    rg: usize,
    leaves: &[usize],
    ranges: &[Range<usize>],
) -> Vec<usize> {
    let Some(index) = file.metadata.page_index() else {
        return Vec::new();
    };
    let index: &dyn PageIndexProvider = index.as_ref();
    let group = file.metadata.row_group(rg);
    let rows = group.num_rows().max(0) as usize;
    let bytes: &[u8] = &file.bytes;
    leaves
        .iter()
        .copied()
        .filter(|&leaf| {
            let column = group.column(leaf);
            if column.dictionary_page_offset().is_none() {
                return false;
            }
            let Some(offsets) = index.offset_index(rg, leaf) else {
                return false;
            };
            let pages = offsets.page_locations();
            // The first data page must come right after the dictionary, where the metadata
            // says data starts: the reader then finds no dictionary before it.
            if pages.first().map(|p| p.offset) != Some(column.data_page_offset()) {
                return false;
            }
            pages.iter().enumerate().all(|(i, page)| {
                let first = page.first_row_index.max(0) as usize;
                let end = pages
                    .get(i + 1)
                    .map_or(rows, |p| p.first_row_index.max(0) as usize);
                if !ranges.iter().any(|r| r.start < end && first < r.end) {
                    return true;
                }
                let start = usize::try_from(page.offset).ok();
                let len = usize::try_from(page.compressed_page_size).ok();
                let header = start
                    .zip(len)
                    .and_then(|(s, n)| bytes.get(s..s.checked_add(n)?));
                header.and_then(page_needs_dictionary) == Some(false)
            })
        })
        .collect()
}

/// `base` with the column chunks `leaves` of row group `rg` described as having no dictionary
/// page (see the module docs).
pub(crate) fn without_dictionaries(
    base: &ArrowReaderMetadata,
    rg: usize,
    leaves: &[usize],
) -> parquet::errors::Result<ArrowReaderMetadata> {
    let mut builder = base.metadata().as_ref().clone().into_builder();
    let mut groups = builder.take_row_groups();
    if let Some(group) = groups.get_mut(rg) {
        let columns = group
            .columns()
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if leaves.contains(&i) {
                    c.clone()
                        .into_builder()
                        .set_dictionary_page_offset(None)
                        .build()
                } else {
                    Ok(c.clone())
                }
            })
            .collect::<parquet::errors::Result<Vec<_>>>()?;
        *group = group
            .clone()
            .into_builder()
            .set_column_metadata(columns)
            .build()?;
    }
    let metadata = builder.set_row_groups(groups).build();
    ArrowReaderMetadata::try_new(
        Arc::new(metadata),
        ArrowReaderOptions::new().with_schema(Arc::clone(base.schema())),
    )
}

#[cfg(test)]
mod tests {
    use super::page_needs_dictionary;

    #[test]
    fn encodings_are_read_from_page_headers() {
        // PageHeader { type: DATA_PAGE (0), uncompressed 16, compressed 16,
        //   data_page_header: { num_values 4, encoding E, def RLE (3), rep RLE (3) } }
        let header = |encoding: u8| {
            vec![
                0x15, 0x00, // field 1 (i32): 0
                0x15, 0x20, // field 2 (i32): 16
                0x15, 0x20, // field 3 (i32): 16
                0x2C, // field 5 (struct), delta 2
                0x15, 0x08, // num_values: 4
                0x15, encoding, // encoding (zigzag)
                0x15, 0x06, 0x15, 0x06, // def and rep level encodings: RLE
                0x00, // end of data_page_header
                0x00, // end of PageHeader
            ]
        };
        assert_eq!(page_needs_dictionary(&header(0)), Some(false)); // PLAIN
        assert_eq!(page_needs_dictionary(&header(16)), Some(true)); // RLE_DICTIONARY (8)
        assert_eq!(page_needs_dictionary(&header(4)), Some(true)); // PLAIN_DICTIONARY (2)
                                                                   // A dictionary page (type 2) is not a data page; damage gives no answer.
        let mut dictionary = header(0);
        dictionary[1] = 0x04;
        assert_eq!(page_needs_dictionary(&dictionary), None);
        assert_eq!(page_needs_dictionary(&header(0)[..9]), None);
        assert_eq!(page_needs_dictionary(&[]), None);
    }
}
