//! The webhook's certificate Secret: reading it into [`Observed`] and turning
//! a rotation [`Step`] into the Secret's next contents.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::{
    ByteString, api::core::v1::Secret, apimachinery::pkg::apis::meta::v1::OwnerReference,
};
use kube::{
    Api, ResourceExt as _,
    api::{ObjectMeta, PostParams},
};

use crate::{
    error::Result,
    pki::{
        self, Authority, CA_BUNDLE, CA_KEY, TLS_CERT, TLS_KEY,
        rotation::{
            DROP_PREVIOUS_AFTER, Observed, ROTATE_ANNOTATION, ROTATED_ANNOTATION, SERVE_NEW_AFTER,
            Settings, Step, after_step,
        },
    },
};

fn text<'a>(data: &'a BTreeMap<String, ByteString>, key: &str) -> Option<&'a str> {
    data.get(key).and_then(|v| std::str::from_utf8(&v.0).ok())
}

fn timestamp(secret: &Secret, key: &str) -> Option<Timestamp> {
    secret.annotations().get(key).and_then(|v| v.parse().ok())
}

/// What the Secret holds; anything unreadable counts as missing.
pub fn observe(secret: &Secret) -> Observed {
    let empty = BTreeMap::new();
    let data = secret.data.as_ref().unwrap_or(&empty);
    let authorities = text(data, CA_BUNDLE)
        .and_then(|pem| pki::parse_bundle(pem.as_bytes()).ok())
        .unwrap_or_default();
    let key_of = |key: &str| text(data, key).and_then(|pem| pki::public_key_of(pem).ok());
    let serving = text(data, TLS_CERT)
        .and_then(|pem| pki::parse_bundle(pem.as_bytes()).ok())
        .and_then(|certs| certs.into_iter().next());
    let annotations = secret.annotations();
    Observed {
        ca_key_matches: authorities
            .first()
            .is_some_and(|ca| key_of(CA_KEY).as_ref() == Some(&ca.public_key)),
        serving_key_matches: serving
            .as_ref()
            .is_some_and(|s| key_of(TLS_KEY).as_ref() == Some(&s.public_key)),
        authorities,
        serving,
        rotate_requested: annotations.get(ROTATE_ANNOTATION).cloned(),
        rotated: annotations.get(ROTATED_ANNOTATION).cloned(),
        serve_new_after: timestamp(secret, SERVE_NEW_AFTER),
        drop_previous_after: timestamp(secret, DROP_PREVIOUS_AFTER),
    }
}

/// The CA bundle the apiserver must trust, if the Secret has one.
pub fn bundle(secret: &Secret) -> Option<Vec<u8>> {
    secret
        .data
        .as_ref()?
        .get(CA_BUNDLE)
        .map(|b| b.0.clone())
        .filter(|b| !b.is_empty())
}

