//! Golden files for the plugin's output: the helper the integration tests
//! use too (`tests/support/golden.rs`). A mismatch writes the actual output
//! to `target/golden/<name>`; `make golden` accepts it.

#[allow(dead_code)]
#[path = "../../tests/support/golden.rs"]
mod shared;

pub use shared::golden;
