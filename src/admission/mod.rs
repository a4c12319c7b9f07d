//! Admission: turning an AdmissionRequest into a decision.

pub mod attempt;
pub mod coverage;
pub mod decision;
pub mod digest;
pub mod guard;
pub mod matching;
pub mod message;

pub use attempt::Attempt;
pub use decision::{Decision, Hold, decide};
