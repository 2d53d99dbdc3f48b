//! The container image (`cargo xtask image`, built before the e2e tests):
//! run privileged on the host with podman, as a DaemonSet would run it, it
//! loads its programs and built-in rules and reports host activity.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use mamori_e2e::{
    agent::{free_port, http_get},
    run_actor,
};

const IMAGE: &str = "localhost/mamori:0.1.0";

fn podman(args: &[&str]) -> std::process::Output {
    Command::new("podman")
        .args([
            "--runtime",
            "/usr/sbin/runc",
            "--cgroup-manager",
            "cgroupfs",
        ])
        .args(args)
        .output()
        .unwrap()
}

/// Stops the container even when the test fails.
struct Running(String);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = podman(&["rm", "-f", "-t", "5", &self.0]);
    }
}

#[test]
fn the_image_runs_privileged_and_reports_host_activity() {
    let inspect = podman(&["image", "inspect", "--format", "{{.Size}}", IMAGE]);
    assert!(
        inspect.status.success(),
        "{IMAGE} is missing: cargo xtask image builds it"
    );
    let size: u64 = String::from_utf8_lossy(&inspect.stdout)
        .trim()
        .parse()
        .unwrap();
    eprintln!("image {IMAGE}: {:.1} MB", size as f64 / 1e6);
    assert!(
        size < 40_000_000,
        "a static binary and rules only: {size} bytes"
    );

    let name = format!("mamori-image-{}", std::process::id());
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let out = podman(&[
        "run",
        "-d",
        "--name",
        &name,
        "--privileged",
        "--pid",
        "host",
        "--network",
        "host",
        "--ulimit",
        "nofile=20000:20000",
        "--ulimit",
        "nproc=1024:1024",
        "-v",
        "/proc:/host/proc:ro",
        IMAGE,
        // The image's default command, with a health address for the test.
        "run",
        "--json",
        "-r",
        "/etc/mamori/rules/mamori_rules.yaml",
        "--health-addr",
        &addr,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let running = Running(name.clone());
    let logs = || {
        let o = podman(&["logs", &name]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !http_get(port, "/readyz").is_some_and(|(status, _)| status == 200) {
        assert!(Instant::now() < deadline, "never ready:\n{}", logs());
        std::thread::sleep(Duration::from_millis(200));
    }

    let pid = run_actor(&["open", "/etc/shadow"], Some(true)).pid;
    let deadline = Instant::now() + Duration::from_secs(10);
    let alert = loop {
        let found = logs()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|a| a["output_fields"]["proc.pid"] == pid);
        if let Some(a) = found {
            break a;
        }
        assert!(
            Instant::now() < deadline,
            "no alert for pid {pid}:\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        alert["rule"], "Credential file read by unexpected process",
        "{alert}"
    );
    assert_eq!(alert["output_fields"]["fd.name"], "/etc/shadow");
    assert_eq!(
        alert["output_fields"]["container.id"], "host",
        "host activity"
    );

    let stop = podman(&["stop", "-t", "20", &name]);
    assert!(stop.status.success());
    let code = podman(&["inspect", "--format", "{{.State.ExitCode}}", &name]);
    assert_eq!(
        String::from_utf8_lossy(&code.stdout).trim(),
        "0",
        "{}",
        logs()
    );
    drop(running);
}
