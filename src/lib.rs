//! approval-gate: just-in-time approval for sensitive Kubernetes changes.
#![forbid(unsafe_code)]

pub mod admission;
pub mod audit;
pub mod change;
pub mod cli;
pub mod console;
pub mod controller;
pub mod crd;
pub mod error;
pub mod events;
pub mod index;
pub mod lifecycle;
pub mod metrics;
pub mod notify;
pub mod operator;
pub mod pki;
pub mod plugin;
pub mod registration;
pub mod server;
#[cfg(test)]
mod testing;
pub mod webhook;

pub use error::{Error, Result};
