//! Distinct byte strings → dense 4-byte ids, in order of first appearance.
//!
//! A group key with string columns is stored by [`super::packed_groups`] as fixed-width bytes
//! in which each string is replaced by its id here. Every distinct string is stored once, so a
//! low-cardinality column (`p_brand`, `p_type`) costs 4 bytes a group however long its
//! values, and comparing two keys never touches string bytes. NULL has an id of its own (with
//! no bytes), so the ids alone decide equality.
//!
//! The table holds ids only; a string's hash is recomputed from its bytes when the table grows.

use ahash::RandomState;
use std::sync::Arc;

use arrow::array::builder::make_view;
use arrow::array::{
    Array, ArrayRef, BinaryBuilder, BinaryViewArray, BinaryViewBuilder, LargeBinaryBuilder,
    LargeStringBuilder, StringBuilder, StringViewArray, StringViewBuilder, UInt32Array,
};
use arrow::buffer::{Buffer, NullBuffer, ScalarBuffer};
use arrow::datatypes::DataType;
use hashbrown::HashTable;

use crate::error::{EngineError, Result};

/// The distinct values of one string or binary key column.
pub(super) struct Interner {
    /// Every distinct value's bytes, back to back.
    bytes: Vec<u8>,
    /// Value `i` is `bytes[ends[i - 1]..ends[i]]` (`ends[-1]` being 0).
    ends: Vec<usize>,
    /// The id standing for NULL, once a NULL was seen.
    null_id: Option<u32>,
    /// Ids of the non-NULL values, hashed by their bytes.
    table: HashTable<u32>,
    hasher: RandomState,
    /// Recently seen short string views (which hold the whole value) and their ids, in slots
    /// picked by a cheap hash of the view: a low-cardinality column (`l_returnflag`) finds
    /// its ids here without hashing or comparing bytes.
    inline_cache: Vec<(u128, u32)>,
}

/// Slots of [`Interner::inline_cache`] (a power of two).
const INLINE_CACHE_SLOTS: usize = 256;

/// A view no value has: its length field says 2^32 - 1 bytes, which is never inline.
const NO_VIEW: u128 = u128::MAX;

/// The cache slot of an inline view.
#[inline]
fn slot_of(view: u128) -> usize {
    let folded = (view as u64) ^ ((view >> 64) as u64);
    (folded.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as usize % INLINE_CACHE_SLOTS
}

impl Default for Interner {
    fn default() -> Self {
        Self::new()
    }
}

fn value_of<'a>(bytes: &'a [u8], ends: &[usize], id: u32) -> &'a [u8] {
    let id = id as usize;
    let start = if id == 0 { 0 } else { ends[id - 1] };
    &bytes[start..ends[id]]
}

impl Interner {
    /// An empty interner.
    pub(super) fn new() -> Self {
        Self {
            bytes: Vec::new(),
            ends: Vec::new(),
            null_id: None,
            table: HashTable::new(),
            hasher: RandomState::with_seeds(0x1a7e, 0x57, 0x0b5, 0x9e37),
            inline_cache: Vec::new(),
        }
    }

    /// Number of ids handed out (NULL's included).
    pub(super) fn len(&self) -> usize {
        self.ends.len()
    }

    fn next_id(&self) -> Result<u32> {
        u32::try_from(self.ends.len()).map_err(|_| {
            EngineError::Execution("a group key column holds more than 2^32 distinct values".into())
        })
    }

    /// The id of `value`, a new one if it was not seen before.
    #[inline]
    pub(super) fn intern(&mut self, value: &[u8]) -> Result<u32> {
        let hash = self.hasher.hash_one(value);
        let Self {
            bytes,
            ends,
            table,
            hasher,
            ..
        } = self;
        if let Some(&id) = table.find(hash, |&id| value_of(bytes, ends, id) == value) {
            return Ok(id);
        }
        let id = u32::try_from(ends.len()).map_err(|_| {
            EngineError::Execution("a group key column holds more than 2^32 distinct values".into())
        })?;
        bytes.extend_from_slice(value);
        ends.push(bytes.len());
        table.insert_unique(hash, id, |&id| hasher.hash_one(value_of(bytes, ends, id)));
        Ok(id)
    }

    /// The id standing for NULL.
    pub(super) fn intern_null(&mut self) -> Result<u32> {
        if let Some(id) = self.null_id {
            return Ok(id);
        }
        let id = self.next_id()?;
        self.ends.push(self.bytes.len());
        self.null_id = Some(id);
        Ok(id)
    }

    /// The id of the value an inline view (length ≤ 12) holds, whose bytes are `value`.
    #[inline]
    fn intern_inline(&mut self, view: u128, value: &[u8]) -> Result<u32> {
        if self.inline_cache.is_empty() {
            self.inline_cache = vec![(NO_VIEW, 0); INLINE_CACHE_SLOTS];
        }
        let slot = slot_of(view);
        let (cached, id) = self.inline_cache[slot];
        if cached == view {
            return Ok(id);
        }
        let id = self.intern(value)?;
        self.inline_cache[slot] = (view, id);
        Ok(id)
    }