/// The Secret after `step`, or `None` when the step changes nothing.
pub fn next_secret(
    step: &Step,
    current: Option<&Secret>,
    name: &str,
    namespace: &str,
    hosts: &[String],
    now: Timestamp,
    settings: &Settings,
) -> Result<Option<Secret>> {
    if matches!(step, Step::Wait(_)) {
        return Ok(None);
    }
    let mut next = current
        .cloned()
        .unwrap_or_else(|| empty_secret(name, namespace));
    next.metadata.managed_fields = None;
    next.labels_mut().insert(
        "app.kubernetes.io/managed-by".to_owned(),
        "approval-gate".to_owned(),
    );
    let requested = next.annotations().get(ROTATE_ANNOTATION).cloned();
    let mut edit = Edit {
        annotations: next.metadata.annotations.get_or_insert_with(BTreeMap::new),
        data: next.data.get_or_insert_with(BTreeMap::new),
    };
    let mut bundle = text(edit.data, CA_BUNDLE)
        .map(pki::split_bundle)
        .unwrap_or_default();
    match step {
        Step::Wait(_) => return Ok(None),
        Step::Bootstrap => {
            let ca = pki::new_authority(now, settings.ca_validity)?;
            let serving = pki::issue_serving(&ca, hosts, now, settings.cert_validity)?;
            edit.set(CA_BUNDLE, &ca.cert_pem);
            edit.set(CA_KEY, &ca.key_pem);
            edit.set(TLS_CERT, &serving.cert_pem);
            edit.set(TLS_KEY, &serving.key_pem);
            edit.annotations.remove(SERVE_NEW_AFTER);
            edit.annotations.remove(DROP_PREVIOUS_AFTER);
            edit.rotated(requested);
        }
        Step::StartCaRotation => {
            let ca = pki::new_authority(now, settings.ca_validity)?;
            // Trust the new CA and the one serving now; nothing older.
            bundle.truncate(1);
            bundle.insert(0, ca.cert_pem.clone());
            edit.set(CA_BUNDLE, &bundle.concat());
            edit.set(CA_KEY, &ca.key_pem);
            edit.annotate(SERVE_NEW_AFTER, after_step(now, settings));
            edit.rotated(requested);
        }
        Step::IssueServing => {
            let authority = Authority {
                cert_pem: bundle.first().cloned().unwrap_or_default(),
                key_pem: text(edit.data, CA_KEY).unwrap_or_default().to_owned(),
            };
            let serving = pki::issue_serving(&authority, hosts, now, settings.cert_validity)?;
            edit.set(TLS_CERT, &serving.cert_pem);
            edit.set(TLS_KEY, &serving.key_pem);
            edit.annotations.remove(SERVE_NEW_AFTER);
            if bundle.len() > 1 {
                edit.annotate(DROP_PREVIOUS_AFTER, after_step(now, settings));
            }
        }
        Step::DropPrevious => {
            bundle.truncate(1);
            edit.set(CA_BUNDLE, &bundle.concat());
            edit.annotations.remove(DROP_PREVIOUS_AFTER);
        }
    }
    Ok(Some(next))
}

/// A new TLS Secret with nothing in it yet.
fn empty_secret(name: &str, namespace: &str) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/tls".to_owned()),
        ..Secret::default()
    }
}

/// The parts of the Secret a rotation step writes.
struct Edit<'a> {
    annotations: &'a mut BTreeMap<String, String>,
    data: &'a mut BTreeMap<String, ByteString>,
}

impl Edit<'_> {
    fn set(&mut self, key: &str, value: &str) {
        self.data
            .insert(key.to_owned(), ByteString(value.as_bytes().to_vec()));
    }

    fn annotate(&mut self, key: &str, at: Timestamp) {
        self.annotations.insert(key.to_owned(), at.to_string());
    }

    /// Acknowledges a rotation someone asked for through the annotation.
    fn rotated(&mut self, requested: Option<String>) {
        if let Some(requested) = requested {
            self.annotations
                .insert(ROTATED_ANNOTATION.to_owned(), requested);
        }
    }
}

/// Makes `owner` an owner of the Secret (once): the CA key then goes with
/// the release on uninstall, by garbage collection, like the configuration.
pub fn own(secret: &mut Secret, owner: &OwnerReference) {
    let owners = secret
        .metadata
        .owner_references
        .get_or_insert_with(Vec::new);
    if !owners.iter().any(|o| o.uid == owner.uid) {
        owners.push(owner.clone());
    }
}

