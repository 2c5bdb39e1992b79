//! Owns the shape of an error every front end gets: `{code, message}`, never a bare string.
//! A leaf: the codes come from each module's own error type.

use serde::Serialize;

/// The error shape every front end gets.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ApiError {
    pub code: String,
    pub message: String,
}