    /// An array of `data_type` (a string or binary type) whose row `i` is the value of id
    /// `ids[i]` (NULL's id a null). A view type takes the interner's bytes as its buffer
    /// without copying them.
    pub(super) fn into_array(self, ids: &[u32], data_type: &DataType) -> Result<ArrayRef> {
        let nulls = self.null_id.and_then(|null| {
            let nulls = NullBuffer::from_iter(ids.iter().map(|&id| id != null));
            (nulls.null_count() > 0).then_some(nulls)
        });
        let is_view = matches!(data_type, DataType::Utf8View | DataType::BinaryView);
        if !is_view || u32::try_from(self.bytes.len()).is_err() {
            // Views address their buffer with 32-bit offsets: a larger one is copied.
            let values = self.values(data_type)?;
            return Ok(arrow::compute::take(
                values.as_ref(),
                &UInt32Array::from(ids.to_vec()),
                None,
            )?);
        }
        let views: ScalarBuffer<u128> = ids
            .iter()
            .map(|&id| {
                let start = if id == 0 {
                    0
                } else {
                    self.ends[id as usize - 1]
                };
                // The offset fits: the whole buffer is shorter than 2^32 bytes.
                make_view(&self.bytes[start..self.ends[id as usize]], 0, start as u32)
            })
            .collect();
        let buffers = vec![Buffer::from_vec(self.bytes)];
        Ok(if data_type == &DataType::Utf8View {
            Arc::new(StringViewArray::try_new(views, buffers, nulls)?)
        } else {
            Arc::new(BinaryViewArray::try_new(views, buffers, nulls)?)
        })
    }

    /// Every id's value as an array of `data_type` (a string or binary type), id `i` at row
    /// `i`, NULL's id as a null.
    pub(super) fn values(&self, data_type: &DataType) -> Result<ArrayRef> {
        let n = self.ends.len();
        let value = |id: usize| {
            (Some(id as u32) != self.null_id).then(|| value_of(&self.bytes, &self.ends, id as u32))
        };
        let text = |id: usize| -> Result<Option<&str>> {
            value(id)
                .map(|v| {
                    std::str::from_utf8(v).map_err(|_| {
                        EngineError::Internal("a string group key is not UTF-8".into())
                    })
                })
                .transpose()
        };
        macro_rules! build {
            ($builder:expr, $get:expr) => {{
                let mut builder = $builder;
                for id in 0..n {
                    match $get(id)? {
                        Some(v) => builder.append_value(v),
                        None => builder.append_null(),
                    }
                }
                Arc::new(builder.finish()) as ArrayRef
            }};
        }
        let bytes = |id| Ok::<_, EngineError>(value(id));
        Ok(match data_type {
            DataType::Utf8 => build!(StringBuilder::with_capacity(n, self.bytes.len()), text),
            DataType::LargeUtf8 => {
                build!(LargeStringBuilder::with_capacity(n, self.bytes.len()), text)
            }
            DataType::Utf8View => build!(StringViewBuilder::with_capacity(n), text),
            DataType::Binary => build!(BinaryBuilder::with_capacity(n, self.bytes.len()), bytes),
            DataType::LargeBinary => {
                build!(
                    LargeBinaryBuilder::with_capacity(n, self.bytes.len()),
                    bytes
                )
            }
            DataType::BinaryView => build!(BinaryViewBuilder::with_capacity(n), bytes),
            other => {
                return Err(EngineError::Internal(format!(
                    "interned group key of type {other}"
                )))
            }
        })
    }

    /// Bytes held.
    pub(super) fn size(&self) -> usize {
        self.bytes.capacity()
            + self.ends.capacity() * 8
            + self.table.allocation_size()
            + self.inline_cache.capacity() * 32
    }
}

/// Whether `data_type` is a string or binary type an [`Interner`] stores.
pub(super) fn internable(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
    )
}

