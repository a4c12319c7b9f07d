//! Unit tests for the console's pages.

use super::*;
use crate::{
    crd::{ApprovalRequest, ApprovalRequestSpec},
    plugin::view::RequestView,
};

fn detail(reason: &str) -> Detail {
    let spec: ApprovalRequestSpec = serde_json::from_value(serde_json::json!({
        "requester": "alice",
        "operation": "UPDATE",
        "target": {"apiGroup": "apps", "resource": "deployments", "namespace": "prod", "name": "web"},
        "reason": reason,
        "policy": "prod",
    }))
    .expect("a spec");
    let mut req = ApprovalRequest::new("r1", spec);
    req.metadata.namespace = Some("prod".to_owned());
    Detail {
        view: RequestView::new(&req, None, Timestamp::now()),
        approvers: "group sre".to_owned(),
        events: Vec::new(),
        may_decide: true,
        may_revoke: false,
    }
}

#[test]
fn what_the_requester_wrote_is_text_never_markup() {
    let viewer = Viewer {
        user: "bob",
        groups: &[],
        csrf: "t0k",
    };
    let page = live(
        &viewer,
        &detail("<script>alert(1)</script><img src=x onerror=y>"),
        Timestamp::now(),
    )
    .into_string();
    assert!(!page.contains("<script>"), "{page}");
    assert!(!page.contains("<img"), "{page}");
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );
}

#[test]
fn every_form_carries_the_csrf_token() {
    let viewer = Viewer {
        user: "bob",
        groups: &[],
        csrf: "t0k",
    };
    let page = live(&viewer, &detail("why"), Timestamp::now()).into_string();
    let forms = page.matches("<form").count();
    assert_eq!(forms, 2, "{page}");
    assert_eq!(
        page.matches(r#"name="csrf" value="t0k""#).count(),
        forms,
        "{page}"
    );
}

#[test]
fn the_requester_is_told_why_there_is_no_button() {
    let viewer = Viewer {
        user: "alice",
        groups: &[],
        csrf: "t",
    };
    let mut d = detail("why");
    d.may_decide = false;
    let page = live(&viewer, &d, Timestamp::now()).into_string();
    assert!(!page.contains("id=\"approve\""), "{page}");
    assert!(page.contains("This is your own request"), "{page}");
}

#[test]
fn an_exec_shows_its_command_line_as_text() {
    let options = serde_json::json!({"kind": "PodExecOptions", "apiVersion": "v1",
        "command": ["sh", "-c", "echo <b>hi</b> | tee /tmp/x"], "container": "app",
        "stdin": true, "stdout": true, "tty": true});
    let action = crate::change::Action::connect("exec", &options);
    let target = crate::testing::target("", "pods", Some("exec"), "web-0");
    let now = Timestamp::now();
    let mut d = detail("debugging");
    d.view = RequestView::new(
        &crate::testing::held("web-0-exec", target, &action, now),
        None,
        now,
    );
    let viewer = Viewer {
        user: "bob",
        groups: &[],
        csrf: "t",
    };
    let page = live(&viewer, &d, now).into_string();
    let command = page
        .split_once(r#"<code id="command">"#)
        .and_then(|(_, rest)| rest.split_once("</code>"))
        .map(|(command, _)| command)
        .unwrap_or_else(|| panic!("no command line on the page: {page}"));
    assert_eq!(command, "sh -c 'echo &lt;b&gt;hi&lt;/b&gt; | tee /tmp/x'");
    assert!(!page.contains("<b>hi"), "{page}");
}
