//! The pinned helm (built by `hack/build-tools.sh`) and the chart.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use super::plane;

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn chart() -> PathBuf {
    repo().join("charts/approval-gate")
}

/// The pinned helm, with its cache and configuration kept in the control plane's folder.
pub fn helm<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let bin = plane().bin_dir().join("helm");
    assert!(
        bin.exists(),
        "helm is built by hack/build-tools.sh (make tools)"
    );
    Command::new(bin)
        .args(args)
        .env_remove("KUBECONFIG")
        .env("HELM_CACHE_HOME", plane().dir().join("helm-cache"))
        .env("HELM_CONFIG_HOME", plane().dir().join("helm-config"))
        .env("HELM_DATA_HOME", plane().dir().join("helm-data"))
        .output()
        .expect("running helm")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts helm succeeded and returns its stdout.
pub fn helm_ok<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = helm(args);
    assert!(
        out.status.success(),
        "helm failed:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}
