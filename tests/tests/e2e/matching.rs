//! Falco's `rule_matching`: with `first` (the default) only the first rule
//! that matches an event alerts; with `all` every matching rule does, once
//! each, in load order.

use std::fs;

use mamori_e2e::{agent::Agent, run_actor};

/// Rules that all match one create of a file in `dir`, in this order, and
/// one between them that does not.
fn overlapping_rules(dir: &str) -> String {
    let rule = |name: &str, cond: &str| {
        format!(
            "- rule: {name}\n  desc: rule matching test\n  condition: evt.type in (open, openat, openat2, creat) and {cond}\n  \
             output: \"{name} (proc.pid=%proc.pid fd.name=%fd.name)\"\n  priority: NOTICE\n"
        )
    };
    [
        rule(
            "Marker created",
            &format!("evt.is_open_create = true and fd.directory = {dir}"),
        ),
        rule(
            "Marker read",
            &format!("evt.is_open_read = true and fd.directory = {dir}"),
        ),
        rule(
            "Marker written",
            &format!("evt.is_open_write = true and fd.name startswith {dir}/"),
        ),
        rule(
            "Marker touched by the actor",
            &format!("proc.name = mamori-actor and fd.directory = {dir}"),
        ),
    ]
    .concat()
}

/// The rules that alerted for `pid`, in the order they were written.
fn fired_for(agent: Agent, pid: u32) -> Vec<String> {
    let (_, alerts) = agent.stop_with_alerts();
    alerts
        .iter()
        .filter(|a| a["output_fields"]["proc.pid"].as_u64() == Some(u64::from(pid)))
        .map(|a| a["rule"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn rule_matching_all_alerts_every_matching_rule_in_load_order() {
    let dir = std::env::temp_dir().join(format!("mamori-matching-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let d = dir.to_str().unwrap().to_owned();
    let rules = dir.join("rules.yaml");
    fs::write(&rules, overlapping_rules(&d)).unwrap();
    let rules = rules.to_str().unwrap();
    let mut failures = Vec::new();

    let all = Agent::start(&["-r", rules, "-o", "rule_matching=all"]);
    let pid = run_actor(&["create", &format!("{d}/all")], Some(true)).pid;
    // The last rule's alert is the last one written for the event.
    if all.wait_alert("Marker touched by the actor", pid).is_none() {
        failures.push("rule_matching=all: the last matching rule did not alert".to_owned());
    }
    let fired = fired_for(all, pid);
    let want = [
        "Marker created",
        "Marker written",
        "Marker touched by the actor",
    ];
    if fired != want {
        failures.push(format!("rule_matching=all: {fired:?}, want {want:?}"));
    }

    let first = Agent::start(&["-r", rules]);
    let pid = run_actor(&["create", &format!("{d}/first")], Some(true)).pid;
    if first.wait_alert("Marker created", pid).is_none() {
        failures.push("rule_matching=first: the first matching rule did not alert".to_owned());
    }
    let fired = fired_for(first, pid);
    if fired != ["Marker created"] {
        failures.push(format!(
            "rule_matching=first: {fired:?}, want only the first"
        ));
    }
    let _ = fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{failures:#?}");
}
