//! The operations, by area. Reads take their fields from a query string
//! (so they are flat); writes from a JSON body.

pub mod calendar;
pub mod cases;
pub mod docs;
pub mod items;
pub mod node;
pub mod operators;
pub mod orders;
pub mod rules;
pub mod stats;
pub mod warnings;

/// Whether a bool is false, for `skip_serializing_if`.
pub(crate) fn is_false(b: &bool) -> bool {
    !b
}

/// Whether a usize is zero, for `skip_serializing_if`.
pub(crate) fn is_zero(n: &usize) -> bool {
    *n == 0
}
