//! The webhook port with client authentication: only the apiserver's
//! certificate gets through, every other caller is refused at the handshake
//! and counted.

use axum::{Router, routing::post};
use prometheus_client::metrics::{counter::Counter, family::Family};
use tokio::net::TcpListener;

use super::*;
use crate::{
    metrics::ReasonLabels,
    server::tls::{CertReloader, serve_tls, server_config},
};
use approval_gate_testenv::certs::ServingCerts;

struct Server {
    url: String,
    ca_pem: String,
    refusals: Family<ReasonLabels, Counter>,
}

async fn start(client_ca: &str, names: &[String]) -> Server {
    let serving = ServingCerts::generate("webhook", &["127.0.0.1"]).unwrap();
    let reloader = CertReloader::empty();
    reloader
        .install_pem(
            "test",
            serving.cert_pem.as_bytes(),
            serving.key_pem.as_bytes(),
        )
        .unwrap();
    let clients = verifier("client-ca.crt", client_ca.as_bytes(), names).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://127.0.0.1:{}/validate",
        listener.local_addr().unwrap().port()
    );
    let refusals = Family::<ReasonLabels, Counter>::default();
    let app = Router::new().route("/validate", post(|| async { "reviewed" }));
    tokio::spawn(serve_tls(
        listener,
        app,
        server_config(reloader, Some(clients)),
        crate::server::tls::Limits {
            tls_refusals: refusals.clone(),
            ..Default::default()
        },
        std::future::pending(),
    ));
    Server {
        url,
        ca_pem: serving.ca_pem,
        refusals,
    }
}

async fn call(server: &Server, identity: Option<&ServingCerts>) -> Result<String, reqwest::Error> {
    let mut builder = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(server.ca_pem.as_bytes()).unwrap());
    if let Some(id) = identity {
        let pem = format!("{}{}", id.cert_pem, id.key_pem);
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    builder
        .build()
        .unwrap()
        .post(&server.url)
        .send()
        .await?
        .text()
        .await
}

fn refused(server: &Server, reason: &str) -> u64 {
    server
        .refusals
        .get_or_create(&ReasonLabels {
            reason: reason.to_owned(),
        })
        .get()
}

#[tokio::test]
async fn only_the_apiserver_certificate_gets_a_review_read() {
    let apiserver = ServingCerts::client("kube-apiserver-webhook-client").unwrap();
    let server = start(&apiserver.ca_pem, &[]).await;
    assert_eq!(call(&server, Some(&apiserver)).await.unwrap(), "reviewed");

    assert!(
        call(&server, None).await.is_err(),
        "no certificate: refused"
    );
    assert_eq!(refused(&server, "no_certificate"), 1);

    let forged = ServingCerts::client("kube-apiserver-webhook-client").unwrap();
    assert!(
        call(&server, Some(&forged)).await.is_err(),
        "another CA: refused"
    );
    assert_eq!(refused(&server, "bad_certificate"), 1);
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused_when_names_are_required() {
    let apiserver = ServingCerts::client("kube-apiserver-webhook-client").unwrap();
    let server = start(
        &apiserver.ca_pem,
        &["kube-apiserver-webhook-client".to_owned()],
    )
    .await;
    assert_eq!(call(&server, Some(&apiserver)).await.unwrap(), "reviewed");
    let names = cert_names(&CertificateDer::from_pem_slice(apiserver.cert_pem.as_bytes()).unwrap());
    assert_eq!(names, ["kube-apiserver-webhook-client"]);

    let other = start(&apiserver.ca_pem, &["someone-else".to_owned()]).await;
    assert!(call(&other, Some(&apiserver)).await.is_err());
    assert_eq!(refused(&other, "bad_certificate"), 1);
}

#[test]
fn a_client_ca_file_without_certificates_is_an_error() {
    let err = verifier("empty.crt", b"not a certificate", &[]).unwrap_err();
    assert!(err.to_string().contains("empty.crt"), "{err}");
}
