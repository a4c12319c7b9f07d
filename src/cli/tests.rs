//! Unit tests for the command line.

use super::*;
use crate::registration::Endpoint;
use clap::CommandFactory;

#[test]
fn verify_cli() {
    Cli::command().debug_assert();
}

#[test]
fn serve_accepts_webhook_and_operator_flags() {
    let cli = Cli::try_parse_from([
        "approval-gate",
        "serve",
        "--listen=127.0.0.1:8443",
        "--retention=10m",
        "--lease-seconds=5",
        "--control-namespace=ag",
    ])
    .unwrap();
    let Command::Serve(args) = cli.command else {
        panic!("not serve")
    };
    assert_eq!(args.operator.retention.to_string(), "10m");
    assert_eq!(args.webhook.common.namespace, "ag");
    assert!(args.operator.registration.config("ag", "tls").is_none());
}

#[test]
fn a_webhook_url_registers_by_url_with_safe_defaults() {
    let cli = Cli::try_parse_from([
        "approval-gate",
        "operator",
        "--webhook-url=https://127.0.0.1:9443",
        "--rotation-step=3s",
    ])
    .unwrap();
    let Command::Operator(args) = cli.command else {
        panic!("not operator")
    };
    let config = operator_config(&args.common, &args.operator)
        .registration
        .unwrap();
    assert!(matches!(config.registration.endpoint, Endpoint::Url(_)));
    assert_eq!(config.registration.failure_policy, "Fail");
    assert_eq!(config.registration.timeout_seconds, 5);
    assert_eq!(config.secret, "approval-gate-tls");
    assert!(config.manage_certs);
    assert_eq!(config.pki.step, Duration::from_secs(3));
}

#[test]
fn bad_registration_flags_are_refused() {
    for bad in [
        vec!["--webhook-url=https://x", "--webhook-service=gate"],
        vec!["--failure-policy=Sometimes"],
        vec!["--timeout-seconds=31"],
        vec!["--tls-cert-file=/x"],
    ] {
        let mut argv = vec!["approval-gate", "serve"];
        argv.extend(bad.iter().copied());
        assert!(Cli::try_parse_from(&argv).is_err(), "{bad:?} was accepted");
    }
}
