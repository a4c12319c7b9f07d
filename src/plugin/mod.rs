//! `kubectl approve`: the kubectl plugin for requesters and approvers.
//!
//! Thin edges around pure parts: [`cli`] parses argv, [`view`] and [`format`]
//! turn requests into text without I/O (golden-tested), [`client`] is the only
//! place that talks to the apiserver, and [`commands`], [`wait`] and
//! [`request`] tie them together.

#[cfg(test)]
mod change_golden_tests;
pub mod change_view;
pub mod cli;
pub mod client;
pub mod commands;
pub mod diff;
pub mod error;
pub mod format;
#[cfg(test)]
mod golden;
pub mod request;
pub mod sanitize;
pub mod view;
pub mod wait;

use std::{ffi::OsString, io::IsTerminal as _};

use cli::Command;
use client::Conn;
use error::{Result, exit};
use format::Style;

/// Runs the plugin with `args` (argv, program name first); returns the exit code.
pub async fn main(args: Vec<OsString>) -> u8 {
    let cli = match cli::parse(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::ERROR
            } else {
                exit::OK
            };
            let _ = e.print();
            return code;
        }
    };
    crate::server::tls::install_crypto_provider();
    let no_color = std::env::var("NO_COLOR").ok();
    let style = Style::detect(std::io::stdout().is_terminal(), no_color.as_deref());
    match run(cli, style).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

async fn run(cli: cli::Cli, style: Style) -> Result<u8> {
    if let Command::Completion { shell } = &cli.command {
        // Needs no cluster.
        let mut command = <cli::Cli as clap::CommandFactory>::command();
        clap_complete::generate(
            *shell,
            &mut command,
            "kubectl-approve",
            &mut std::io::stdout(),
        );
        return Ok(exit::OK);
    }
    let conn = Conn::connect(&cli.global).await?;
    match &cli.command {
        Command::List(a) => commands::list(&conn, a, style).await,
        Command::Describe(a) => commands::describe(&conn, a, style).await,
        Command::Diff(a) => diff::diff(&conn, a, style).await,
        Command::Approve(a) => commands::approve(&conn, a, style).await,
        Command::Deny(a) => commands::deny_or_revoke(&conn, a, false, style).await,
        Command::Revoke(a) => commands::deny_or_revoke(&conn, a, true, style).await,
        Command::Wait(a) => wait::wait(&conn, a, style).await,
        Command::Run(a) => wait::run(&conn, a, style).await,
        Command::Request(a) => request::request(&conn, a).await,
        Command::Completion { .. } => Ok(exit::OK),
    }
}
