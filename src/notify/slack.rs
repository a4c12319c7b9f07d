//! A Slack incoming-webhook message (Block Kit) for a [`Notice`].

use serde_json::{Value, json};

use super::content::{Audience, Notice};

/// The JSON body: a header section, the facts as fields, the command (for
/// approvers) and a context line; `text` is the fallback notifications show.
pub fn payload(notice: &Notice) -> Value {
    let fields: Vec<Value> = notice
        .facts()
        .into_iter()
        .map(|(label, value)| json!({"type": "mrkdwn", "text": format!("*{label}*\n{}", escape(&value))}))
        .collect();
    let mut blocks = vec![
        json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("*{}*", escape(&notice.headline))}}),
        // Slack shows at most 10 fields per section.
        json!({"type": "section", "fields": fields.into_iter().take(10).collect::<Vec<_>>()}),
    ];
    if !notice.diff.is_empty() {
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": format!("The change:\n```{}```", escape(&notice.diff.join("\n")))},
        }));
    }
    if let Some(link) = &notice.link {
        let label = match notice.audience {
            Audience::Approvers => "Review it in the console",
            Audience::Requester => "Open it in the console",
        };
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": format!("<{link}|{label}>")},
        }));
    }
    if notice.audience == Audience::Approvers {
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": format!("To approve, run:\n```{}```", notice.approve_command)},
        }));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{
            "type": "mrkdwn",
            "text": format!("ApprovalRequest {}/{} · approval-gate", notice.namespace, notice.request),
        }],
    }));
    json!({ "text": notice.headline, "blocks": blocks })
}

/// Slack's mrkdwn treats `&`, `<` and `>` as control characters.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::content::tests::sample;

    #[test]
    fn blocks_carry_the_headline_the_facts_and_the_command() {
        let body = payload(&sample());
        assert_eq!(
            body["text"],
            "alice asks for approval: UPDATE deployments.apps/checkout in prod"
        );
        let blocks = body["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "section");
        assert_eq!(blocks[1]["fields"][0]["text"], "*Requester*\nalice");
        assert!(
            blocks[2]["text"]["text"]
                .as_str()
                .unwrap()
                .contains("kubectl approve checkout-x7k2p -n prod")
        );
        assert_eq!(blocks.last().unwrap()["type"], "context");
    }

    #[test]
    fn the_change_travels_within_slacks_block_limit() {
        use serde_json::json;

        use crate::{change::field, crd::Change, notify::content::diff_excerpt};
        let mut req = crate::testing::request("alice", 0);
        let fields = (0..60)
            .map(|i| {
                field(
                    &format!("data.k{i:02}"),
                    Some(json!("x".repeat(300))),
                    Some(json!("y")),
                )
            })
            .collect();
        req.spec.change = Some(Box::new(Change {
            summary: "60 fields changed: data.k00, data.k01, data.k02, …".into(),
            fields,
            ..Change::default()
        }));
        let mut notice = sample();
        notice.diff = diff_excerpt(&req.spec);
        assert_eq!(notice.diff.len(), 21, "{:#?}", notice.diff);
        assert!(notice.diff[20].contains("more lines: kubectl approve diff"));
        assert!(notice.diff.iter().all(|l| l.chars().count() <= 120));
        let body = payload(&notice);
        let block = body["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|b| {
                b["text"]["text"]
                    .as_str()
                    .filter(|t| t.starts_with("The change:"))
            })
            .expect("a block with the change");
        assert!(block.chars().count() <= 3000, "{}", block.chars().count());
        assert!(block.contains("-  k00: xxxx"), "{block}");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape("a<b>&c"), "a&lt;b&gt;&amp;c");
    }
}