/// Creates the Secret, or replaces it conditioned on the version read, so
/// that of two leaders only one rotation wins.
pub async fn write(api: &Api<Secret>, next: &Secret) -> Result<Secret> {
    let written = if next.resource_version().is_some() {
        api.replace(&next.name_any(), &PostParams::default(), next)
            .await?
    } else {
        api.create(&PostParams::default(), next).await?
    };
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Secret after each of `steps`, applied in turn.
    fn secrets_after(steps: &[Step], hosts: &[String], now: Timestamp) -> Vec<Secret> {
        let mut secrets: Vec<Secret> = Vec::new();
        for step in steps {
            let next = next_secret(
                step,
                secrets.last(),
                "tls",
                "ag",
                hosts,
                now,
                &Settings::default(),
            )
            .unwrap()
            .unwrap();
            secrets.push(next);
        }
        secrets
    }

    fn secret_after(steps: &[Step], hosts: &[String], now: Timestamp) -> Secret {
        secrets_after(steps, hosts, now).pop().unwrap()
    }

    #[test]
    fn bootstrap_yields_a_consistent_healthy_secret() {
        let hosts = vec!["gate.ag.svc".to_owned()];
        let now = Timestamp::now();
        let secret = secret_after(&[Step::Bootstrap], &hosts, now);
        let observed = observe(&secret);
        assert!(observed.ca_key_matches && observed.serving_key_matches);
        assert_eq!(observed.authorities.len(), 1);
        assert!(matches!(
            pki::rotation::plan(Some(&observed), &hosts, true, now),
            Step::Wait(Some(_))
        ));
    }

    #[test]
    fn a_rotation_overlaps_the_old_and_new_ca_until_it_is_done() {
        let hosts = vec!["127.0.0.1".to_owned()];
        let steps = [
            Step::Bootstrap,
            Step::StartCaRotation,
            Step::IssueServing,
            Step::DropPrevious,
        ];
        let [boot, started, switched, done] = secrets_after(&steps, &hosts, Timestamp::now())
            .try_into()
            .unwrap();
        let old_ca = observe(&boot).authorities[0].clone();
        let old_leaf = observe(&boot).serving.unwrap();

        let o = observe(&started);
        assert_eq!(o.authorities.len(), 2);
        assert_eq!(o.authorities[1], old_ca);
        assert!(o.ca_key_matches, "the CA key is the new CA's");
        assert_eq!(
            o.serving.as_ref(),
            Some(&old_leaf),
            "still serving the old certificate"
        );
        assert!(o.serve_new_after.is_some());

        let o = observe(&switched);
        assert!(o.serving.as_ref().unwrap().signed_by(&o.authorities[0]));
        assert_eq!(o.authorities.len(), 2, "the old CA is still trusted");
        assert!(o.serve_new_after.is_none() && o.drop_previous_after.is_some());

        let o = observe(&done);
        assert_eq!(o.authorities.len(), 1);
        assert_ne!(o.authorities[0], old_ca);
        assert!(o.drop_previous_after.is_none());
    }

    #[test]
    fn a_requested_rotation_is_marked_done() {
        let hosts = vec!["x".to_owned()];
        let mut secret = secret_after(&[Step::Bootstrap], &hosts, Timestamp::now());
        secret
            .annotations_mut()
            .insert(ROTATE_ANNOTATION.to_owned(), "please".to_owned());
        let next = next_secret(
            &Step::StartCaRotation,
            Some(&secret),
            "tls",
            "ag",
            &hosts,
            Timestamp::now(),
            &Settings::default(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            next.annotations()
                .get(ROTATED_ANNOTATION)
                .map(String::as_str),
            Some("please")
        );
    }

    #[test]
    fn the_owner_is_added_once() {
        let owner = OwnerReference {
            api_version: "rbac.authorization.k8s.io/v1".into(),
            kind: "ClusterRole".into(),
            name: "approval-gate".into(),
            uid: "u-1".into(),
            ..OwnerReference::default()
        };
        let mut secret = Secret::default();
        own(&mut secret, &owner);
        own(&mut secret, &owner);
        assert_eq!(secret.metadata.owner_references, Some(vec![owner]));
    }

    #[test]
    fn garbage_in_the_secret_reads_as_missing() {
        let secret = Secret {
            data: Some(
                [(CA_BUNDLE.to_owned(), ByteString(b"junk".to_vec()))]
                    .into_iter()
                    .collect(),
            ),
            ..Secret::default()
        };
        let o = observe(&secret);
        assert!(o.authorities.is_empty() && o.serving.is_none() && !o.ca_key_matches);
        assert_eq!(
            pki::rotation::plan(Some(&o), &[], true, Timestamp::now()),
            Step::Bootstrap
        );
    }
}
