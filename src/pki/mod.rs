//! The webhook's own PKI: a CA and the serving certificate it signs, kept in
//! one Secret by the operator, so that no cert-manager is needed.
//!
//! This module makes and reads certificates; [`rotation`] decides, as a pure
//! function of what the Secret holds and the time, what to do next.

pub mod rotation;

use jiff::Timestamp;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData as _,
};
use x509_parser::{extensions::GeneralName, pem::Pem};

use crate::error::{Error, Result};

/// Secret keys, as cert-manager and `kubernetes.io/tls` Secrets name them.
pub const TLS_CERT: &str = "tls.crt";
pub const TLS_KEY: &str = "tls.key";
/// The CA bundle the apiserver must trust: the current CA first, then any
/// previous CA still in its overlap window.
pub const CA_BUNDLE: &str = "ca.crt";
/// The current CA's private key (only when approval-gate issues certificates).
pub const CA_KEY: &str = "ca.key";

/// Certificates are valid from a little before they are made, so that an
/// apiserver whose clock runs behind still accepts them.
const BACKDATE_SECONDS: i64 = 300;

/// What one certificate says, as far as rotation cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    /// DNS names and IP addresses from the subjectAltName extension.
    pub hosts: Vec<String>,
    /// Raw DER of the subject and issuer names, to tell who signed what.
    pub subject: Vec<u8>,
    pub issuer: Vec<u8>,
    /// DER SubjectPublicKeyInfo, to check that a key belongs to it.
    pub public_key: Vec<u8>,
}

impl CertInfo {
    /// The moment from which this certificate should be replaced: two thirds
    /// of its lifetime, which leaves a third for retries and propagation.
    pub fn renew_at(&self) -> Timestamp {
        let lifetime = self.not_after.as_second() - self.not_before.as_second();
        Timestamp::from_second(self.not_before.as_second() + lifetime * 2 / 3)
            .unwrap_or(self.not_after)
    }

    pub fn signed_by(&self, authority: &CertInfo) -> bool {
        self.issuer == authority.subject
    }
}

/// Every certificate in a PEM bundle, in order.
pub fn parse_bundle(pem: &[u8]) -> Result<Vec<CertInfo>> {
    let mut certs = Vec::new();
    for block in Pem::iter_from_buffer(pem) {
        let block = block.map_err(|e| Error::tls("PEM", e))?;
        if block.label != "CERTIFICATE" {
            continue;
        }
        let cert = block
            .parse_x509()
            .map_err(|e| Error::tls("X.509 certificate", e))?;
        let time = |t: x509_parser::time::ASN1Time| {
            Timestamp::from_second(t.timestamp()).map_err(|e| Error::tls("certificate validity", e))
        };
        let mut hosts = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(dns) => hosts.push((*dns).to_owned()),
                    GeneralName::IPAddress(ip) => hosts.extend(ip_to_string(ip)),
                    _ => {}
                }
            }
        }
        certs.push(CertInfo {
            not_before: time(cert.validity().not_before)?,
            not_after: time(cert.validity().not_after)?,
            hosts,
            subject: cert.subject().as_raw().to_vec(),
            issuer: cert.issuer().as_raw().to_vec(),
            public_key: cert.public_key().raw.to_vec(),
        });
    }
    if certs.is_empty() {
        return Err(Error::tls_invalid("no PEM CERTIFICATE block"));
    }
    Ok(certs)
}

fn ip_to_string(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes)
            .ok()
            .map(|b| std::net::Ipv4Addr::from(b).to_string()),
        16 => <[u8; 16]>::try_from(bytes)
            .ok()
            .map(|b| std::net::Ipv6Addr::from(b).to_string()),
        _ => None,
    }
}

/// The DER SubjectPublicKeyInfo of a PEM private key.
pub fn public_key_of(key_pem: &str) -> Result<Vec<u8>> {
    Ok(KeyPair::from_pem(key_pem)?.subject_public_key_info())
}

/// A CA certificate and its key, as PEM.
#[derive(Clone, Debug)]
pub struct Authority {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A serving certificate and its key, as PEM.
#[derive(Clone, Debug)]
pub struct Serving {
    pub cert_pem: String,
    pub key_pem: String,
}

fn validity(params: &mut CertificateParams, now: Timestamp, lifetime: std::time::Duration) {
    let from = now.as_second() - BACKDATE_SECONDS;
    let to = now
        .as_second()
        .saturating_add(i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX / 2));
    params.not_before =
        time::OffsetDateTime::from_unix_timestamp(from).unwrap_or(params.not_before);
    params.not_after = time::OffsetDateTime::from_unix_timestamp(to).unwrap_or(params.not_after);
}