/// Call `f(row, id)` for every row of `array` (a string or binary array) with its value's id.
pub(super) fn intern_array(
    interner: &mut Interner,
    array: &dyn Array,
    mut f: impl FnMut(usize, u32),
) -> Result<()> {
    use arrow::array::AsArray;
    macro_rules! each {
        ($typed:expr, $bytes:expr) => {{
            let typed = $typed;
            match typed.nulls() {
                Some(nulls) if nulls.null_count() > 0 => {
                    for row in 0..typed.len() {
                        let id = if nulls.is_null(row) {
                            interner.intern_null()?
                        } else {
                            interner.intern($bytes(typed.value(row)))?
                        };
                        f(row, id);
                    }
                }
                _ => {
                    for row in 0..typed.len() {
                        f(row, interner.intern($bytes(typed.value(row)))?);
                    }
                }
            }
        }};
    }
    if let Some(views) = array.as_string_view_opt() {
        // Short values live in the view itself: look them up by view first.
        let nulls = views.nulls().filter(|n| n.null_count() > 0);
        for (row, &view) in views.views().iter().enumerate() {
            let id = if nulls.is_some_and(|n| n.is_null(row)) {
                interner.intern_null()?
            } else if (view as u32) <= 12 {
                interner.intern_inline(view, views.value(row).as_bytes())?
            } else {
                interner.intern(views.value(row).as_bytes())?
            };
            f(row, id);
        }
        return Ok(());
    }
    match array.data_type() {
        DataType::Utf8 => each!(array.as_string::<i32>(), str::as_bytes),
        DataType::LargeUtf8 => each!(array.as_string::<i64>(), str::as_bytes),
        DataType::Utf8View => each!(array.as_string_view(), str::as_bytes),
        DataType::Binary => each!(array.as_binary::<i32>(), <[u8]>::as_ref),
        DataType::LargeBinary => each!(array.as_binary::<i64>(), <[u8]>::as_ref),
        DataType::BinaryView => each!(array.as_binary_view(), <[u8]>::as_ref),
        other => {
            return Err(EngineError::Execution(format!(
                "group key of type {other} where a string was planned"
            )))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{AsArray, BinaryArray, StringArray, StringViewArray};

    use super::*;

    #[test]
    fn ids_are_dense_in_first_appearance_order_and_null_has_its_own() {
        let mut interner = Interner::new();
        let array = StringViewArray::from(vec![
            Some("a string longer than twelve bytes"),
            None,
            Some(""),
            Some("a string longer than twelve bytes"),
            None,
            Some("b"),
        ]);
        let mut ids = Vec::new();
        intern_array(&mut interner, &array, |row, id| ids.push((row, id))).unwrap();
        let ids: Vec<u32> = ids.into_iter().map(|(_, id)| id).collect();
        assert_eq!(ids, vec![0, 1, 2, 0, 1, 3]);
        // The empty string and NULL are different values.
        let values = interner.values(&DataType::Utf8View).unwrap();
        let values = values.as_string_view();
        assert_eq!(values.value(0), "a string longer than twelve bytes");
        assert!(values.is_null(1));
        assert!(values.is_valid(2) && values.value(2).is_empty());
        assert_eq!(values.value(3), "b");
        // Other string types and a sliced input.
        let utf8 = StringArray::from(vec!["x", "b", "x"]);
        let mut ids = Vec::new();
        intern_array(&mut interner, &utf8.slice(1, 2), |_, id| ids.push(id)).unwrap();
        assert_eq!(ids, vec![3, 4]);
        let values = interner.values(&DataType::LargeUtf8).unwrap();
        assert_eq!(values.as_string::<i64>().value(4), "x");
        // A view type takes the bytes as its buffer; rows may repeat ids in any order.
        let out = interner
            .into_array(&[4, 1, 0, 4], &DataType::Utf8View)
            .unwrap();
        let expected = StringViewArray::from(vec![
            Some("x"),
            None,
            Some("a string longer than twelve bytes"),
            Some("x"),
        ]);
        assert_eq!(out.as_string_view(), &expected);
    }

    #[test]
    fn short_views_evicted_from_the_cache_keep_their_ids() {
        // Far more distinct inline values than cache slots, seen three times in different
        // orders, mixed with long values and NULLs.
        let values: Vec<Option<String>> = (0..5_000)
            .map(|i| match i % 10 {
                0 => None,
                1 => Some(format!("a long value number {i}")),
                _ => Some(format!("v{i}")),
            })
            .collect();
        let mut interner = Interner::new();
        let mut first = Vec::new();
        for round in 0..3usize {
            let step = [1, 3, 7][round];
            let order: Vec<usize> = (0..values.len()).map(|i| (i * step) % 5_000).collect();
            let array = StringViewArray::from_iter(order.iter().map(|&i| values[i].as_deref()));
            let mut ids = vec![0; values.len()];
            intern_array(&mut interner, &array, |row, id| ids[order[row]] = id).unwrap();
            if round == 0 {
                first = ids;
            } else {
                assert!(ids == first, "round {round} gave other ids");
            }
        }
        // One id per distinct value (NULL's included).
        assert_eq!(interner.len(), 4_501);
        let out = interner.into_array(&first, &DataType::Utf8View).unwrap();
        let expected = StringViewArray::from_iter(values.iter().map(|v| v.as_deref()));
        assert_eq!(out.as_string_view(), &expected);
    }

    #[test]
    fn binary_values_and_many_ids_survive_table_growth() {
        let mut interner = Interner::new();
        let values: Vec<Vec<u8>> = (0..50_000u32).map(|i| i.to_le_bytes().to_vec()).collect();
        let array = BinaryArray::from_iter_values(values.iter().chain(values.iter()));
        let mut ids = Vec::new();
        intern_array(&mut interner, &array, |_, id| ids.push(id)).unwrap();
        let expected: Vec<u32> = (0..50_000).chain(0..50_000).collect();
        assert_eq!(ids, expected);
        let out = interner.values(&DataType::Binary).unwrap();
        assert_eq!(out.len(), 50_000);
        assert_eq!(
            out.as_binary::<i32>().value(49_999),
            49_999u32.to_le_bytes()
        );
        let arc: ArrayRef = Arc::new(arrow::array::Int64Array::from(vec![1]));
        assert!(intern_array(&mut interner, arc.as_ref(), |_, _| ()).is_err());
    }
}
