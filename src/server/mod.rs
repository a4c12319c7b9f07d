//! Serving plumbing shared by the webhook, the operator and the console:
//! TLS and connection limits, client certificates, probes, shutdown.

pub mod client_auth;
pub mod probes;
pub mod serve;
pub mod shutdown;
pub mod tls;
