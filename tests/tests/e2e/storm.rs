//! Storm control: a rule made to fire 100,000 times by real opens is held
//! to its bucket; every alert held back is counted and summarised, so
//! raised = delivered + suppressed; other rules and internal alerts go on.

use std::fs;

use mamori_e2e::{
    agent::Agent,
    es::{scratch, wait_until},
    oncall::touch,
    run_actor,
};

const RAISED: u64 = 100_000;
/// Opens per actor: the agent catches up between them, so the ring never
/// fills and every open is an alert.
const CHUNK: u64 = 10_000;

#[test]
fn a_rule_firing_100000_times_is_held_to_its_bucket_and_nothing_is_lost() {
    let dir = scratch("storm");
    let d = dir.display();
    let rules = dir.join("rules.yaml");
    let cond = |name: &str| {
        format!(
            "evt.type in (open, openat, openat2) and proc.name = mamori-actor and fd.name = \"{d}/{name}\""
        )
    };
    fs::write(
        &rules,
        format!(
            "- rule: Storm test\n  desc: the storm test's file, opened again and again\n  \
             condition: {}\n  output: storm file opened (proc.pid=%proc.pid)\n  priority: WARNING\n\
             - rule: Storm bystander\n  desc: another rule during the storm\n  \
             condition: {}\n  output: bystander file opened (proc.pid=%proc.pid)\n  priority: WARNING\n",
            cond("storm"),
            cond("bystander")
        ),
    )
    .unwrap();
    let cfg = dir.join("mamori.yaml");
    fs::write(
        &cfg,
        "storm_control:\n  summary_interval_s: 2\n  rules:\n    Storm test: {rate: 10, burst: 100}\n",
    )
    .unwrap();
    let agent = Agent::start(&["-c", cfg.to_str().unwrap(), "-r", rules.to_str().unwrap()]);
    let storm = touch(&dir, "storm");
    let bystander = touch(&dir, "bystander");
    let raised = || {
        agent
            .metric("mamori_alerts_total{rule=\"Storm test\",priority=\"Warning\"}")
            .unwrap_or(0.0) as u64
    };
    for i in 1..=RAISED / CHUNK {
        run_actor(&["open-n", &storm, &CHUNK.to_string()], Some(true));
        wait_until(60, "the agent to catch up", || raised() == i * CHUNK);
    }
    // Another rule fires during the storm, and is not held back.
    let pid = run_actor(&["open", &bystander], Some(true)).pid;
    assert!(agent.wait_alert("Storm bystander", pid).is_some());

    let suppressed = || {
        agent
            .metric("mamori_alerts_suppressed_total{rule=\"Storm test\"}")
            .unwrap_or(0.0) as u64
    };
    let delivered_so_far = || {
        agent
            .alerts()
            .iter()
            .filter(|a| a["rule"] == "Storm test")
            .count() as u64
    };
    wait_until(30, "the outputs stage through every alert", || {
        delivered_so_far() + suppressed() == RAISED
    });
    let counted = suppressed();
    let (status, alerts) = agent.stop_with_alerts();
    assert!(status.success());
    let delivered = alerts.iter().filter(|a| a["rule"] == "Storm test").count() as u64;
    let summaries: Vec<_> = alerts
        .iter()
        .filter(|a| {
            a["rule"] == "mamori internal: alerts suppressed"
                && a["output_fields"]["rule"] == "Storm test"
        })
        .collect();
    let summarised: u64 = summaries
        .iter()
        .map(|a| a["output_fields"]["suppressed"].as_u64().unwrap())
        .sum();
    eprintln!(
        "storm: raised {RAISED}, delivered {delivered}, suppressed (summarised) {summarised} in {} summaries",
        summaries.len()
    );
    assert_eq!(
        delivered + summarised,
        RAISED,
        "raised = delivered + suppressed"
    );
    // The burst, then 10 per second while the storm lasted.
    assert!((100..2_000).contains(&delivered), "{delivered}");
    for s in &summaries {
        assert_eq!(s["priority"], "Warning");
        assert_eq!(s["source"], "internal");
        let f = &s["output_fields"];
        assert!(
            f["first"].as_str().unwrap() <= f["last"].as_str().unwrap(),
            "{s:#}"
        );
    }
    assert_eq!(
        summarised, counted,
        "the summaries hold what the metric counts"
    );
}
