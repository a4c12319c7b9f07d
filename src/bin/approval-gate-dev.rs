//! `approval-gate-dev`: runs a local control plane for development (`make dev`).
//!
//! Starts etcd and kube-apiserver, installs approval-gate's CRDs and demo RBAC,
//! writes `<dir>/kubeconfig` plus one kubeconfig per demo identity, prints what
//! to try, and stays in the foreground until Ctrl-C or SIGTERM.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use anyhow::Context as _;
use approval_gate::testenv::{ControlPlane, Options, identities};
use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};

/// Run approval-gate's local development control plane.
#[derive(Debug, Parser)]
#[command(name = "approval-gate-dev", version)]
struct Args {
    /// Where to write kubeconfigs, logs and data (wiped at start).
    #[arg(long, default_value = ".dev")]
    dir: PathBuf,
    /// Folder holding etcd and kube-apiserver (what `hack/build-tools.sh` prints).
    #[arg(long, env = "APPROVAL_GATE_BIN_DIR")]
    bin_dir: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    approval_gate::server::tls::install_crypto_provider();
    let args = Args::parse();
    let mut opts = match args.bin_dir {
        Some(bin_dir) => Options {
            bin_dir,
            dir: None,
            install: true,
        },
        None => Options::from_env()?,
    };
    let dir = std::path::absolute(&args.dir).context("resolving --dir")?;
    opts.dir = Some(dir.join("run"));
    let plane = ControlPlane::start(opts)
        .await
        .context("starting the control plane")?;
    link_kubeconfigs(&plane, &dir)?;
    print_banner(&plane, &dir);
    std::fs::write(dir.join("ready"), plane.url()).context("writing the ready marker")?;

    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
    eprintln!("stopping the control plane...");
    let _ = std::fs::remove_file(dir.join("ready"));
    plane.stop();
    Ok(())
}

fn link_kubeconfigs(plane: &ControlPlane, dir: &std::path::Path) -> anyhow::Result<()> {
    for id in &identities::ALL {
        let target = dir.join(id.kubeconfig_name());
        let _ = std::fs::remove_file(&target);
        std::fs::copy(plane.kubeconfig(id), &target)
            .with_context(|| format!("writing {}", target.display()))?;
    }
    Ok(())
}

fn print_banner(plane: &ControlPlane, dir: &std::path::Path) {
    let rel = |name: String| {
        let path = dir.join(name);
        std::env::current_dir()
            .ok()
            .and_then(|cwd| {
                path.strip_prefix(cwd)
                    .ok()
                    .map(std::path::Path::to_path_buf)
            })
            .unwrap_or(path)
            .display()
            .to_string()
    };
    println!(
        "approval-gate local control plane is ready at {}",
        plane.url()
    );
    println!();
    println!("Identities (one kubeconfig each):");
    for id in &identities::ALL {
        println!(
            "  {:<11} {:<60} {}",
            id.key,
            rel(id.kubeconfig_name()),
            id.role
        );
    }
    println!();
    println!("Try:");
    println!("  export KUBECONFIG={}", rel("kubeconfig".into()));
    println!("  kubectl get crd");
    println!("  kubectl explain approvalrequest.spec.target");
    println!(
        "  kubectl --kubeconfig {} get apr -A",
        rel("kubeconfig-alice".into())
    );
    println!();
    println!("Logs: {}   Press Ctrl-C to stop.", rel("run".into()));
}
