//! How the leader registers the webhook and issues its certificate.

use clap::Args;

use crate::{
    crd,
    pki::rotation::Settings,
    registration::RegistrationConfig,
    registration::{self, Endpoint, Registration},
};

/// How the leader registers the webhook. Without `--webhook-url` or
/// `--webhook-service` it registers nothing (someone else does).
#[derive(Debug, Args)]
pub struct RegistrationArgs {
    /// Register the webhook at this HTTPS URL (local development: a process
    /// outside the cluster, e.g. `https://127.0.0.1:8443`).
    #[arg(long, conflicts_with = "webhook_service")]
    pub webhook_url: Option<String>,
    /// Register the webhook behind this Service in the control namespace.
    #[arg(long)]
    pub webhook_service: Option<String>,
    /// The Service port that forwards to the webhook's HTTPS port.
    #[arg(long, default_value_t = 443)]
    pub webhook_service_port: i32,
    /// Name of the ValidatingWebhookConfiguration the leader owns.
    #[arg(long, default_value = registration::CONFIGURATION_NAME)]
    pub webhook_configuration: String,
    /// A ClusterRole (the chart's) that owns the configuration, so that
    /// uninstalling approval-gate garbage-collects it.
    #[arg(long)]
    pub owner_cluster_role: Option<String>,
    /// What the apiserver does when the webhook cannot answer, for the
    /// sensitive rules (approval-gate's own resources always fail closed).
    #[arg(long, default_value = "Fail", value_parser = ["Fail", "Ignore"])]
    pub failure_policy: String,
    /// How long the apiserver waits for the webhook.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(i32).range(1..=30))]
    pub timeout_seconds: i32,
    /// Another issuer (cert-manager) writes the `--tls-secret` Secret; only
    /// its `ca.crt` is copied into the configuration.
    #[arg(long)]
    pub external_certs: bool,
    /// Lifetime of the CA approval-gate creates.
    #[arg(long, default_value = "8760h")]
    pub ca_validity: crd::Duration,
    /// Lifetime of the serving certificates it issues.
    #[arg(long, default_value = "2160h")]
    pub cert_validity: crd::Duration,
    /// Pause between the steps of a CA rotation: long enough for the
    /// apiserver and every replica to load new material.
    #[arg(long, default_value = "30s")]
    pub rotation_step: crd::Duration,
}

impl RegistrationArgs {
    pub(super) fn config(&self, namespace: &str, secret: &str) -> Option<RegistrationConfig> {
        let endpoint = match (&self.webhook_url, &self.webhook_service) {
            (Some(url), _) => Endpoint::Url(url.clone()),
            (None, Some(service)) => Endpoint::Service {
                namespace: namespace.to_owned(),
                name: service.clone(),
                port: self.webhook_service_port,
            },
            (None, None) => return None,
        };
        let mut registration = Registration::new(endpoint, namespace);
        registration.name = self.webhook_configuration.clone();
        registration.failure_policy = self.failure_policy.clone();
        registration.timeout_seconds = self.timeout_seconds;
        Some(RegistrationConfig {
            registration,
            secret: secret.to_owned(),
            manage_certs: !self.external_certs,
            pki: Settings {
                ca_validity: self.ca_validity.as_std(),
                cert_validity: self.cert_validity.as_std(),
                step: self.rotation_step.as_std(),
            },
            owner_cluster_role: self.owner_cluster_role.clone(),
        })
    }
}
