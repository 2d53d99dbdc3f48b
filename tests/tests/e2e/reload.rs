//! Hot reload of the rules: SIGHUP and a changed file switch rules without
//! a restart, the kernel follows (a syscall no rule needed before is
//! captured after), and a broken file is refused with its position while
//! the running rules stay. With `rules_configmap` and no Kubernetes API
//! to read it from, the mounted files stay in force and are still watched.

use std::{fs, net::TcpListener, path::Path, time::Duration};

use mamori_e2e::{agent::Agent, es::wait_until, run_actor};

fn write(path: &Path, text: &str) {
    // Write beside, then rename: what a ConfigMap update or an editor does.
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, text).unwrap();
    fs::rename(&tmp, path).unwrap();
}

fn open_rule(name: &str, marker: &Path) -> String {
    format!(
        "- rule: {name}\n  desc: reload test\n  condition: evt.type in (open, openat) and fd.name = {}\n  output: \"{name} (proc.pid=%proc.pid fd.name=%fd.name)\"\n  priority: WARNING\n",
        marker.display()
    )
}

fn metric(agent: &Agent, name: &str) -> f64 {
    agent.metric(name).unwrap_or(-1.0)
}

#[test]
fn rules_reload_on_sighup_and_on_change_and_survive_a_broken_file() {
    let dir = std::env::temp_dir().join(format!("mamori-reload-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("rules.yaml");
    let (marker_a, marker_c) = (dir.join("marker-a"), dir.join("marker-c"));
    fs::write(&marker_a, "a").unwrap();
    fs::write(&marker_c, "c").unwrap();
    write(&rules, &open_rule("Rule A", &marker_a));
    let agent = Agent::start_logged(&["-r", rules.to_str().unwrap()]);

    let pid = run_actor(&["open", marker_a.to_str().unwrap()], Some(true)).pid;
    assert!(
        agent.wait_alert("Rule A", pid).is_some(),
        "rule A before the reload"
    );

    // SIGHUP to a rule on connect, which nothing captured before.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    write(
        &rules,
        &format!(
            "- rule: Rule B\n  desc: reload test\n  condition: evt.type = connect and fd.sport = {port}\n  output: \"Rule B (proc.pid=%proc.pid fd.name=%fd.name)\"\n  priority: WARNING\n"
        ),
    );
    agent.signal(libc::SIGHUP);
    wait_until(10, "the SIGHUP reload", || {
        metric(&agent, "mamori_rules_reloads_total") >= 1.0
    });
    let old = run_actor(&["open", marker_a.to_str().unwrap()], Some(true)).pid;
    let pid = run_actor(&["connect", &port.to_string()], Some(true)).pid;
    assert!(
        agent.wait_alert("Rule B", pid).is_some(),
        "the new rule sees a syscall attached at reload: {:?}",
        agent.alerts()
    );
    assert!(
        agent
            .wait_alert_where("Rule A", |f| f["proc.pid"] == old)
            .is_none(),
        "the old rule is gone"
    );

    // A broken file: refused with its position; rule B still runs.
    write(
        &rules,
        "- rule: Broken\n  desc: reload test\n  condition: evt.type = open and (fd.name = /x\n  output: x\n  priority: WARNING\n",
    );
    agent.signal(libc::SIGHUP);
    wait_until(10, "the refused reload", || {
        metric(&agent, "mamori_rules_reload_failures_total") >= 1.0
    });
    let log = agent.log();
    let line = log
        .lines()
        .find(|l| l.contains("rules reload failed"))
        .unwrap_or_else(|| panic!("no reload error in the log:\n{log}"));
    assert!(
        log.contains(&format!("{}:3:", rules.display())),
        "the error names file and line: {line}\n{log}"
    );
    let pid = run_actor(&["connect", &port.to_string()], Some(true)).pid;
    assert!(
        agent.wait_alert("Rule B", pid).is_some(),
        "the running rules stayed"
    );
    let failures = metric(&agent, "mamori_rules_reload_failures_total");

    // A change without a signal is noticed by the watch.
    let reloads = metric(&agent, "mamori_rules_reloads_total");
    write(&rules, &open_rule("Rule C", &marker_c));
    wait_until(15, "the reload on change", || {
        metric(&agent, "mamori_rules_reloads_total") > reloads
    });
    std::thread::sleep(Duration::from_millis(200));
    let pid = run_actor(&["open", marker_c.to_str().unwrap()], Some(true)).pid;
    assert!(
        agent.wait_alert("Rule C", pid).is_some(),
        "rule C after the change"
    );
    assert_eq!(
        metric(&agent, "mamori_rules_reload_failures_total"),
        failures,
        "the broken file was reported once, not at every watch tick"
    );
    assert!(agent.stop().success());
    let _ = fs::remove_dir_all(&dir);
}

/// `rules_configmap` where the API cannot be reached (a kubeconfig naming
/// a closed port): the agent starts on the rules files, says so, counts
/// the failures, and still reloads the files when they change, as the
/// kubelet's copy of the ConfigMap would.
#[test]
fn rules_configmap_without_an_api_keeps_the_mounted_files_in_force() {
    let dir = std::env::temp_dir().join(format!("mamori-cm-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let rules_d = dir.join("rules.d");
    fs::create_dir_all(&rules_d).unwrap();
    let (marker_a, marker_b) = (dir.join("marker-a"), dir.join("marker-b"));
    fs::write(&marker_a, "a").unwrap();
    fs::write(&marker_b, "b").unwrap();
    let rules = rules_d.join("local_rules.yaml");
    write(&rules, &open_rule("Mounted A", &marker_a));
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let kubeconfig = dir.join("kubeconfig");
    fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: x\n\
             clusters: [{{name: c, cluster: {{server: 'https://{closed}', insecure-skip-tls-verify: true}}}}]\n\
             users: [{{name: u, user: {{token: t}}}}]\n\
             contexts: [{{name: x, context: {{cluster: c, user: u, namespace: mamori}}}}]\n"
        ),
    )
    .unwrap();
    let config = dir.join("mamori.yaml");
    fs::write(
        &config,
        format!(
            "rules: [{d}]\nrules_configmap: {{name: mamori-rules, directory: {d}}}\n",
            d = rules_d.display()
        ),
    )
    .unwrap();
    let agent = Agent::start_logged_env(
        &["-c", config.to_str().unwrap()],
        &[
            ("KUBECONFIG", kubeconfig.to_str().unwrap()),
            ("KUBERNETES_SERVICE_HOST", ""),
        ],
    );
    let pid = run_actor(&["open", marker_a.to_str().unwrap()], Some(true)).pid;
    assert!(
        agent.wait_alert("Mounted A", pid).is_some(),
        "the mounted rules are in force"
    );
    wait_until(30, "the failed API reads to be counted", || {
        metric(&agent, "mamori_rules_api_errors_total") >= 1.0
    });
    let log = agent.log();
    assert!(
        log.contains("cannot watch the rules ConfigMap") && log.contains("mamori/mamori-rules"),
        "the log says what failed: {log}"
    );
    // The files are still watched: the kubelet's copy of an edit reloads.
    write(&rules, &open_rule("Mounted B", &marker_b));
    wait_until(15, "the reload on change", || {
        metric(&agent, "mamori_rules_reloads_total") >= 1.0
    });
    std::thread::sleep(Duration::from_millis(200));
    let pid = run_actor(&["open", marker_b.to_str().unwrap()], Some(true)).pid;
    assert!(
        agent.wait_alert("Mounted B", pid).is_some(),
        "the edited file is in force"
    );
    assert!(agent.stop().success());
    let _ = fs::remove_dir_all(&dir);
}
