//! Unit tests for the command line: the implicit `approve`, and the
//! suggestions for a mistyped command.

use clap::CommandFactory;

use super::*;

fn argv(s: &str) -> Vec<OsString> {
    std::iter::once("kubectl-approve")
        .chain(s.split_whitespace())
        .map(OsString::from)
        .collect()
}

#[test]
fn the_cli_is_well_formed() {
    Cli::command().debug_assert();
}

#[test]
fn bare_names_mean_approve() {
    let cli = parse(argv("r1 r2 -n prod --comment ok")).unwrap();
    let Command::Approve(a) = cli.command else {
        panic!("not approve: {cli:?}");
    };
    assert_eq!(a.names, ["r1", "r2"]);
    assert_eq!(cli.global.namespace.as_deref(), Some("prod"));
    let cli = parse(argv("-n prod r1")).unwrap();
    assert!(matches!(cli.command, Command::Approve(_)));
    assert!(matches!(
        parse(argv("--all --yes")).unwrap().command,
        Command::Approve(_)
    ));
}

#[test]
fn subcommands_are_not_names() {
    assert!(matches!(
        parse(argv("list -A")).unwrap().command,
        Command::List(_)
    ));
    assert!(matches!(
        parse(argv("-n x wait r1")).unwrap().command,
        Command::Wait(_)
    ));
    let run = parse(argv("run -- kubectl apply -f x.yaml")).unwrap();
    let Command::Run(r) = run.command else {
        panic!("not run");
    };
    assert_eq!(r.command.len(), 4);
}

#[test]
fn bare_names_are_marked_as_implied_approve() {
    let Command::Approve(a) = parse(argv("descibe r1")).unwrap().command else {
        panic!("not approve");
    };
    assert!(a.implied);
    let Command::Approve(a) = parse(argv("approve descibe r1")).unwrap().command else {
        panic!("not approve");
    };
    assert!(!a.implied);
}

#[test]
fn diff_is_a_command_not_a_name_to_approve() {
    assert_eq!(normalize(argv("diff r1")), argv("diff r1"));
    assert_eq!(normalize(argv("-n prod diff r1")), argv("-n prod diff r1"));
    assert_eq!(normalize(argv("r1 diff")), argv("approve r1 diff"));
}

#[test]
fn typos_of_commands_get_suggestions() {
    assert_eq!(suggestions("descibe"), ["describe"]);
    assert_eq!(suggestions("dif"), ["diff"]);
    assert_eq!(suggestions("lst"), ["list"]);
    assert_eq!(suggestions("deny-it"), ["deny"]);
    assert_eq!(suggestions("apporve"), ["approve"]);
    assert_eq!(suggestions("Wiat"), ["wait"]);
    assert_eq!(suggestions("rvoke"), ["revoke"]);
    assert_eq!(suggestions("de"), ["deny", "describe"]);
}

#[test]
fn request_names_are_not_mistaken_for_typos() {
    for name in [
        "nosuchword",
        "checkout-update-x7k2p",
        "r1",
        "a",
        "",
        "runner",
    ] {
        assert_eq!(suggestions(name), Vec::<&str>::new(), "{name}");
    }
}

#[test]
fn edit_distance_counts_insertions_deletions_substitutions_and_swaps() {
    assert_eq!(edit_distance("", "abc"), 3);
    assert_eq!(edit_distance("describe", "describe"), 0);
    assert_eq!(edit_distance("descibe", "describe"), 1);
    assert_eq!(edit_distance("lsit", "list"), 1);
    assert_eq!(edit_distance("wiat", "list"), 2);
    assert_eq!(edit_distance("kitten", "sitting"), 3);
}

#[test]
fn wait_takes_kubernetes_durations() {
    let Command::Wait(w) = parse(argv("wait r1 --timeout 90s")).unwrap().command else {
        panic!("not wait");
    };
    assert_eq!(w.timeout, Duration::from_secs(90));
}
