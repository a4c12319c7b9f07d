//! What to do next with the webhook's certificates: a pure function of what
//! the Secret holds, what the apiserver has been told to trust, and the time.
//!
//! A CA rotation has three steps so that no handshake ever fails:
//! 1. a new CA joins the trusted bundle (the old one stays) while replicas
//!    keep serving the old certificate;
//! 2. once the apiserver trusts the new bundle and a step has passed, a
//!    serving certificate from the new CA replaces the old one;
//! 3. a step later, when every replica serves the new certificate, the old
//!    CA leaves the bundle.
//!
//! The steps are recorded in the Secret's annotations, so a new leader picks
//! up a rotation where the old one left it.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::CertInfo;

/// Set by a person (any new value) to rotate the CA now.
pub const ROTATE_ANNOTATION: &str = "approvalgate.dev/rotate";
/// The value of [`ROTATE_ANNOTATION`] that was acted on.
pub const ROTATED_ANNOTATION: &str = "approvalgate.dev/rotated";
/// During a rotation: when the serving certificate may switch to the new CA.
pub const SERVE_NEW_AFTER: &str = "approvalgate.dev/serve-new-after";
/// During a rotation: when the previous CA may leave the bundle.
pub const DROP_PREVIOUS_AFTER: &str = "approvalgate.dev/drop-previous-after";

/// Lifetimes and the pause between rotation steps.
#[derive(Clone, Debug)]
pub struct Settings {
    pub ca_validity: Duration,
    pub cert_validity: Duration,
    /// Long enough for the apiserver to load a new caBundle and for every
    /// replica to load a new certificate from the Secret.
    pub step: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            ca_validity: Duration::from_secs(365 * 24 * 3600),
            cert_validity: Duration::from_secs(90 * 24 * 3600),
            step: Duration::from_secs(30),
        }
    }
}

/// What the Secret holds, parsed. Unusable parts are `None`.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// The trusted bundle, current CA first.
    pub authorities: Vec<CertInfo>,
    /// The CA key belongs to the first CA in the bundle.
    pub ca_key_matches: bool,
    pub serving: Option<CertInfo>,
    /// The serving key belongs to the serving certificate.
    pub serving_key_matches: bool,
    pub rotate_requested: Option<String>,
    pub rotated: Option<String>,
    pub serve_new_after: Option<Timestamp>,
    pub drop_previous_after: Option<Timestamp>,
}

/// The next thing to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing usable: a new CA and serving certificate, trusted at once.
    Bootstrap,
    /// Step 1: a new CA becomes current; the old one stays trusted.
    StartCaRotation,
    /// A new serving certificate from the current CA (step 2 of a rotation,
    /// or a renewal, or the hosts changed).
    IssueServing,
    /// Step 3: only the current CA stays trusted.
    DropPrevious,
    /// Nothing to do; look again at this time (if any).
    Wait(Option<Timestamp>),
}

/// Decides the next step. `published` says whether the apiserver has been
/// given the Secret's current bundle (the webhook configuration carries it).
pub fn plan(
    observed: Option<&Observed>,
    hosts: &[String],
    published: bool,
    now: Timestamp,
) -> Step {
    let Some(o) = observed else {
        return Step::Bootstrap;
    };
    let Some(current) = o.authorities.first().filter(|_| o.ca_key_matches) else {
        return Step::Bootstrap;
    };
    if now >= current.not_after {
        // An expired CA cannot be rotated gracefully: nothing trusts it anyway.
        return Step::Bootstrap;
    }
    if let Some(at) = o.drop_previous_after {
        return if now >= at {
            Step::DropPrevious
        } else {
            Step::Wait(Some(at))
        };
    }
    if let Some(at) = o.serve_new_after {
        return match (now >= at, published) {
            (true, true) => Step::IssueServing,
            // The webhook configuration is written next; that wakes us again.
            (true, false) => Step::Wait(None),
            (false, _) => Step::Wait(Some(at)),
        };
    }
    if o.rotate_requested.is_some() && o.rotate_requested != o.rotated {
        return Step::StartCaRotation;
    }
    if now >= current.renew_at() {
        return Step::StartCaRotation;
    }
    let serving_ok = o.serving.as_ref().filter(|s| {
        o.serving_key_matches
            && s.signed_by(current)
            && now < s.renew_at()
            && hosts.iter().all(|h| s.hosts.contains(h))
    });
    let Some(serving) = serving_ok else {
        return Step::IssueServing;
    };
    if o.authorities.len() > 1 {
        // Left over from an interrupted rotation: the serving certificate
        // already comes from the current CA, so the others are not needed.
        return Step::DropPrevious;
    }
    Step::Wait(Some(current.renew_at().min(serving.renew_at())))
}

/// `now + step`, for the rotation annotations.
pub fn after_step(now: Timestamp, settings: &Settings) -> Timestamp {
    let step = SignedDuration::try_from(settings.step).unwrap_or(SignedDuration::from_secs(30));
    now.checked_add(step).unwrap_or(now)
}

#[cfg(test)]
#[path = "rotation_tests.rs"]
mod tests;
