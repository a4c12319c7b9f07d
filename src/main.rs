//! `approval-gate`: the webhook, the operator and their tooling in one binary.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use approval_gate::cli::Cli;
use clap::Parser;

/// Every admission parses a review of several KiB into many small
/// allocations; mimalloc serves them far cheaper than glibc's allocator, and
/// than musl's in the static container image.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    approval_gate::server::tls::install_crypto_provider();
    let cli = Cli::parse();
    match cli.run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
