//! The leader's side of the certificate: whether the webhook is served yet,
//! the rotation steps it carries out on the Secret, and their audit trail.

use super::*;

impl Maintainer {
    /// Whether the webhook can be reached: with a Service, one of its
    /// EndpointSlices has a ready endpoint; a URL is taken as reachable.
    pub(super) async fn serving(&self) -> Result<bool> {
        let Endpoint::Service {
            namespace, name, ..
        } = &self.config.registration.endpoint
        else {
            return Ok(true);
        };
        let slices = Api::<EndpointSlice>::namespaced(self.client.clone(), namespace)
            .list(&ListParams::default().labels(&format!("kubernetes.io/service-name={name}")))
            .await?;
        Ok(any_ready(&slices.items))
    }

    /// Carries out rotation steps until one says wait; returns when to look again.
    pub(super) async fn rotate(&mut self) -> Result<Option<tokio::time::Instant>> {
        let hosts = self.config.registration.endpoint.hosts();
        let api =
            Api::<Secret>::namespaced(self.client.clone(), &self.config.registration.own_namespace);
        let owner = self.owner().await;
        loop {
            let now = Timestamp::now();
            let published = self.published();
            let observed = self.secret.value.as_ref().map(issuer::observe);
            let step = rotation::plan(observed.as_ref(), &hosts, published, now);
            let Some(mut next) = issuer::next_secret(
                &step,
                self.secret.value.as_ref(),
                &self.config.secret,
                &self.config.registration.own_namespace,
                &hosts,
                now,
                &self.config.pki,
            )?
            else {
                let Step::Wait(at) = step else {
                    return Ok(None);
                };
                return Ok(at.map(|at| instant_at(at, now)));
            };
            if let Some(owner) = &owner {
                issuer::own(&mut next, owner);
            }
            let written = issuer::write(&api, &next).await?;
            self.audit_step(&step, &written);
            self.secret.value = Some(written);
            if step == Step::StartCaRotation {
                // Publish the overlapping bundle before anything else.
                return Ok(Some(tokio::time::Instant::now()));
            }
        }
    }

    /// Whether the configuration carries the Secret's current bundle.
    fn published(&self) -> bool {
        let bundle = self.secret.value.as_ref().and_then(issuer::bundle);
        let webhooks = self
            .configuration
            .value
            .as_ref()
            .and_then(|c| c.webhooks.as_ref());
        match (bundle, webhooks) {
            (Some(bundle), Some(webhooks)) => webhooks.iter().all(|w| {
                w.client_config.ca_bundle.as_ref().map(|b| b.0.as_slice()) == Some(&bundle[..])
            }),
            _ => false,
        }
    }

    fn audit_step(&self, step: &Step, secret: &Secret) {
        let (reason, note) = match step {
            Step::Bootstrap => (
                Reason::CertificateIssued,
                "created a CA and a serving certificate",
            ),
            Step::StartCaRotation => (
                Reason::CARotationStarted,
                "a new CA joined the trusted bundle; the old one stays trusted until the rotation ends",
            ),
            Step::IssueServing => (
                Reason::CertificateIssued,
                "issued a new serving certificate from the current CA",
            ),
            Step::DropPrevious => (
                Reason::CARotationFinished,
                "the previous CA left the trusted bundle",
            ),
            Step::Wait(_) => return,
        };
        tracing::info!(secret = %secret.name_any(), reason = reason.as_str(), "{note}");
        self.events.send(Note {
            regarding: secret.object_ref(&()),
            warning: false,
            reason,
            action: "Rotate",
            note: note.to_owned(),
        });
    }
}
