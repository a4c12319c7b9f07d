//! approval-gate the way users run it: `helm install` onto a real node
//! (containerd, runc, CNI, kubelet, kube-scheduler and kube-controller-manager
//! with its usual controllers), from the locally built image. Each test has a
//! cluster of its own; `make image-oci` builds the images first.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/mod.rs"]
mod support;

mod failover;
mod harness;
mod image;
mod install;
mod outage;
mod teardown;
mod upgrade;
