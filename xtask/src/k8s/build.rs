//! The test cluster's binaries, built from the Go module proxy with the
//! module graphs pinned in `xtask/k8s/{kubernetes,etcd}` (go.mod, go.sum),
//! into the cache. A stamp of those files skips the build when nothing
//! changed; Go's own caches beside the binaries make a rebuild link-only.
//! helm is built the same way for the chart tests.

use std::{fs, path::Path, process::Command};

use anyhow::{Context, bail};

use super::CACHE;
use crate::cmd;

/// The Kubernetes release the cluster runs (complete on the module proxy
/// here, see the README's Kubernetes section).
pub const KUBERNETES: &str = "v1.33.13";
/// The commands a single-node cluster needs. kube-proxy is left out: the
/// one Service address pods use, the API's, is sent to the API server by
/// two DNAT rules in the node's namespace.
const KUBERNETES_COMMANDS: &[&str] = &[
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kubectl",
];
/// helm, for `helm lint` and `helm template` of the chart.
pub const HELM: &str = "v4.3.2";
pub const HELM_BIN: &str = "/var/lib/mamori-tools/bin/helm";

pub fn bin(name: &str) -> String {
    format!("{CACHE}/bin/{name}")
}

/// Builds what is missing or stale.
pub fn all() -> anyhow::Result<()> {
    let src = cmd::root().join("xtask/k8s");
    let stamp_path = Path::new(CACHE).join("bin/.stamp");
    let stamp = format!(
        "{}{}{}",
        fs::read_to_string(src.join("kubernetes/go.sum"))?,
        fs::read_to_string(src.join("etcd/go.sum"))?,
        KUBERNETES_COMMANDS.join(" ")
    );
    let built = fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp)
        && KUBERNETES_COMMANDS
            .iter()
            .chain(&["etcd"])
            .all(|c| Path::new(&bin(c)).exists());
    if !built {
        eprintln!(
            "k8s: building Kubernetes {KUBERNETES} and etcd from the Go module proxy into {CACHE} \
             (10-20 minutes the first time, about 2 with Go's caches warm)"
        );
        let started = std::time::Instant::now();
        kubernetes(&src.join("kubernetes"))?;
        go(
            &src.join("etcd"),
            &[
                "build",
                "-trimpath",
                "-ldflags",
                "-s -w",
                "-o",
                &bin("etcd"),
            ],
            &["go.etcd.io/etcd/server/v3"],
        )?;
        fs::write(&stamp_path, stamp)?;
        eprintln!("k8s: built in {} s", started.elapsed().as_secs());
    }
    helm()
}

fn kubernetes(dir: &Path) -> anyhow::Result<()> {
    // Without these the binaries call themselves v0.0.0-master, which
    // kubectl and the kubelet's version checks take badly.
    let minor = KUBERNETES.split('.').nth(1).unwrap_or_default();
    let mut ldflags = String::from("-s -w");
    for p in [
        "k8s.io/component-base/version",
        "k8s.io/client-go/pkg/version",
    ] {
        ldflags += &format!(
            " -X {p}.gitVersion={KUBERNETES} -X {p}.gitMajor=1 -X {p}.gitMinor={minor} -X {p}.gitTreeState=clean"
        );
    }
    let out = format!("{CACHE}/bin/");
    let packages: Vec<String> = KUBERNETES_COMMANDS
        .iter()
        .map(|c| format!("k8s.io/kubernetes/cmd/{c}"))
        .collect();
    let packages: Vec<&str> = packages.iter().map(String::as_str).collect();
    go(
        dir,
        &["build", "-trimpath", "-ldflags", &ldflags, "-o", &out],
        &packages,
    )
}

fn helm() -> anyhow::Result<()> {
    if cmd::output(HELM_BIN, &["version", "--short"]).is_some_and(|v| v.starts_with(HELM)) {
        return Ok(());
    }
    eprintln!("k8s: building helm {HELM} from the Go module proxy (a few minutes, once)");
    let dir = Path::new(HELM_BIN).parent().context("helm's directory")?;
    fs::create_dir_all(dir)?;
    let ldflags = format!("-s -w -X helm.sh/helm/v4/internal/version.version={HELM}");
    let module = format!("helm.sh/helm/v4/cmd/helm@{HELM}");
    let mut c = go_command(Path::new(CACHE));
    c.env("GOBIN", dir)
        .args(["install", "-trimpath", "-ldflags", &ldflags, &module]);
    checked(c)
}

/// `go` with the cache's module and build caches, at low priority (the
/// build takes both cores for minutes).
pub fn go_command(dir: &Path) -> Command {
    // Go is preinstalled in /usr/local/go; a PATH without it is common
    // for non-login shells.
    let go = if cmd::output("go", &["version"]).is_some() {
        "go"
    } else {
        "/usr/local/go/bin/go"
    };
    let mut c = Command::new("nice");
    c.args(["-n", "19", go])
        .current_dir(dir)
        .env("GOMODCACHE", format!("{CACHE}/go/mod"))
        .env("GOCACHE", format!("{CACHE}/go/build"))
        .env("GOFLAGS", "-modcacherw")
        .env("GOTOOLCHAIN", "local");
    c
}

fn go(dir: &Path, args: &[&str], packages: &[&str]) -> anyhow::Result<()> {
    fs::create_dir_all(format!("{CACHE}/bin"))?;
    let mut c = go_command(dir);
    c.args(args).args(packages);
    checked(c)
}

pub fn checked(mut c: Command) -> anyhow::Result<()> {
    let shown = format!("{c:?}");
    eprintln!("+ {shown}");
    let status = c
        .status()
        .context("cannot start go (Go is preinstalled on these machines)")?;
    if !status.success() {
        bail!("{shown} failed: {status}");
    }
    Ok(())
}
