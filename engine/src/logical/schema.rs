//! Schemas of logical plan nodes: Arrow fields with an optional relation qualifier.
//!
//! `SELECT l.l_orderkey FROM lineitem l` resolves `l.l_orderkey` against fields qualified `l`;
//! unqualified names search all fields and fail on ambiguity. Name lookup is exact first, then
//! case-insensitive (SQL identifiers are case-insensitive unless quoted).

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::{Field, FieldRef, Schema, SchemaRef};

use crate::error::{closest_name, EngineError, Result};
use crate::logical::hidden;

/// A field of a plan's output together with the relation it belongs to.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PlanField {
    /// Table name or alias that qualifies the field (`None` for computed columns).
    pub qualifier: Option<String>,
    /// The Arrow field.
    pub field: FieldRef,
}

impl PlanField {
    /// A field with a qualifier.
    pub(crate) fn new(qualifier: Option<String>, field: Field) -> Self {
        Self {
            qualifier,
            field: Arc::new(field),
        }
    }

    /// The unqualified name.
    pub fn name(&self) -> &str {
        self.field.name()
    }

    /// `qualifier.name` or `name`.
    pub fn qualified_name(&self) -> String {
        let name = hidden::display(self.field.name());
        match &self.qualifier {
            Some(q) => format!("{}.{name}", hidden::display(q)),
            None => name.into_owned(),
        }
    }
}

/// The output schema of a logical plan node.
#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct PlanSchema {
    fields: Vec<PlanField>,
    /// For wide schemas, the fields by ASCII-lowercased name, built on the first lookup: the
    /// optimizer resolves every column of every node by name, which is quadratic in the
    /// columns with a scan (`SELECT *` of a 10,000-column file took 33 s to plan).
    #[serde(skip)]
    by_name: std::sync::OnceLock<std::collections::HashMap<String, Vec<usize>>>,
}

/// Schemas with at most this many fields are searched field by field.
const INDEXED_FROM: usize = 32;

impl PartialEq for PlanSchema {
    fn eq(&self, other: &Self) -> bool {
        self.fields == other.fields
    }
}

impl fmt::Debug for PlanSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlanSchema")
            .field("fields", &self.fields)
            .finish()
    }
}

impl PlanSchema {
    /// Whether `other` has the same columns: qualifiers, names and types, in order (what a
    /// rewrite of a plan node must keep).
    pub(crate) fn same_columns(&self, other: &PlanSchema) -> bool {
        self.len() == other.len()
            && self.fields().iter().zip(other.fields()).all(|(a, b)| {
                a.qualifier == b.qualifier
                    && a.name() == b.name()
                    && a.field.data_type() == b.field.data_type()
            })
    }

    /// A column reference to every field, qualified as the field is.
    pub(crate) fn column_exprs(&self) -> Vec<crate::logical::expr::Expr> {
        self.fields()
            .iter()
            .map(|f| {
                crate::logical::expr::Expr::Column(crate::logical::expr::Column::qualified(
                    f.qualifier.clone(),
                    f.name(),
                ))
            })
            .collect()
    }

    /// A schema from fields.
    pub(crate) fn new(fields: Vec<PlanField>) -> Self {
        Self {
            fields,
            by_name: std::sync::OnceLock::new(),
        }
    }

    /// All fields of an Arrow schema, qualified by `qualifier`.
    pub(crate) fn from_arrow(qualifier: Option<&str>, schema: &Schema) -> Self {
        Self::new(
            schema
                .fields()
                .iter()
                .map(|f| PlanField {
                    qualifier: qualifier.map(str::to_string),
                    field: Arc::clone(f),
                })
                .collect(),
        )
    }

