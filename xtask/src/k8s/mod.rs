//! `cargo xtask k8s up|down|status|kubectl ARGS`: a real single-node
//! Kubernetes cluster for the tests, changing nothing on the host;
//! `build` (its binaries and helm), `manifests` (the plain manifests from
//! the chart).
//!
//! - Built from the Go module proxy into [`CACHE`] (`build`), reused when
//!   present.
//! - Every daemon runs in one private mount and network namespace: the
//!   node's network (its address [`NODE_IP`], the pod bridge, iptables) and
//!   its `/run`, `/var/log` and `/var/lib/cni` exist only there
//!   (`namespace`). The host's sysctls are shielded from the kubelet.
//! - containerd with its own root and socket; images built locally and
//!   imported (`images`); nothing is pulled.
//! - `down` stops everything `up` started and removes what it made, even
//!   after a failed run.

pub mod build;
mod cgroups;
mod chart;
mod config;
mod images;
mod namespace;
mod node;
mod pki;

use std::{os::unix::process::CommandExt, process::Command};

use anyhow::{Context, bail};

/// Binaries, Go's caches and the node's state.
pub const CACHE: &str = "/var/lib/mamori-k8s";
/// The node's state: certificates, configs, logs, containerd's root, the
/// namespace files. Tests find the cluster here (`MAMORI_TEST_K8S`).
pub const NODE_DIR: &str = "/var/lib/mamori-k8s/node";
pub const NODE_NAME: &str = "mamori-node";
/// The node's address, on a veth pair inside its network namespace (the
/// API server may not advertise a loopback address).
pub const NODE_IP: &str = "10.250.0.1";

pub fn run(what: &str, args: &[String]) -> anyhow::Result<()> {
    match what {
        "up" => up().map(drop),
        "down" => node::down(),
        "status" => node::status(),
        "kubectl" => {
            let mut c = kubectl_command();
            let err = c.args(args).exec();
            Err(err).context("cannot run kubectl")
        }
        "build" => build::all(),
        "manifests" => chart::write(),
        other => bail!(
            "unknown k8s command {other:?}: up, down, status, kubectl ARGS, build or manifests"
        ),
    }
}

/// Brings the cluster up (after clearing a previous one); returns the node
/// directory the tests are given.
pub fn up() -> anyhow::Result<&'static str> {
    build::all()?;
    node::up()?;
    Ok(NODE_DIR)
}

pub fn down() -> anyhow::Result<()> {
    node::down()
}

/// kubectl as the cluster's admin, inside the node's network namespace.
pub fn kubectl_command() -> Command {
    let mut c = Command::new("nsenter");
    c.arg(format!("--net={NODE_DIR}/ns/net"))
        .arg("--")
        .arg(build::bin("kubectl"))
        .arg(format!("--kubeconfig={NODE_DIR}/pki/admin.kubeconfig"));
    c
}

/// helm, for the chart tests.
pub fn helm() -> anyhow::Result<&'static str> {
    build::all()?;
    Ok(build::HELM_BIN)
}

/// Builds (or finds) the cluster's binaries and helm.
pub fn build() -> anyhow::Result<()> {
    build::all()
}
