//! `cargo xtask test`: lints, unit tests, the fuzz targets built, then the
//! end-to-end tests, which load the real programs and so run as root, one
//! at a time; then the Kubernetes tests on a real single-node cluster
//! (built once into a cache, brought up for them and torn down after,
//! whatever their result); and the check that every default rule fired.

use crate::{cmd, es, k8s, prometheus};

pub fn run(filter: Option<&str>, lint: bool) -> anyhow::Result<()> {
    if lint {
        cmd::cargo(&["fmt", "--all", "--check"])?;
        cmd::cargo(&[
            "clippy",
            "--workspace",
            "--exclude",
            "mamori-ebpf",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ])?;
        clippy_ebpf()?;
    }
    let mut unit = vec![
        "test",
        "--workspace",
        "--exclude",
        "mamori-ebpf",
        "--exclude",
        "mamori-e2e",
    ];
    if let Some(f) = filter {
        unit.push(f);
    }
    cmd::cargo(&unit)?;
    // The fuzz targets are built (not run) so that they cannot rot; their
    // crate is outside the workspace, with its own lock file.
    cmd::cargo(&[
        "build",
        "--manifest-path",
        "fuzz/Cargo.toml",
        "--bins",
        "--locked",
    ])?;
    // The e2e tests spawn the release binary; build it first.
    cmd::cargo(&["build", "--release", "--package", "mamori"])?;
    // And run the container image.
    crate::image::build()?;
    // A real Elasticsearch node for the output tests (some tests start
    // their own, from the same installed launcher).
    es::build()?;
    // The cluster's binaries and helm (the chart tests run helm); slow
    // only the first time on a machine.
    k8s::build()?;
    // Alertmanager for the on-call output tests, promtool for /metrics.
    prometheus::build()?;
    let url = es::start()?;
    // SAFETY: single-threaded; read by the test processes.
    unsafe { std::env::set_var("MAMORI_TEST_ES_URL", &url) };
    // Each agent on the default rules notes the rules that fired.
    // Absolute: the tests run in their own package's directory.
    let fired = std::env::current_dir()?.join("target/e2e-fired-rules.txt");
    let _ = std::fs::remove_file(&fired);
    // SAFETY: single-threaded; read by the test processes.
    unsafe { std::env::set_var("MAMORI_E2E_FIRED", &fired) };
    let mut e2e = vec![
        "test",
        "--release",
        "--package",
        "mamori-e2e",
        "--lib",
        "--test",
        "capture",
        "--test",
        "e2e",
    ];
    if let Some(f) = filter {
        e2e.push(f);
    }
    e2e.extend(["--", "--test-threads=1"]);
    let result = cmd::cargo(&e2e).and_then(|()| kubernetes(filter));
    es::stop()?;
    result?;
    if filter.is_some() {
        println!("every-default-rule-fired check skipped: a filtered run");
        return Ok(());
    }
    every_default_rule_fired(&fired)
}

/// The Kubernetes tests, on a cluster brought up for them and torn down
/// after, pass or fail.
fn kubernetes(filter: Option<&str>) -> anyhow::Result<()> {
    let node = k8s::up()?;
    // SAFETY: single-threaded; read by the test processes.
    unsafe { std::env::set_var("MAMORI_TEST_K8S", node) };
    let mut args = vec![
        "test",
        "--release",
        "--package",
        "mamori-e2e",
        "--test",
        "kubernetes",
    ];
    if let Some(f) = filter {
        args.push(f);
    }
    args.extend(["--", "--test-threads=1"]);
    let result = cmd::cargo(&args);
    if result.is_err() {
        eprintln!("k8s: the tests failed; the node's logs are in {node}/log");
    }
    let down = k8s::down();
    result.and(down)
}

/// Every rule of the default rules fired in some end-to-end test of this
/// run: a rule nobody triggers is a rule nobody knows works.
fn every_default_rule_fired(log: &std::path::Path) -> anyhow::Result<()> {
    let rules = std::fs::read_to_string("rules/mamori_rules.yaml")?;
    let fired = std::fs::read_to_string(log).unwrap_or_default();
    let fired: std::collections::BTreeSet<&str> = fired.lines().collect();
    let names: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.strip_prefix("- rule: "))
        .map(str::trim)
        .collect();
    anyhow::ensure!(
        !names.is_empty(),
        "no rule found in rules/mamori_rules.yaml"
    );
    let missing: Vec<&&str> = names.iter().filter(|n| !fired.contains(**n)).collect();
    anyhow::ensure!(
        missing.is_empty(),
        "default rules that fired in no end-to-end test: {missing:?} (fired: {} rule alerts logged in {})",
        fired.len(),
        log.display()
    );
    println!(
        "every default rule fired in the end-to-end tests ({} rules)",
        names.len()
    );
    Ok(())
}

/// Clippy on the kernel crate, for its own target.
fn clippy_ebpf() -> anyhow::Result<()> {
    let flags = "--cfg=bpf_target_arch=\"x86_64\"";
    // SAFETY: single-threaded; read by the child cargo.
    unsafe { std::env::set_var("CARGO_ENCODED_RUSTFLAGS", flags) };
    let r = cmd::cargo(&[
        "clippy",
        "--package",
        "mamori-ebpf",
        "--release",
        "--target",
        "bpfel-unknown-none",
        "-Z",
        "build-std=core",
        "--",
        "-D",
        "warnings",
    ]);
    unsafe { std::env::remove_var("CARGO_ENCODED_RUSTFLAGS") };
    r
}