    /// The fields.
    pub fn fields(&self) -> &[PlanField] {
        &self.fields
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// True when there are no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The field at `index`.
    pub fn field(&self, index: usize) -> &PlanField {
        &self.fields[index]
    }

    /// The same fields re-qualified with `qualifier`.
    pub(crate) fn with_qualifier(&self, qualifier: &str) -> Self {
        Self::new(
            self.fields
                .iter()
                .map(|f| PlanField {
                    qualifier: Some(qualifier.to_string()),
                    field: Arc::clone(&f.field),
                })
                .collect(),
        )
    }

    /// Indices of the fields whose name equals `name` ignoring ASCII case, in order.
    fn named(&self, name: &str) -> Vec<usize> {
        if self.fields.len() < INDEXED_FROM {
            return (0..self.fields.len())
                .filter(|&i| self.fields[i].name().eq_ignore_ascii_case(name))
                .collect();
        }
        let index = self.by_name.get_or_init(|| {
            let mut index: std::collections::HashMap<String, Vec<usize>> =
                std::collections::HashMap::with_capacity(self.fields.len());
            for (i, f) in self.fields.iter().enumerate() {
                index
                    .entry(f.name().to_ascii_lowercase())
                    .or_default()
                    .push(i);
            }
            index
        });
        index
            .get(&name.to_ascii_lowercase())
            .cloned()
            .unwrap_or_default()
    }

    /// The equivalent Arrow schema (qualifiers dropped).
    pub fn to_arrow(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.fields
                .iter()
                .map(|f| Arc::clone(&f.field))
                .collect::<Vec<_>>(),
        ))
    }

    /// Find a column by optional qualifier and name.
    pub(crate) fn index_of(&self, qualifier: Option<&str>, name: &str) -> Result<usize> {
        self.try_index_of(qualifier, name)?
            .ok_or_else(|| self.not_found(qualifier, name))
    }

    /// Like [`index_of`](Self::index_of) but `Ok(None)` when the name is absent (still an error
    /// when it is ambiguous).
    pub(crate) fn try_index_of(
        &self,
        qualifier: Option<&str>,
        name: &str,
    ) -> Result<Option<usize>> {
        let candidates = self.named(name);
        for case_insensitive in [false, true] {
            let matches: Vec<usize> = candidates
                .iter()
                .map(|&i| (i, &self.fields[i]))
                .filter(|(_, f)| {
                    let name_ok = if case_insensitive {
                        f.name().eq_ignore_ascii_case(name)
                    } else {
                        f.name() == name
                    };
                    let qualifier_ok = match (qualifier, &f.qualifier) {
                        (None, _) => true,
                        (Some(q), Some(fq)) => {
                            if case_insensitive {
                                q.eq_ignore_ascii_case(fq)
                            } else {
                                q == fq
                            }
                        }
                        (Some(_), None) => false,
                    };
                    name_ok && qualifier_ok
                })
                .map(|(i, _)| i)
                .collect();
            match matches.len() {
                0 => continue,
                1 => return Ok(Some(matches[0])),
                _ => {
                    let candidates: Vec<String> = matches
                        .iter()
                        .map(|&i| self.fields[i].qualified_name())
                        .collect();
                    return Err(EngineError::Plan(format!(
                        "column reference '{name}' is ambiguous; it could be any of: {}",
                        candidates.join(", ")
                    )));
                }
            }
        }
        Ok(None)
    }

    /// The error for a name that is not in this schema.
    pub(crate) fn not_found(&self, qualifier: Option<&str>, name: &str) -> EngineError {
        // Hidden columns are planning's own: never offered to the user.
        let valid: Vec<String> = self
            .fields
            .iter()
            .map(|f| f.name())
            .filter(|n| !hidden::is_hidden(n))
            .map(str::to_string)
            .collect();
        let suggestion = closest_name(name, valid.iter().map(String::as_str));
        let name = match qualifier {
            Some(q) => format!("{q}.{name}"),
            None => name.to_string(),
        };
        EngineError::ColumnNotFound {
            name,
            valid,
            suggestion,
        }
    }

    /// Concatenate two schemas (used by joins).
    pub(crate) fn join(&self, other: &PlanSchema) -> Self {
        let mut fields = self.fields.clone();
        fields.extend(other.fields.iter().cloned());
        Self::new(fields)
    }
}

impl fmt::Display for PlanSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .fields
            .iter()
            .map(|field| format!("{}: {}", field.qualified_name(), field.field.data_type()))
            .collect();
        write!(f, "[{}]", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::DataType;

    use super::*;

    /// `n` fields `c0…`, qualified `t`, plus `Dup` (twice, qualified `a` and `b`) and `MiXed`.
    fn schema(n: usize) -> PlanSchema {
        let mut fields: Vec<PlanField> = (0..n)
            .map(|i| {
                PlanField::new(
                    Some("t".into()),
                    Field::new(format!("c{i}"), DataType::Int32, true),
                )
            })
            .collect();
        fields.push(PlanField::new(
            Some("a".into()),
            Field::new("Dup", DataType::Int32, true),
        ));
        fields.push(PlanField::new(
            Some("b".into()),
            Field::new("dup", DataType::Int32, true),
        ));
        fields.push(PlanField::new(
            None,
            Field::new("MiXed", DataType::Int32, true),
        ));
        PlanSchema::new(fields)
    }

    #[test]
    fn wide_schemas_resolve_names_as_narrow_ones_do() {
        // Below and above the size from which lookups go through the name index.
        for n in [3, INDEXED_FROM + 5, 5000] {
            let s = schema(n);
            assert_eq!(s.try_index_of(None, "c2").unwrap(), Some(2), "{n}");
            assert_eq!(s.try_index_of(Some("t"), "C2").unwrap(), Some(2), "{n}");
            assert_eq!(s.try_index_of(Some("T"), "c2").unwrap(), Some(2), "{n}");
            assert_eq!(s.try_index_of(Some("x"), "c2").unwrap(), None, "{n}");
            assert_eq!(s.try_index_of(None, "nope").unwrap(), None, "{n}");
            // Exact case first: `Dup` is field n, `dup` field n + 1; either case alone
            // resolves, a case-insensitive-only match of both is ambiguous.
            assert_eq!(s.try_index_of(None, "Dup").unwrap(), Some(n), "{n}");
            assert_eq!(s.try_index_of(None, "dup").unwrap(), Some(n + 1), "{n}");
            assert!(s.try_index_of(None, "DUP").is_err(), "{n}");
            assert_eq!(
                s.try_index_of(Some("b"), "DUP").unwrap(),
                Some(n + 1),
                "{n}"
            );
            assert_eq!(s.try_index_of(None, "mixed").unwrap(), Some(n + 2), "{n}");
            assert_eq!(s.try_index_of(Some("t"), "mixed").unwrap(), None, "{n}");
            // The index is not part of equality or of the serialized form.
            let fresh = schema(n);
            assert_eq!(s, fresh);
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, serde_json::to_string(&fresh).unwrap());
            let back: PlanSchema = serde_json::from_str(&json).unwrap();
            assert_eq!(back.try_index_of(None, "c1").unwrap(), Some(1));
        }
    }
}
