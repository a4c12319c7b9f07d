pub mod client_auth;
pub mod tls;
