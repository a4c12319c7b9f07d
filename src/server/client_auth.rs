//! Authenticating the caller of `/validate`: the webhook can require the
//! apiserver's client certificate (the apiserver presents one when its
//! `AdmissionConfiguration` names a `kubeConfigFile` for webhooks). A caller
//! without a certificate from the configured CA, or with one for another
//! name, is refused during the TLS handshake, before any byte of a review is
//! read.

use std::{fmt, sync::Arc};

use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, Error as TlsError, RootCertStore,
    SignatureScheme,
    client::danger::HandshakeSignatureValid,
    server::{
        WebPkiClientVerifier,
        danger::{ClientCertVerified, ClientCertVerifier},
    },
};
use rustls_pki_types::{CertificateDer, UnixTime, pem::PemObject};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::error::{Error, Result};

/// The verifier for client certificates signed by one of the CAs in
/// `ca_pem`, and, when `names` is not empty, naming one of them (common name
/// or DNS subject alternative name).
pub fn verifier(
    source: &str,
    ca_pem: &[u8],
    names: &[String],
) -> Result<Arc<dyn ClientCertVerifier>> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        let cert = cert.map_err(|e| Error::tls(format!("{source}: not a PEM certificate"), e))?;
        roots
            .add(cert)
            .map_err(|e| Error::tls(format!("{source}: unusable CA certificate"), e))?;
    }
    if roots.is_empty() {
        return Err(Error::tls_invalid(format!(
            "{source}: holds no CA certificate"
        )));
    }
    let inner =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), super::tls::crypto_provider())
            .build()
            .map_err(|e| Error::tls(source, e))?;
    if names.is_empty() {
        return Ok(inner);
    }
    Ok(Arc::new(Named {
        inner,
        names: names.to_vec(),
    }))
}

/// Why a handshake was refused, as a metric label, when the client's
/// certificate was the reason: `no_certificate` or `bad_certificate`.
pub fn refusal(err: &std::io::Error) -> Option<&'static str> {
    let tls = err.get_ref()?.downcast_ref::<TlsError>()?;
    match tls {
        TlsError::NoCertificatesPresented => Some("no_certificate"),
        TlsError::InvalidCertificate(_) => Some("bad_certificate"),
        _ => None,
    }
}

/// A CA-verified client that must also carry one of `names`.
struct Named {
    inner: Arc<dyn ClientCertVerifier>,
    names: Vec<String>,
}

impl fmt::Debug for Named {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Named").field("names", &self.names).finish()
    }
}

/// The common names and DNS subject alternative names of a certificate.
pub fn cert_names(der: &[u8]) -> Vec<String> {
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return Vec::new();
    };
    let mut names: Vec<String> = cert
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok().map(str::to_owned))
        .collect();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        names.extend(san.value.general_names.iter().filter_map(|n| match n {
            GeneralName::DNSName(d) => Some((*d).to_owned()),
            _ => None,
        }));
    }
    names
}

impl ClientCertVerifier for Named {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, TlsError> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        if cert_names(end_entity)
            .iter()
            .any(|n| self.names.contains(n))
        {
            Ok(verified)
        } else {
            Err(TlsError::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
#[path = "client_auth_tests.rs"]
mod tests;
