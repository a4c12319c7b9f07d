//! Notifications: telling approvers about a pending request at once, and
//! requesters about its outcome, over Slack, a signed webhook or email.
//!
//! [`content`] decides what is said (pure); [`slack`], [`webhook`] and
//! [`email`] render and send it; [`deliver`] retries with backoff.

pub mod content;
pub mod deliver;
pub mod email;
pub mod slack;
pub mod webhook;

pub use content::{Audience, Notice, notice};
pub use deliver::{Backoff, Destination, Notifier};
pub use email::Mailer;
