//! `kubectl approve diff`: the change a request would make, and whether the
//! live object still is what the change was taken against.

use jiff::Timestamp;
use kube::{
    Api,
    core::DynamicObject,
    discovery::{self, Scope},
};

use super::{
    change_view::{Live, stale_warning},
    cli::{DescribeArgs, Output},
    client::Conn,
    error::{PluginError, Result, exit},
    format::{self, Style},
    view::RequestView,
};
use crate::crd::{ApprovalRequest, Operation, Target};

pub async fn diff(conn: &Conn, args: &DescribeArgs, style: Style) -> Result<u8> {
    let req = conn.request(&args.name).await?;
    let Some(change) = &req.spec.change else {
        eprintln!(
            "{} records no change{}",
            args.name,
            if req.spec.digest.is_some() {
                ": it was written by hand, and nothing shows what its digest binds"
            } else {
                ""
            }
        );
        return Ok(exit::ERROR);
    };
    match args.output {
        Output::Json => println!("{}", to_text(serde_json::to_string_pretty(change))?),
        Output::Yaml => print!("{}", to_text(serde_yaml_ng::to_string(change))?),
        _ => {
            let mut view = RequestView::new(&req, None, Timestamp::now());
            if let Some(warning) = stale(conn, &req).await {
                eprintln!("{}", style.warn(&format!("Warning: {warning}")));
            }
            view.stale = None;
            print!("{}", format::diff(&view, style));
        }
    }
    Ok(exit::OK)
}

fn to_text<E: std::fmt::Display>(r: std::result::Result<String, E>) -> Result<String> {
    r.map_err(|e| PluginError::Api(e.to_string()))
}

/// The warning to show when the live object moved on since the change was
/// recorded (only UPDATE and DELETE are taken against a live object).
pub async fn stale(conn: &Conn, req: &ApprovalRequest) -> Option<String> {
    let change = req.spec.change.as_ref()?;
    let base = change.base_resource_version.as_deref()?;
    if !matches!(req.spec.operation, Operation::Update | Operation::Delete) {
        return None;
    }
    let live = live(conn, &req.spec.target, base).await;
    stale_warning(Some(base), &live)
}

/// How the live object compares with the `base` resourceVersion.
async fn live(conn: &Conn, target: &Target, base: &str) -> Live {
    match live_version(conn, target).await {
        Ok(Some(rv)) if rv == base => Live::Same,
        Ok(Some(rv)) => Live::Changed { now: rv },
        Ok(None) => Live::Gone,
        Err(why) => Live::Unknown(why),
    }
}

async fn live_version(conn: &Conn, target: &Target) -> std::result::Result<Option<String>, String> {
    let group = discovery::group(&conn.client, &target.api_group)
        .await
        .map_err(|e| e.to_string())?;
    let (resource, caps) = group
        .recommended_resources()
        .into_iter()
        .find(|(r, _)| r.plural == target.resource)
        .ok_or_else(|| format!("the cluster does not serve {}", target.resource))?;
    let api: Api<DynamicObject> = match caps.scope {
        Scope::Namespaced => {
            Api::namespaced_with(conn.client.clone(), &target.namespace, &resource)
        }
        Scope::Cluster => Api::all_with(conn.client.clone(), &resource),
    };
    api.get_opt(&target.name)
        .await
        .map(|o| o.map(|o| o.metadata.resource_version.unwrap_or_default()))
        .map_err(|e| e.to_string())
}
