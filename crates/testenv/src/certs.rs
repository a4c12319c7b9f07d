//! Certificates and keys for the local apiserver and webhook.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::error::Result;

/// A CA and one serving certificate it signed, as PEM.
pub struct ServingCerts {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl ServingCerts {
    /// A fresh CA and a serving certificate for `hosts` (DNS names or IPs).
    pub fn generate(common_name: &str, hosts: &[&str]) -> Result<Self> {
        Self::leaf(common_name, hosts, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A fresh CA and a client certificate for `common_name`, as the
    /// apiserver presents to webhooks.
    pub fn client(common_name: &str) -> Result<Self> {
        Self::leaf(common_name, &[], ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn leaf(common_name: &str, hosts: &[&str], usage: ExtendedKeyUsagePurpose) -> Result<Self> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "approval-gate local CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let key = KeyPair::generate()?;
        let mut params =
            CertificateParams::new(hosts.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &issuer)?;
        Ok(Self {
            ca_pem: ca.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// PEM material for the apiserver: its serving certificate, the CA that signed
/// it (what kubeconfigs trust), and the service-account signing key.
pub struct ControlPlaneCerts {
    pub serving: ServingCerts,
    pub sa_key_pem: String,
    pub sa_pub_pem: String,
}

impl ControlPlaneCerts {
    /// Material for an apiserver serving on `address` (and on loopback).
    pub fn generate(address: std::net::Ipv4Addr) -> Result<Self> {
        let address = address.to_string();
        let serving = ServingCerts::generate(
            "kube-apiserver",
            &[
                "localhost",
                "127.0.0.1",
                &address,
                "kubernetes",
                "kubernetes.default.svc",
            ],
        )?;
        let sa_key = KeyPair::generate()?;
        Ok(Self {
            serving,
            sa_pub_pem: sa_key.public_key_pem(),
            sa_key_pem: sa_key.serialize_pem(),
        })
    }
}
