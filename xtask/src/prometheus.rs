//! `cargo xtask prometheus`: Prometheus's tools the tests run, built from
//! the Go module proxy into /var/lib/mamori-tools/bin once per machine.
//!
//! - Alertmanager v0.35.0, for the on-call output tests, with the module
//!   graph pinned in `xtask/alertmanager`. Its module zip lacks the web
//!   UI's built assets (`ui/app/dist`, embedded by `ui/web.go`), so the
//!   build works on a copy of the module with placeholder assets: the API
//!   the tests use needs no UI.
//! - promtool (Prometheus v3, module version v0.316.0), whose `check
//!   metrics` the `/metrics` test runs.

use std::{fs, path::Path};

use anyhow::Context;

use crate::{cmd, k8s::build as go};

pub const VERSION: &str = "v0.35.0";
pub const BIN: &str = "/var/lib/mamori-tools/bin/alertmanager";
/// Prometheus 3.16's module version (Go modules see v3 tags as v0.3xx).
pub const PROMTOOL_VERSION: &str = "v0.316.0";
pub const PROMTOOL_BIN: &str = "/var/lib/mamori-tools/bin/promtool";
const WORK: &str = "/var/lib/mamori-tools/alertmanager-build";

/// Builds both tools, each unless its pinned version is already there.
pub fn build() -> anyhow::Result<()> {
    alertmanager()?;
    promtool()
}

fn promtool() -> anyhow::Result<()> {
    let version = PROMTOOL_VERSION.trim_start_matches('v');
    if cmd::output(PROMTOOL_BIN, &["--version"])
        .is_some_and(|v| v.contains(&format!("version {version} ")))
    {
        return Ok(());
    }
    eprintln!(
        "promtool: building {PROMTOOL_VERSION} from the Go module proxy (about 4 minutes, once)"
    );
    let dir = Path::new(PROMTOOL_BIN)
        .parent()
        .context("promtool's directory")?;
    fs::create_dir_all(dir)?;
    let ldflags = format!("-s -w -X github.com/prometheus/common/version.Version={version}");
    let module = format!("github.com/prometheus/prometheus/cmd/promtool@{PROMTOOL_VERSION}");
    let mut c = go::go_command(dir);
    c.env("GOBIN", dir)
        .args(["install", "-trimpath", "-ldflags", &ldflags, &module]);
    go::checked(c)
}

fn alertmanager() -> anyhow::Result<()> {
    let version = VERSION.trim_start_matches('v');
    if cmd::output(BIN, &["--version"]).is_some_and(|v| v.contains(&format!("version {version} ")))
    {
        return Ok(());
    }
    eprintln!("alertmanager: building {VERSION} from the Go module proxy (about 2 minutes, once)");
    let work = Path::new(WORK);
    let _ = fs::remove_dir_all(work);
    fs::create_dir_all(work)?;
    let pinned = cmd::root().join("xtask/alertmanager");
    for f in ["go.mod", "go.sum", "tools.go"] {
        fs::copy(pinned.join(f), work.join(f)).with_context(|| format!("copy {f}"))?;
    }
    // The module's source, from Go's module cache.
    let mut c = go::go_command(work);
    c.args([
        "mod",
        "download",
        "-json",
        &format!("github.com/prometheus/alertmanager@{VERSION}"),
    ]);
    let out = c.output().context("go mod download")?;
    let info: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("go mod download: {}", String::from_utf8_lossy(&out.stderr)))?;
    let dir = info["Dir"]
        .as_str()
        .context("go mod download gave no Dir")?;
    let src = work.join("src");
    cmd::run("cp", &["-r", dir, &src.to_string_lossy()])?;
    cmd::run("chmod", &["-R", "u+w", &src.to_string_lossy()])?;
    for ui in ["elm", "mantine"] {
        let d = src.join("ui/app/dist").join(ui);
        fs::create_dir_all(&d)?;
        fs::write(
            d.join("index.html"),
            "<!-- mamori's test build: no web UI -->\n",
        )?;
    }
    let ldflags = format!(
        "-s -w -X github.com/prometheus/common/version.Version={version} \
         -X github.com/prometheus/common/version.Branch=release"
    );
    let mut c = go::go_command(work);
    c.args(["build", "-trimpath", "-ldflags", &ldflags, "-o", BIN])
        .arg("github.com/prometheus/alertmanager/cmd/alertmanager");
    go::checked(c)?;
    let _ = fs::remove_dir_all(work);
    Ok(())
}
