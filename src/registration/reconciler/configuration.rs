//! Writing the ValidatingWebhookConfiguration: every policy the apiserver
//! accepts, and a dry run per policy to find the ones it refuses.

use super::*;

impl Maintainer {
    /// Writes the configuration from every policy the apiserver accepts. When
    /// it refuses the whole, each policy's rules are tried alone (a server
    /// dry run); those refused are left out, shown on their policy, and the
    /// rest is registered at once, so that one bad policy never holds back
    /// the others or a CA-bundle update.
    pub(super) async fn register(&mut self, bundle: &[u8]) -> Result<()> {
        let owner = self.owner().await;
        let mut registration = self.config.registration.clone();
        registration.owner = owner;
        let mut policies: Vec<_> = self.policies.state();
        policies.sort_by_key(|p| p.name_any());
        self.refused.forget_stale(&policies);
        loop {
            let refused = self.refused.snapshot();
            let accepted = registrable(&policies, &refused);
            let rules = rules_for(accepted.iter().map(|p| &p.spec));
            let desired = configuration(&registration, bundle, rules);
            if let Some(current) = &self.configuration.value {
                if current.webhooks == desired.webhooks
                    && current.metadata.owner_references == desired.metadata.owner_references
                {
                    return Ok(());
                }
                if edited_by_others(current, &self.own_writes) {
                    self.edited(current);
                }
            }
            let name = &registration.name;
            let api = Api::<ValidatingWebhookConfiguration>::all(self.client.clone());
            let written = match api
                .patch(
                    name,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&desired),
                )
                .await
            {
                Ok(written) => written,
                Err(kube::Error::Api(status)) if status.code == 422 => {
                    let found = self.probe(&api, &registration, bundle, &accepted).await?;
                    if found == 0 {
                        // No single policy is to blame: keep what is registered.
                        return Err(Error::Kube(kube::Error::Api(status)));
                    }
                    continue;
                }
                Err(e) => return Err(Error::Kube(e)),
            };
            let rule_count = desired
                .webhooks
                .as_ref()
                .and_then(|w| w.first())
                .and_then(|w| w.rules.as_ref())
                .map_or(0, Vec::len);
            tracing::info!(
                configuration = %name,
                rules = rule_count,
                policies = accepted.len(),
                refused = policies.len() - accepted.len(),
                resource_version = %written.resource_version().unwrap_or_default(),
                "webhook configuration written"
            );
            if self.own_writes.len() == OWN_WRITES {
                self.own_writes.pop_front();
            }
            self.own_writes
                .push_back(written.resource_version().unwrap_or_default());
            self.configuration.value = Some(written);
            return Ok(());
        }
    }

    /// Tries each policy's rules alone in a server dry run; records those the
    /// apiserver refuses. Returns how many it found.
    async fn probe(
        &self,
        api: &Api<ValidatingWebhookConfiguration>,
        registration: &crate::registration::Registration,
        bundle: &[u8],
        policies: &[&Arc<ApprovalPolicy>],
    ) -> Result<usize> {
        let mut found = 0;
        for policy in policies {
            let alone = configuration(registration, bundle, rules_for([&policy.spec]));
            let params = PatchParams::apply(FIELD_MANAGER).force().dry_run();
            let message = match api
                .patch(&registration.name, &params, &Patch::Apply(&alone))
                .await
            {
                Ok(_) => continue,
                Err(kube::Error::Api(status)) if status.code == 422 => status.message,
                Err(e) => return Err(Error::Kube(e)),
            };
            found += 1;
            let name = policy.name_any();
            tracing::error!(policy = %name, reason = %message, "the apiserver refuses this policy's webhook rules; registering every other policy without it");
            self.events.send(Note {
                regarding: policy.object_ref(&()),
                warning: true,
                reason: Reason::RegistrationRefused,
                action: "Register",
                note: format!(
                    "the apiserver refused this policy's rules in the webhook configuration, so \
                     it is not enforced; every other policy is: {message}"
                ),
            });
            self.refused.record(policy, message);
        }
        Ok(found)
    }
}
