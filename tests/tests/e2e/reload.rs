//! Hot reload of the rules: SIGHUP and a changed file switch rules without
//! a restart, the kernel follows (a syscall no rule needed before is
//! captured after), and a broken file is refused with its position while
//! the running rules stay.

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
