//! Front ends: SQL text and the Rust dataframe builder, both producing logical plans.

pub mod dataframe;
pub mod sql;
pub mod subquery;
