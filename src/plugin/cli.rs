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
  3 denied   4 expired   5 revoked   6 timed out   7 superseded";

const WAIT_HELP: &str = "\
Exit codes:
  0  Approved (or already Used: it was approved and used)
  2  the request does not exist (or was deleted while waiting)
  3  Denied      4  Expired      5  Revoked      6  timed out
  7  Superseded: the requester asked for a newer change to the same target
  1  any other error

Examples:
  kubectl approve wait checkout-update-x7k2p -n prod
  kubectl approve wait checkout-update-x7k2p -n prod --timeout 30m && kubectl apply -f deploy.yaml";

const RUN_HELP: &str = "\
When the command is held by approval-gate (its error names `ApprovalRequest <ns>/<name>`),
this prints the request and who can approve it, waits for the decision, and once approved
runs the command again. It exits with the command's own code, or with wait's code
(3 denied, 4 expired, 5 revoked, 6 timed out, 7 superseded) when no approval came.

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
    /// Show only the change a request would make, as `kubectl diff` prints it (-o json: the structured change).
    #[command(
        after_help = "Examples:\n  kubectl approve diff checkout-update-x7k2p -n prod\n  \
                      kubectl approve diff checkout-update-x7k2p -n prod -o json"
    )]
    Diff(DescribeArgs),
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
    /// Whether `approve` was implied (`kubectl approve NAME...`): then a
    /// missing first name may be a mistyped command.
    #[arg(skip)]
    pub implied: bool,
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

const SUBCOMMANDS: [&str; 12] = [
    "list",
    "ls",
    "describe",
    "diff",
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
    let mut args = args;
    if implies_approve(&args) {
        args.insert(1.min(args.len()), "approve".into());
    }
    args
}

/// Whether the first positional word is not a command (or there is none, but `--all`).
fn implies_approve(args: &[OsString]) -> bool {
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
    match first {
        Some(word) => !SUBCOMMANDS.contains(&word.as_str()),
        None => all,
    }
}

/// Parses argv (with the implicit `approve`).
pub fn parse(args: Vec<OsString>) -> Result<Cli, clap::Error> {
    let implied = implies_approve(&args);
    let mut cli = Cli::try_parse_from(normalize(args))?;
    if let Command::Approve(a) = &mut cli.command {
        a.implied = implied;
    }
    Ok(cli)
}

/// The commands `word` may be a typo of, closest first: within one edit per
/// three letters (at most two; swapping neighbours is one edit), a prefix of
/// a command (`dif`), or a command followed by a separator (`deny-it`).
/// Aliases are not offered.
pub fn suggestions(word: &str) -> Vec<&'static str> {
    let word = word.to_lowercase();
    let len = word.chars().count();
    let max_edits = (len / 3).min(2);
    let mut close: Vec<(usize, &'static str)> = SUBCOMMANDS
        .iter()
        .copied()
        .filter(|cmd| *cmd != "ls")
        .filter_map(|cmd| {
            let edits = edit_distance(&word, cmd);
            let prefix = len >= 2 && cmd.starts_with(&word);
            let extended = word
                .strip_prefix(cmd)
                .and_then(|rest| rest.chars().next())
                .is_some_and(|c| !c.is_alphanumeric());
            (edits <= max_edits || prefix || extended).then_some((edits, cmd))
        })
        .collect();
    close.sort();
    close.into_iter().map(|(_, cmd)| cmd).collect()
}

/// Edits (insert, delete, substitute, swap two neighbours) from `a` to `b`,
/// in characters: the optimal string alignment distance.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut last: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut row = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            row[j] = (last[j - 1] + cost).min(last[j] + 1).min(row[j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                row[j] = row[j].min(before[j - 2] + 1);
            }
        }
        before = std::mem::replace(&mut last, row);
    }
    last[b.len()]
}

#[cfg(test)]
#[path = "cli_tests.rs"]
mod tests;
