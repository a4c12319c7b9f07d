//! The recorded change as the plugin shows it: summary, command line and
//! diff lines, every string made [`inert`] (the requester wrote the object).

use super::sanitize::inert;
use crate::{
    change::{
        render::{self, Line},
        summary::command_line,
    },
    crd::ApprovalRequest,
};

/// The change of one request, ready to print.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeView {
    /// One line: `image app: nginx:1.27 → evil/backdoor:1`.
    pub summary: String,
    /// An exec's command line, quoted as a shell reads it.
    pub command: Option<String>,
    /// The `---` and `+++` headers.
    pub sides: (String, String),
    pub lines: Vec<Line>,
    /// The resourceVersion of the object the change was taken against.
    pub base_resource_version: Option<String>,
}

impl ChangeView {
    /// The view of `req`'s recorded change, or None when it records none.
    pub fn of(req: &ApprovalRequest) -> Option<Self> {
        let spec = &req.spec;
        let change = spec.change.as_ref()?;
        let target = spec.target.to_string();
        let (old, new) = render::sides(spec.operation, change, &target);
        let lines = render::lines(spec.operation, change)
            .into_iter()
            .map(|l| match l {
                Line::Same(t) => Line::Same(inert(&t)),
                Line::Removed(t) => Line::Removed(inert(&t)),
                Line::Added(t) => Line::Added(inert(&t)),
                Line::Note(t) => Line::Note(inert(&t)),
            })
            .collect();
        Some(Self {
            summary: inert(&change.summary),
            command: change
                .connect
                .as_ref()
                .filter(|c| !c.command.is_empty())
                .map(|c| inert(&command_line(&c.command))),
            sides: (inert(&old), inert(&new)),
            lines,
            base_resource_version: change.base_resource_version.as_deref().map(inert),
        })
    }
}

/// What the live object says about a change taken against `base`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Live {
    /// The object is as it was when the request was made.
    Same,
    /// It changed since: the diff describes an old base.
    Changed { now: String },
    /// It no longer exists.
    Gone,
    /// It could not be read (no right to, or an error): said, not guessed.
    Unknown(String),
}

/// The warning describe and diff print for `live`, if any.
pub fn stale_warning(base: Option<&str>, live: &Live) -> Option<String> {
    let base = base?;
    match live {
        Live::Same => None,
        Live::Changed { now } => Some(format!(
            "the object has changed since the request was made (resourceVersion {base} → {}): \
             this diff describes an old base, and the change it binds may no longer apply as shown",
            inert(now)
        )),
        Live::Gone => Some("the object no longer exists".to_owned()),
        Live::Unknown(why) => Some(format!(
            "could not compare with the live object ({}): check it yourself before approving",
            inert(why)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_base_is_a_warning_and_an_unchanged_one_is_not() {
        assert_eq!(stale_warning(Some("41"), &Live::Same), None);
        let w = stale_warning(Some("41"), &Live::Changed { now: "57".into() }).unwrap();
        assert!(
            w.contains("resourceVersion 41 → 57") && w.contains("old base"),
            "{w}"
        );
        assert_eq!(
            stale_warning(None, &Live::Gone),
            None,
            "CREATE and CONNECT have no base"
        );
    }
}
