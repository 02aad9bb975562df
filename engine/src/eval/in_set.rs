//! `expr [NOT] IN (v1, …, vn)` over many constants, as one hash-set lookup per row.
//!
//! Evaluated as n equality comparisons OR-ed together, a list costs n passes over every batch:
//! `l_partkey IN (5,000 keys)` took 35 s over SF1 `lineitem`, and a million keys would not
//! finish. A list of at least [`MIN_SET_LEN`] non-NULL-or-NULL constants of the tested
//! expression's own type is instead encoded once into Arrow's row format and kept in a hash
//! set; each batch's values are encoded the same way and looked up. SQL's three values hold:
//! a row's result is TRUE when its value is in the set, NULL when its value is NULL or (not
//! found) the list holds a NULL, FALSE otherwise; `NOT IN` negates that.
//!
//! Floating-point lists keep the comparisons: the row format tells `-0.0` from `0.0`, which
//! SQL holds equal.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray};
use arrow::datatypes::DataType;
use arrow::row::{RowConverter, SortField};

use crate::error::Result;
use crate::logical::scalar::ScalarValue;

/// Fewest constants for which a list is looked up in a set rather than compared item by item.
pub(crate) const MIN_SET_LEN: usize = 16;

/// The constants of an `IN` list, as a set of their row encodings.
#[derive(Clone)]
pub(crate) struct InSet {
    data_type: DataType,
    /// The non-NULL constants, for display and equality.
    values: ArrayRef,
    has_null: bool,
    set: Arc<hashbrown::HashSet<Box<[u8]>>>,
}

impl std::fmt::Debug for InSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InSet")
            .field("data_type", &self.data_type)
            .field("values", &self.values.len())
            .field("has_null", &self.has_null)
            .finish()
    }
}

impl PartialEq for InSet {
    fn eq(&self, other: &Self) -> bool {
        self.data_type == other.data_type
            && self.has_null == other.has_null
            && self.values.to_data() == other.values.to_data()
    }
}

impl InSet {
    /// The set of `items`, every one a constant of `data_type`; `None` when they are too few,
    /// of another type, or floats (see the module docs).
    pub(crate) fn try_new(data_type: &DataType, items: &[&ScalarValue]) -> Result<Option<Self>> {
        if items.len() < MIN_SET_LEN
            || data_type.is_floating()
            || items
                .iter()
                .any(|v| !v.is_null() && v.data_type() != data_type)
        {
            return Ok(None);
        }
        let has_null = items.iter().any(|v| v.is_null());
        let arrays: Vec<&dyn Array> = items
            .iter()
            .filter(|v| !v.is_null())
            .map(|v| v.array().as_ref())
            .collect();
        let values = if arrays.is_empty() {
            arrow::array::new_empty_array(data_type)
        } else {
            arrow::compute::concat(&arrays)?
        };
        let converter = RowConverter::new(vec![SortField::new(data_type.clone())])?;
        let rows = converter.convert_columns(&[Arc::clone(&values)])?;
        let set = rows.iter().map(|r| Box::<[u8]>::from(r.as_ref())).collect();
        Ok(Some(Self {
            data_type: data_type.clone(),
            values,
            has_null,
            set: Arc::new(set),
        }))
    }

    /// Whether each value of `array` is in the set, in SQL's three values (`negated`: NOT IN).
    pub(crate) fn contains(&self, array: &dyn Array, negated: bool) -> Result<BooleanArray> {
        let converter = RowConverter::new(vec![SortField::new(self.data_type.clone())])?;
        let rows = converter.convert_columns(&[arrow::array::make_array(array.to_data())])?;
        Ok((0..array.len())
            .map(|i| {
                if array.is_null(i) {
                    None
                } else if self.set.contains(rows.row(i).as_ref()) {
                    Some(!negated)
                } else if self.has_null {
                    None
                } else {
                    Some(negated)
                }
            })
            .collect())
    }
}
