//! The plain manifests are the chart rendered with its default values, so
//! the two never drift: `cargo xtask k8s manifests` writes them, and the
//! deploy tests fail when they differ from what the chart renders.

use std::fs;

use crate::cmd;

/// The generated file, beside the hand-written namespace and Secret.
pub const MANIFEST: &str = "deploy/kubernetes/mamori.yaml";
pub const HEADER: &str = "# Generated from the Helm chart deploy/helm/mamori with its default values\n\
# by `cargo xtask k8s manifests`: edit the chart, not this file.\n";

pub fn write() -> anyhow::Result<()> {
    let helm = super::helm()?;
    let chart = cmd::root().join("deploy/helm/mamori");
    let rendered = cmd::quiet(
        helm,
        &[
            "template",
            "mamori",
            &chart.to_string_lossy(),
            "--namespace",
            "mamori",
        ],
    )?;
    let path = cmd::root().join(MANIFEST);
    fs::write(&path, format!("{HEADER}{rendered}"))?;
    eprintln!("k8s: wrote {}", path.display());
    Ok(())
}
