//! Every enabled rule of Falco's three published files fired by real
//! behaviour on this node: each rule has a trigger here (a script on the
//! host or in a podman container) or the reason it cannot fire on this
//! node, kept in [`TRIGGERS`] (`table.rs`) and printed. One agent runs the three files
//! with `rule_matching: all` (the files overlap; no rule may hide
//! another). Each trigger runs with its own `MAMORI_PARITY` value in the
//! environment, which `append_output` adds to every alert, so a rule
//! counts only when it fired on what its own trigger did.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use mamori_e2e::{agent::Agent, hosts::Hosts, podman};

use super::table::{HOST_TOOLS, How, NETNS, PRELUDE, TRIGGERS, Trigger};

/// The enabled rules of a Falco rules file (items with `rule`, not
/// `enabled: false`, not appends or overrides).
fn enabled_rules(path: &Path) -> Vec<String> {
    let text = fs::read_to_string(path).unwrap();
    let items: Vec<serde_json::Value> = serde_saphyr::from_str(&text).unwrap();
    items
        .iter()
        .filter(|i| i["append"] != true && i.get("override").is_none())
        .filter(|i| i["enabled"] != false)
        .filter_map(|i| i["rule"].as_str().map(str::to_owned))
        .collect()
}

/// Runs one trigger with `marker` in its environment; waits for it.
fn run(how: &How, marker: &str, bin: &Path, scratch: &Path, api_port: u16) {
    let script = |s: &str| format!("{PRELUDE}{NETNS}{s}");
    match how {
        How::Host(s) => {
            // To a file: what a script leaves running must not hold a pipe.
            let log = scratch.join(format!("{marker}.log"));
            let status = Command::new("/bin/busybox")
                .args(["sh", "-c", &script(s)])
                .env("MAMORI_PARITY", marker)
                .env("B", bin)
                .env("D", scratch)
                .env("A", bin.join("mamori-actor"))
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(fs::File::create(&log).unwrap())
                .status()
                .unwrap();
            if !status.success() {
                let err = fs::read_to_string(&log).unwrap_or_default();
                eprintln!("parity: host trigger {marker} exited {status}: {err}");
            }
        }
        How::Container(options, s) => {
            let env = format!("MAMORI_PARITY={marker}");
            let port = format!("PARITY_API_PORT={api_port}");
            let script = script(s);
            let (network, options) = match options {
                ["--network", n, rest @ ..] => (*n, rest),
                _ => ("none", *options),
            };
            let mut args = vec!["-e", &env, "-e", &port, "-e", "B=/tmp"];
            args.extend(options.iter().copied());
            args.extend([podman::IMAGE, "/bin/sh", "-c", &script]);
            let out = podman::try_run_on(network, &args);
            if !out.status.success() {
                eprintln!(
                    "parity: container trigger {marker} exited {}: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        How::Entry(options, argv) => {
            let env = format!("MAMORI_PARITY={marker}");
            let mut args = vec!["-e", &env];
            args.extend(options.iter().copied());
            args.push(podman::IMAGE);
            args.extend(argv.iter().copied());
            podman::try_run(&args);
        }
        How::Cannot(_) => {}
    }
}

#[test]
fn every_enabled_rule_of_falcos_files_fires_on_real_behaviour() {
    let Some(files) = super::falco_files() else {
        return;
    };
    // The table names every enabled rule of the three files, and no other.
    let per_file: Vec<(String, Vec<String>)> = files
        .iter()
        .map(|f| {
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            (name, enabled_rules(f))
        })
        .collect();
    let enabled: BTreeSet<&str> = per_file
        .iter()
        .flat_map(|(_, r)| r.iter().map(String::as_str))
        .collect();
    let tabled: BTreeSet<&str> = TRIGGERS
        .iter()
        .flat_map(|t| t.rules.iter().copied())
        .collect();
    let untabled: Vec<&&str> = enabled.difference(&tabled).collect();
    let unknown: Vec<&&str> = tabled.difference(&enabled).collect();
    assert!(
        untabled.is_empty() && unknown.is_empty(),
        "enabled rules without a trigger or a reason: {untabled:?}; triggers for rules the files do not enable: {unknown:?}"
    );

    podman::image();
    let id = std::process::id();
    let dir = std::env::temp_dir().join(format!("mamori-parity-all-{id}"));
    let _ = fs::remove_dir_all(&dir);
    let (bin, scratch) = (dir.join("bin"), dir.join("scratch"));
    fs::create_dir_all(&bin).unwrap();
    fs::create_dir_all(&scratch).unwrap();
    for tool in HOST_TOOLS {
        fs::copy("/bin/busybox", bin.join(tool)).unwrap();
    }
    // Beside the tools: scripts run it as other users, who may not enter
    // the build directory (a clone in a private temporary directory).
    fs::copy(
        mamori_e2e::sibling_binary("mamori-actor"),
        bin.join("mamori-actor"),
    )
    .unwrap();
    // "Contact K8S API Server From Container": the API server's name in the
    // host's resolver files, a listener at its address.
    let _hosts = Hosts::with("127.88.0.9 kubernetes.default.svc.cluster.local\n");
    let listener = std::net::TcpListener::bind("127.88.0.9:0").unwrap();
    let api_port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || listener.incoming().for_each(drop));

    let mut args: Vec<&str> = files
        .iter()
        .flat_map(|f| ["-r", f.to_str().unwrap()])
        .collect();
    args.extend([
        "-o",
        "rule_matching=all",
        "-o",
        "append_output=[{extra_fields: ['proc.env[MAMORI_PARITY]']}]",
        // This kernel has no module support: a module load is an attempt
        // at a syscall it does not implement (Falco sees those too).
        "-o",
        "capture.watch_unimplemented=true",
    ]);
    let agent = Agent::start(&args);
    let marker = |i: usize| format!("parity-{id}-{i}");
    // Containers four at a time beside the host scripts, one at a time.
    let start = Instant::now();
    let containers: Vec<(usize, &Trigger)> = TRIGGERS
        .iter()
        .enumerate()
        .filter(|(_, t)| matches!(t.how, How::Container(..) | How::Entry(..)))
        .collect();
    std::thread::scope(|s| {
        for chunk in containers.chunks(containers.len().div_ceil(4)) {
            let (bin, scratch) = (&bin, &scratch);
            s.spawn(move || {
                for (i, t) in chunk {
                    run(&t.how, &marker(*i), bin, scratch, api_port);
                }
            });
        }
        for (i, t) in TRIGGERS.iter().enumerate() {
            if matches!(t.how, How::Host(_)) {
                run(&t.how, &marker(i), &bin, &scratch, api_port);
            }
        }
    });
    eprintln!(
        "parity: triggers ran in {:.1} s",
        start.elapsed().as_secs_f64()
    );

    // Each rule against its own trigger's alerts.
    let key = "proc.env[MAMORI_PARITY]";
    let expected: Vec<(&str, String)> = TRIGGERS
        .iter()
        .enumerate()
        .filter(|(_, t)| !matches!(t.how, How::Cannot(_)))
        .flat_map(|(i, t)| t.rules.iter().map(move |r| (*r, marker(i))))
        .collect();
    let fired = |alerts: &[serde_json::Value]| -> BTreeSet<(String, String)> {
        alerts
            .iter()
            .filter_map(|a| {
                let m = a["output_fields"][key].as_str()?;
                Some((a["rule"].as_str()?.to_owned(), m.to_owned()))
            })
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let missing = loop {
        let got = fired(&agent.alerts());
        let missing: Vec<&(&str, String)> = expected
            .iter()
            .filter(|(r, m)| !got.contains(&((*r).to_owned(), m.clone())))
            .collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing.into_iter().map(|(r, _)| *r).collect::<Vec<_>>();
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let (_, alerts) = agent.stop_with_alerts();
    let _ = fs::remove_dir_all(&dir);
    // The mount that makes the container sensitive is named (the rule
    // itself fires for any container: a container without the mount has
    // no value for container.mount.dest[/etc], and `not ... in (...)` of a
    // missing value holds, as in Falco's engine).
    let sensitive = TRIGGERS
        .iter()
        .position(|t| t.rules.contains(&"Launch Sensitive Mount Container"))
        .map(marker);
    if let Some(a) = alerts.iter().find(|a| {
        a["rule"] == "Launch Sensitive Mount Container"
            && a["output_fields"][key].as_str() == sensitive.as_deref()
    }) {
        let mounts = a["output_fields"]["container.mounts"]
            .as_str()
            .unwrap_or_default();
        assert!(mounts.contains("/etc:/host-etc:"), "{a}");
    }

    let cannot: BTreeMap<&str, &str> = TRIGGERS
        .iter()
        .filter_map(|t| match t.how {
            How::Cannot(why) => Some(t.rules.iter().map(move |r| (*r, why))),
            _ => None,
        })
        .flatten()
        .collect();
    // Straight to stderr, so that it shows when the test passes too (the
    // harness keeps what `eprintln!` writes).
    use std::io::Write;
    let mut err = std::io::stderr();
    for (file, rules) in &per_file {
        let (skipped, tried): (Vec<&String>, Vec<&String>) =
            rules.iter().partition(|r| cannot.contains_key(r.as_str()));
        let failed = tried
            .iter()
            .filter(|r| missing.contains(&r.as_str()))
            .count();
        let _ = writeln!(
            err,
            "parity: {file}: {} enabled rules, {} fired on real behaviour, {failed} did not, {} cannot fire here",
            rules.len(),
            tried.len() - failed,
            skipped.len()
        );
    }
    for (rule, why) in &cannot {
        let _ = writeln!(err, "parity: cannot fire here: '{rule}': {why}");
    }
    assert!(
        missing.is_empty(),
        "rules that did not fire on their trigger: {missing:#?}"
    );
}
