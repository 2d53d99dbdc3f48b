//! mamori on a real Kubernetes node (the cluster `cargo xtask test` brings
//! up, see xtask/src/k8s): the plain manifests applied as an operator would
//! (only the image and the Elasticsearch URL changed, the Secret made from
//! literals), the DaemonSet Ready through its own probes without
//! `privileged`, a workload's attacks alerting with the pod's Kubernetes
//! identity, alerts in a real Elasticsearch over TLS with the Secret's
//! credentials (kept through a restart while it is down), and rules edits
//! reaching the running agent. Root only; one
//! agent for the whole binary, each test scoped to what it did.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod agent;
mod elastic;
mod helm;
mod reload;
mod resources;
mod workload;