/// A fresh CA. Its name is unique (time and a random part), so a serving
/// certificate's issuer tells which CA generation signed it.
pub fn new_authority(now: Timestamp, lifetime: std::time::Duration) -> Result<Authority> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(
        DnType::CommonName,
        format!(
            "approval-gate webhook CA {}-{:08x}",
            now.as_second(),
            rand::random::<u32>()
        ),
    );
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut params, now, lifetime);
    let cert = params.self_signed(&key)?;
    Ok(Authority {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// A serving certificate for `hosts` (DNS names or IP addresses), signed by `authority`.
pub fn issue_serving(
    authority: &Authority,
    hosts: &[String],
    now: Timestamp,
    lifetime: std::time::Duration,
) -> Result<Serving> {
    let ca_key = KeyPair::from_pem(&authority.key_pem)?;
    let issuer = Issuer::from_ca_cert_pem(&authority.cert_pem, ca_key)?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(hosts.to_vec())?;
    let common_name = hosts.first().map_or("approval-gate", String::as_str);
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    validity(&mut params, now, lifetime);
    let cert = params.signed_by(&key, &issuer)?;
    Ok(Serving {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Splits a PEM bundle into its CERTIFICATE blocks, as PEM text.
pub fn split_bundle(pem: &str) -> Vec<String> {
    const END: &str = "-----END CERTIFICATE-----";
    pem.split_inclusive(END)
        .map(str::trim)
        .filter(|block| block.contains("-----BEGIN CERTIFICATE-----") && block.ends_with(END))
        .map(|block| format!("{block}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const YEAR: std::time::Duration = std::time::Duration::from_secs(365 * 24 * 3600);

    #[test]
    fn issued_certificate_names_its_hosts_and_its_issuer() {
        let now = Timestamp::now();
        let ca = new_authority(now, YEAR).unwrap();
        let hosts = vec!["ag.approval-gate.svc".to_owned(), "127.0.0.1".to_owned()];
        let serving = issue_serving(&ca, &hosts, now, YEAR / 4).unwrap();
        let ca_info = &parse_bundle(ca.cert_pem.as_bytes()).unwrap()[0];
        let leaf = &parse_bundle(serving.cert_pem.as_bytes()).unwrap()[0];
        assert_eq!(leaf.hosts, hosts);
        assert!(leaf.signed_by(ca_info));
        assert_eq!(public_key_of(&serving.key_pem).unwrap(), leaf.public_key);
        assert_eq!(public_key_of(&ca.key_pem).unwrap(), ca_info.public_key);
        assert!(leaf.not_before < now && leaf.not_after > now);
        assert!(leaf.renew_at() < leaf.not_after && leaf.renew_at() > now);
    }

    #[test]
    fn a_new_authority_does_not_sign_for_the_old_one() {
        let now = Timestamp::now();
        let old = new_authority(now, YEAR).unwrap();
        // Made in the same second: still told apart.
        let new = new_authority(now, YEAR).unwrap();
        let serving = issue_serving(&old, &["x".to_owned()], now, YEAR).unwrap();
        let leaf = &parse_bundle(serving.cert_pem.as_bytes()).unwrap()[0];
        let new_info = &parse_bundle(new.cert_pem.as_bytes()).unwrap()[0];
        assert!(!leaf.signed_by(new_info));
    }

    #[test]
    fn bundles_split_and_parse_in_order() {
        let now = Timestamp::now();
        let a = new_authority(now, YEAR).unwrap();
        let b = new_authority(now + jiff::SignedDuration::from_secs(1), YEAR).unwrap();
        let bundle = format!("{}{}", a.cert_pem, b.cert_pem);
        let parts = split_bundle(&bundle);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].trim(), a.cert_pem.trim());
        assert_eq!(parse_bundle(bundle.as_bytes()).unwrap().len(), 2);
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let err = parse_bundle(b"not a certificate").unwrap_err().to_string();
        assert!(err.contains("no PEM CERTIFICATE"), "{err}");
        assert!(public_key_of("nope").is_err());
    }
}
