//! The command line of `kubectl approve`, with kubectl's flag conventions.

use std::{ffi::OsString, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXAMPLES: &str = "\
Examples:
  # Requests waiting in the current namespace, and those you may approve anywhere
  kubectl approve list
  kubectl approve list -A --mine

  # Look at one, then approve it (the default action) or deny it
  kubectl approve describe checkout-update-x7k2p -n prod
  kubectl approve checkout-update-x7k2p -n prod --comment 'INC-1234, looks right'
  kubectl approve deny checkout-update-x7k2p -n prod --reason 'not during the freeze'

  # As the requester: run a command and wait for the approval it needs
  kubectl approve run -- kubectl apply -f deploy.yaml

Exit codes:
  0 done (wait: approved or used)   1 error   2 not found
  3 denied   4 expired   5 revoked   6 timed out";

const WAIT_HELP: &str = "\
Exit codes:
  0  Approved (or already Used: it was approved and used)
  2  the request does not exist (or was deleted while waiting)
  3  Denied      4  Expired      5  Revoked      6  timed out
  1  any other error

Examples:
  kubectl approve wait checkout-update-x7k2p -n prod
  kubectl approve wait checkout-update-x7k2p -n prod --timeout 30m && kubectl apply -f deploy.yaml";

const RUN_HELP: &str = "\
When the command is held by approval-gate (its error names `ApprovalRequest <ns>/<name>`),
this prints the request and who can approve it, waits for the decision, and once approved
runs the command again. It exits with the command's own code, or with wait's code
(3 denied, 4 expired, 5 revoked, 6 timed out) when no approval came.

Examples:
  kubectl approve run -- kubectl apply -f deploy.yaml
  kubectl approve run --timeout 30m -- kubectl delete namespace staging";

/// Just-in-time approval for Kubernetes changes: list, inspect and decide ApprovalRequests.
#[derive(Debug, Parser)]
#[command(
    name = "kubectl-approve",
    bin_name = "kubectl approve",
    version,
    after_help = EXAMPLES,
    arg_required_else_help = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// kubectl's connection flags.
#[derive(Debug, Clone, Default, Args)]
pub struct Global {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// The namespace (default: the context's namespace).
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    /// Act as this user (impersonation).
    #[arg(long = "as", global = true, value_name = "USER")]
    pub as_user: Option<String>,
    /// Act with this group (impersonation; repeatable).
    #[arg(long = "as-group", global = true, value_name = "GROUP")]
    pub as_group: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    #[default]
    Table,
    Wide,
    Json,
    Yaml,
    Name,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List approval requests (Pending ones, unless --all-phases).
    #[command(
        visible_alias = "ls",
        after_help = "Examples:\n  kubectl approve list\n  kubectl approve list -A --mine\n  \
                      kubectl approve list --all-phases --requester alice -o wide"
    )]
    List(ListArgs),
    /// Show one request: the action, who asked and why, approvals, time left and Events.
    #[command(after_help = "Examples:\n  kubectl approve describe checkout-update-x7k2p -n prod")]
    Describe(DescribeArgs),
    /// Approve one or more requests (also the default: `kubectl approve NAME...`).
    #[command(
        after_help = "Examples:\n  kubectl approve checkout-update-x7k2p -n prod\n  \
                            kubectl approve a b c --comment 'CHG-42'\n  \
                            kubectl approve --all --requester alice -n prod --yes"
    )]
    Approve(ApproveArgs),
    /// Deny a request, with a reason.
    #[command(
        after_help = "Examples:\n  kubectl approve deny checkout-update-x7k2p -n prod --reason 'wrong image tag'"
    )]
    Deny(DecideArgs),
    /// Withdraw an approval before it is used, with a reason.
    #[command(
        after_help = "Examples:\n  kubectl approve revoke checkout-update-x7k2p -n prod --reason 'approved the wrong change'"
    )]
    Revoke(DecideArgs),
    /// Wait until a request is decided; the exit code tells the outcome.
    #[command(after_help = WAIT_HELP)]
    Wait(WaitArgs),
    /// Run a command; if approval-gate holds it, wait for approval and run it again.
    #[command(after_help = RUN_HELP)]
    Run(RunArgs),
    /// Ask for approval by hand (for policies that do not bind approvals to content).
    #[command(
        after_help = "TARGET is resource[.group]/name; common kinds may be singular: \
                            deployment, statefulset, daemonset, pod, namespace, configmap, secret, service.\n\n\
                            Examples:\n  kubectl approve request deployment/checkout -n prod --reason 'INC-1234 rollback'\n  \
                            kubectl approve request namespaces/staging --operation DELETE --reason cleanup --policy ns-deletes"
    )]
    Request(RequestArgs),
    /// Print a shell completion script (bash, zsh or fish).
    #[command(
        after_help = "Examples:\n  kubectl approve completion bash > /etc/bash_completion.d/kubectl-approve\n  \
                      kubectl approve completion zsh > \"${fpath[1]}/_kubectl-approve\"\n  \
                      kubectl approve completion fish > ~/.config/fish/completions/kubectl-approve.fish"
    )]
    Completion {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// List requests in every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Include decided and finished requests, not only Pending ones.
    #[arg(long)]
    pub all_phases: bool,
    /// Only requests by this user.
    #[arg(long, value_name = "USER")]
    pub requester: Option<String>,
    /// Only requests you may approve (you are an approver under their policy, and not the requester).
    #[arg(long)]
    pub mine: bool,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct DescribeArgs {
    pub name: String,
    /// Output format: table is the readable layout.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The requests to approve.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub names: Vec<String>,
    /// A note for the record.
    #[arg(long, default_value = "")]
    pub comment: String,
    /// Approve every Pending request in the namespace you may approve (with --requester, only theirs).
    #[arg(long)]
    pub all: bool,
    /// With --all: only requests by this user.
    #[arg(long, value_name = "USER", requires = "all")]
    pub requester: Option<String>,
    /// With --all: do not ask for confirmation.
    #[arg(short = 'y', long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct DecideArgs {
    pub name: String,
    /// Why; recorded in the request and its Events.
    #[arg(long)]
    pub reason: String,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    pub name: String,
    /// Give up after this long (for example 90s, 10m, 1h).
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// How long to wait for a decision.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// The command and its arguments, after `--`.
    #[arg(required = true, allow_hyphen_values = true, last = true)]
    pub command: Vec<OsString>,
}

#[derive(Debug, Args)]
pub struct RequestArgs {
    /// The object: resource[.group]/name, for example deployment/checkout or deployments.apps/checkout.
    pub target: String,
    /// CREATE, UPDATE, DELETE or CONNECT.
    #[arg(long, default_value = "UPDATE", value_parser = ["CREATE", "UPDATE", "DELETE", "CONNECT"], ignore_case = true)]
    pub operation: String,
    /// Why the action is needed, for the approver.
    #[arg(long)]
    pub reason: String,
    /// The ApprovalPolicy to ask under (default: the only one that holds the action).
    #[arg(long)]
    pub policy: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Output,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    s.parse::<crate::crd::Duration>()
        .map(|d| d.as_std())
        .map_err(|e| e.to_string())
}

const SUBCOMMANDS: [&str; 11] = [
    "list",
    "ls",
    "describe",
    "approve",
    "deny",
    "revoke",
    "wait",
    "run",
    "request",
    "completion",
    "help",
];

/// Flags that take a value as the next argument, so it is not a name.
const VALUE_FLAGS: [&str; 14] = [
    "--kubeconfig",
    "--context",
    "-n",
    "--namespace",
    "--as",
    "--as-group",
    "-o",
    "--output",
    "--comment",
    "--reason",
    "--requester",
    "--timeout",
    "--policy",
    "--operation",
];

/// `kubectl approve NAME...` means `kubectl approve approve NAME...`: inserts
/// the `approve` subcommand when the first positional word is not a command.
pub fn normalize(args: Vec<OsString>) -> Vec<OsString> {
    let mut first = None;
    let mut all = false;
    let mut skip = false;
    for arg in args.iter().skip(1) {
        let a = arg.to_string_lossy();
        if skip {
            skip = false;
        } else if a == "--" {
            break;
        } else if a.starts_with('-') {
            all |= a == "--all";
            skip = VALUE_FLAGS.contains(&a.as_ref());
        } else {
            first = Some(a.into_owned());
            break;
        }
    }
    let insert = match first {
        Some(word) => !SUBCOMMANDS.contains(&word.as_str()),
        None => all,
    };
    let mut args = args;
    if insert {
        args.insert(1.min(args.len()), "approve".into());
    }
    args
}

/// Parses argv (with the implicit `approve`).
pub fn parse(args: Vec<OsString>) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(normalize(args))
}

#[cfg(test)]
mod tests {
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
    fn wait_takes_kubernetes_durations() {
        let Command::Wait(w) = parse(argv("wait r1 --timeout 90s")).unwrap().command else {
            panic!("not wait");
        };
        assert_eq!(w.timeout, Duration::from_secs(90));
    }
}
