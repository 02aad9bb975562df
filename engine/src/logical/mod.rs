//! The logical layer: what a query computes, independent of how it runs. Plans, expressions,
//! schemas, types and values, plus the helpers every layer above uses on them: plan traversal,
//! hidden column names and cardinality estimates. It knows nothing of operators.

pub(crate) mod cardinality;
mod constructors;
pub mod expr;
pub mod expr_fn;
mod functions;
pub(crate) mod hidden;
pub mod plan;
pub mod scalar;
pub mod schema;
mod source;
pub(crate) mod types;
pub mod window;
mod wire;
