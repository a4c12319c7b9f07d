//! request: ask for approval by hand, for policies that do not bind to content.

use jiff::Timestamp;
use kube::api::{ObjectMeta, PostParams};

use super::{
    cli::{Output, RequestArgs},
    client::Conn,
    commands::print_objects,
    error::{PluginError, Result, exit},
    format,
    view::RequestView,
};
use crate::{
    admission::{Attempt, matching::policy_matches},
    crd::{ApprovalRequest, ApprovalRequestSpec, Mode, Operation, Target},
};

/// Common kinds, singular or plural, to their resource and API group.
const KINDS: [(&str, &str, &str); 8] = [
    ("deployment", "deployments", "apps"),
    ("statefulset", "statefulsets", "apps"),
    ("daemonset", "daemonsets", "apps"),
    ("pod", "pods", ""),
    ("namespace", "namespaces", ""),
    ("configmap", "configmaps", ""),
    ("secret", "secrets", ""),
    ("service", "services", ""),
];

/// Parses `resource[.group]/name` (`deployment/checkout`, `deployments.apps/checkout`,
/// `ns/prod` is not special: use `namespace/prod`). Namespaces are cluster-scoped.
pub fn parse_target(text: &str, namespace: &str) -> Result<Target> {
    let usage = || {
        PluginError::Usage(format!(
            "cannot read target {text:?}: write it as resource[.group]/name, for example deployment/checkout"
        ))
    };
    let (kind, name) = text.split_once('/').ok_or_else(usage)?;
    if kind.is_empty() || name.is_empty() || name.contains('/') {
        return Err(usage());
    }
    let (resource, group) = match kind.split_once('.') {
        Some((r, g)) => (r.to_lowercase(), g.to_lowercase()),
        None => {
            let k = kind.to_lowercase();
            KINDS
                .iter()
                .find(|(singular, plural, _)| *singular == k || *plural == k)
                .map_or((k, String::new()), |(_, plural, group)| {
                    ((*plural).to_owned(), (*group).to_owned())
                })
        }
    };
    let cluster_scoped = group.is_empty() && resource == "namespaces";
    Ok(Target {
        api_group: group,
        resource,
        subresource: None,
        namespace: if cluster_scoped {
            String::new()
        } else {
            namespace.to_owned()
        },
        name: name.to_owned(),
    })
}

fn operation(text: &str) -> Result<Operation> {
    Operation::ALL
        .into_iter()
        .find(|op| op.as_str().eq_ignore_ascii_case(text))
        .ok_or_else(|| PluginError::Usage(format!("unknown operation {text:?}")))
}

pub async fn request(conn: &Conn, args: &RequestArgs) -> Result<u8> {
    let target = parse_target(&args.target, &conn.namespace)?;
    let operation = operation(&args.operation)?;
    let me = conn.whoami().await?;
    let policy = match &args.policy {
        Some(p) => p.clone(),
        None => pick_policy(conn, &me.user, operation, &target).await?,
    };
    let mut req = ApprovalRequest::new(
        "",
        ApprovalRequestSpec {
            requester: me.user.clone(),
            operation,
            target: target.clone(),
            digest: None,
            reason: args.reason.clone(),
            policy,
            change: None,
            previous: None,
        },
    );
    let prefix: String = format!("{}-{}-", target.name, operation.as_str().to_lowercase())
        .chars()
        .take(40)
        .collect();
    req.metadata = ObjectMeta {
        generate_name: Some(prefix),
        namespace: Some(conn.namespace.clone()),
        ..ObjectMeta::default()
    };
    let created = conn
        .requests(Some(&conn.namespace))
        .create(&PostParams::default(), &req)
        .await
        .map_err(|e| conn.kube(e))?;
    match args.output {
        Output::Json | Output::Yaml => print_objects(&[created], args.output, false)?,
        _ => {
            let view = RequestView::new(&created, None, Timestamp::now());
            if args.output == Output::Name {
                print!("{}", format::names(&[view]));
            } else {
                println!(
                    "approvalrequest.approvalgate.dev/{} created: {} {} under ApprovalPolicy {:?}.\n\
                     An approver can run: kubectl approve {} -n {}\nTo wait: kubectl approve wait {} -n {}",
                    view.name,
                    view.operation,
                    view.target,
                    view.policy,
                    view.name,
                    view.namespace,
                    view.name,
                    view.namespace
                );
            }
        }
    }
    Ok(exit::OK)
}

/// The one Enforce policy that holds this action, or a plain reason why not.
async fn pick_policy(
    conn: &Conn,
    user: &str,
    operation: Operation,
    target: &Target,
) -> Result<String> {
    let attempt = Attempt {
        uid: String::new(),
        user: user.to_owned(),
        groups: Vec::new(),
        operation,
        target: target.clone(),
        request_namespace: if target.namespace.is_empty() {
            target.name.clone()
        } else {
            target.namespace.clone()
        },
        digest: None,
        reason: String::new(),
        dry_run: false,
        relabel: None,
    };
    let matching: Vec<String> = conn
        .policies()
        .await
        .into_iter()
        .filter(|(_, p)| p.mode == Mode::Enforce && policy_matches(p, &attempt, None))
        .map(|(name, _)| name)
        .collect();
    match matching.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(PluginError::Usage(format!(
            "no ApprovalPolicy holds {operation} {target}; nothing to ask for (or name one with --policy)"
        ))),
        many => Err(PluginError::Usage(format!(
            "several ApprovalPolicies hold {operation} {target} ({}); choose one with --policy",
            many.join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_name_resource_group_and_object() {
        let t = parse_target("deployment/checkout", "prod").unwrap();
        assert_eq!(t.to_string(), "deployments.apps/checkout");
        assert_eq!(t.namespace, "prod");
        let t = parse_target("deployments.apps/checkout", "prod").unwrap();
        assert_eq!(t.to_string(), "deployments.apps/checkout");
        let t = parse_target("namespace/staging", "prod").unwrap();
        assert_eq!(
            (t.to_string(), t.namespace),
            ("namespaces/staging".to_owned(), String::new())
        );
        assert_eq!(parse_target("cm/x", "p").unwrap().to_string(), "cm/x");
        assert!(parse_target("checkout", "prod").is_err());
        assert!(parse_target("pods/exec/web-0", "prod").is_err());
    }
}
