//! approval-gate: just-in-time approval for sensitive Kubernetes changes.
#![forbid(unsafe_code)]

pub mod cli;
pub mod crd;
pub mod error;
pub mod testenv;

pub use error::{Error, Result};
