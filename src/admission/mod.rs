//! Admission: turning an AdmissionRequest into a decision.

pub mod attempt;
pub mod coverage;
pub mod decision;
pub mod digest;
pub mod guard;
pub mod json;
pub mod matching;
pub mod message;
pub mod review;

pub use attempt::Attempt;
pub use decision::{Decision, Hold, decide};
pub use review::Review;
