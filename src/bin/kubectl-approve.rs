//! `kubectl approve`: the kubectl plugin for requesters and approvers.
//!
//! Its commands (list, describe, approve, deny, revoke, wait, run, request) are
//! tracked in their own issue; until they land it says so plainly.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "kubectl approve: this build has no commands yet. Until it does, approvers can use \
         `kubectl get approvalrequests` and `kubectl edit --subresource=status`."
    );
    ExitCode::from(2)
}
