//! Group keys → dense group indices.
//!
//! Keys of any types are encoded with Arrow's row format (one byte string per row, comparable
//! and hashable as bytes) and interned in a hash table that stores only `(hash, group index)`;
//! the key bytes live once, in a growing [`Rows`] buffer, which also converts back to arrays.

use ahash::RandomState;
use arrow::array::ArrayRef;
use arrow::datatypes::DataType;
use arrow::row::{RowConverter, Rows, SortField};
use hashbrown::HashTable;

use crate::error::Result;

/// The distinct group keys seen so far.
pub struct GroupValues {
    converter: Option<RowConverter>,
    rows: Option<Rows>,
    table: HashTable<(u64, u32)>,
    hasher: RandomState,
    num_groups: usize,
}

impl GroupValues {
    /// Groups keyed by columns of `types` (no types: a single global group).
    pub fn try_new(types: &[DataType]) -> Result<Self> {
        let (converter, rows) = if types.is_empty() {
            (None, None)
        } else {
            let converter =
                RowConverter::new(types.iter().map(|t| SortField::new(t.clone())).collect())?;
            let rows = converter.empty_rows(1024, 16 * 1024);
            (Some(converter), Some(rows))
        };
        Ok(Self {
            converter,
            rows,
            table: HashTable::new(),
            hasher: RandomState::with_seeds(0x5eed, 0x0c, 0xa11, 0x9e37),
            num_groups: 0,
        })
    }

    /// Number of groups.
    pub fn len(&self) -> usize {
        self.num_groups
    }

    /// True when no group exists yet.
    pub fn is_empty(&self) -> bool {
        self.num_groups == 0
    }

    /// Assign a group index to every row of `keys` (creating groups as needed).
    pub fn intern(
        &mut self,
        keys: &[ArrayRef],
        num_rows: usize,
        groups: &mut Vec<u32>,
    ) -> Result<()> {
        groups.clear();
        let (Some(converter), Some(stored)) = (&self.converter, &mut self.rows) else {
            self.num_groups = 1;
            groups.resize(num_rows, 0);
            return Ok(());
        };
        let new_rows = converter.convert_columns(keys)?;
        groups.reserve(num_rows);
        let table = &mut self.table;
        for row in new_rows.iter() {
            let bytes = row.as_ref();
            let hash = self.hasher.hash_one(bytes);
            let found = table.find(hash, |&(h, g)| {
                h == hash && stored.row(g as usize).as_ref() == bytes
            });
            let group = match found {
                Some(&(_, g)) => g,
                None => {
                    let g = self.num_groups as u32;
                    stored.push(row);
                    table.insert_unique(hash, (hash, g), |&(h, _)| h);
                    self.num_groups += 1;
                    g
                }
            };
            groups.push(group);
        }
        Ok(())
    }

    /// Make sure the global group exists even without input (for `SELECT count(*) FROM empty`).
    pub fn ensure_global_group(&mut self) {
        if self.converter.is_none() {
            self.num_groups = 1;
        }
    }

    /// The key columns of all groups in group-index order; resets the table.
    pub fn take_keys(&mut self) -> Result<Vec<ArrayRef>> {
        self.table = HashTable::new();
        match (&self.converter, self.rows.take()) {
            (Some(converter), Some(rows)) => {
                let keys = converter.convert_rows(rows.iter())?;
                self.rows = Some(converter.empty_rows(0, 0));
                Ok(keys)
            }
            _ => Ok(vec![]),
        }
    }

    /// Bytes held.
    pub fn size(&self) -> usize {
        self.table.capacity() * 16 + self.rows.as_ref().map_or(0, |r| r.size())
    }
}
