//! The logical layer: expressions, schemas, types and plans, independent of execution.

pub mod expr;
pub mod expr_fn;
pub mod plan;
pub mod scalar;
pub mod schema;
pub mod types;
