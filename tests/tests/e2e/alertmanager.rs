//! The Alertmanager output against a real Alertmanager whose route sends
//! to a webhook receiver in the test: a real eBPF-triggered alert arrives
//! with its labels; a silence stops it; Alertmanager down then up loses
//! nothing that was meant to page; a full queue drops and says so.

use std::fs;

use mamori_e2e::{
    agent::Agent,
    alertmanager::Alertmanager,
    es::{scratch, wait_until},
    oncall::{self, output_count, touch},
    run_actor,
    webhook::Receiver,
};
use serde_json::Value;

/// Every alert in every notification the receiver got.
fn notified(r: &Receiver) -> Vec<Value> {
    r.requests()
        .iter()
        .flat_map(|req| req.json()["alerts"].as_array().cloned().unwrap_or_default())
        .collect()
}

fn with_file<'a>(alerts: &'a [Value], path: &str) -> Vec<&'a Value> {
    alerts
        .iter()
        .filter(|a| a["labels"]["fd_name"] == path)
        .collect()
}

fn sent(agent: &Agent, status: &str) -> f64 {
    output_count(agent, "alertmanager", status)
}

#[test]
fn a_real_alert_pages_through_alertmanager_with_its_labels() {
    let dir = scratch("am-labels");
    let receiver = Receiver::start();
    let am = Alertmanager::start(&receiver.url("/hook"));
    // The URL only from `-o`: that alone turns the output on.
    let agent = oncall::agent(
        &dir,
        "alertmanager",
        "    fields_as_labels: [fd.name]\n    labels: {cluster: e2e}\n    kibana_url: https://kibana.example:5601\n",
        &[format!("outputs.alertmanager.url={}", am.url())],
    );
    let note = touch(&dir, "note-1");
    let note_pid = run_actor(&["open", &note], Some(true)).pid;
    let page = touch(&dir, "page-1");
    let pid = run_actor(&["open", &page], Some(true)).pid;
    assert!(agent.wait_alert("Test note", note_pid).is_some());
    assert!(agent.wait_alert("Test page", pid).is_some());

    let got = receiver.wait_for(30, "the page at the receiver", |_| {
        !with_file(&notified(&receiver), &page).is_empty()
    });
    assert_eq!(got[0].path, "/hook");
    let alerts = notified(&receiver);
    let a = with_file(&alerts, &page)[0];
    let hostname = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let labels = &a["labels"];
    for (k, v) in [
        ("alertname", "Test page"),
        ("rule", "Test page"),
        ("priority", "Critical"),
        ("severity", "critical"),
        ("source", "syscall"),
        ("node", hostname.trim()),
        ("mitre_technique", "T1552"),
        ("mitre_subtechnique", "T1552.001"),
        ("mitre_tactic", "TA0006"),
        ("cluster", "e2e"),
        ("fd_name", page.as_str()),
    ] {
        assert_eq!(labels[k], v, "label {k}: {a:#}");
    }
    assert_eq!(a["status"], "firing");
    let ann = &a["annotations"];
    assert_eq!(
        ann["summary"],
        format!("page file {page} opened by mamori-actor (proc.pid={pid})")
    );
    assert_eq!(ann["description"], "the output test opened a page file");
    let id = ann["event_id"].as_str().unwrap();
    let link = ann["kibana_url"].as_str().unwrap();
    assert!(
        link.starts_with("https://kibana.example:5601/app/discover#/")
            && link.contains(&format!("event.id:{id}")),
        "{link}"
    );
    assert_eq!(a["generatorURL"], link);

    // The Notice alert was below the minimum: Alertmanager never had it.
    assert!(
        am.alerts()
            .iter()
            .all(|a| a["labels"]["rule"] != "Test note"),
        "{:#?}",
        am.alerts()
    );
    assert!(sent(&agent, "sent") >= 1.0);
    assert!(agent.stop().success());
}

#[test]
fn a_silence_in_alertmanager_stops_the_page() {
    let dir = scratch("am-silence");
    let receiver = Receiver::start();
    let am = Alertmanager::start(&receiver.url("/hook"));
    let agent = oncall::agent(
        &dir,
        "alertmanager",
        &format!("    url: {}\n    fields_as_labels: [fd.name]\n", am.url()),
        &[],
    );
    let silenced = touch(&dir, "page-silenced");
    let paged = touch(&dir, "page-paged");
    am.silence("fd_name", &silenced);
    run_actor(&["open", &silenced], Some(true));
    // Alertmanager has it, marked suppressed by the silence...
    wait_until(30, "the silenced alert in Alertmanager", || {
        am.alerts().iter().any(|a| {
            a["labels"]["fd_name"] == silenced.as_str() && a["status"]["state"] == "suppressed"
        })
    });
    // ...and an alert raised after it, not silenced, pages.
    run_actor(&["open", &paged], Some(true));
    receiver.wait_for(30, "the unsilenced page", |_| {
        !with_file(&notified(&receiver), &paged).is_empty()
    });
    assert!(
        with_file(&notified(&receiver), &silenced).is_empty(),
        "a silenced alert paged: {:#?}",
        notified(&receiver)
    );
    assert!(agent.stop().success());
}

#[test]
fn alertmanager_down_then_up_loses_nothing() {
    let dir = scratch("am-down");
    let receiver = Receiver::start();
    // Configured, not started: its port refuses connections.
    let mut am = Alertmanager::new(&receiver.url("/hook"));
    let agent = oncall::agent(
        &dir,
        "alertmanager",
        &format!(
            "    url: {}\n    fields_as_labels: [fd.name]\n    down_alert_s: 1\n",
            am.url()
        ),
        &[],
    );
    let pages: Vec<String> = (0..3).map(|i| touch(&dir, &format!("page-{i}"))).collect();
    for p in &pages {
        run_actor(&["open", p], Some(true));
    }
    wait_until(30, "the output to report itself down", || {
        agent.alerts().iter().any(|a| {
            a["rule"] == "mamori internal: output down"
                && a["output_fields"]["output"] == "alertmanager"
        })
    });
    assert!(sent(&agent, "retried") >= 1.0);
    assert_eq!(
        agent.metric("mamori_output_queued_alerts{output=\"alertmanager\"}"),
        Some(3.0)
    );
    assert_eq!(sent(&agent, "sent"), 0.0);

    am.up();
    receiver.wait_for(60, "every page after Alertmanager came back", |_| {
        let n = notified(&receiver);
        pages.iter().all(|p| !with_file(&n, p).is_empty())
    });
    let n = notified(&receiver);
    for p in &pages {
        assert_eq!(with_file(&n, p).len(), 1, "{p} notified once: {n:#?}");
    }
    wait_until(10, "the queue empty", || {
        agent.metric("mamori_output_queued_alerts{output=\"alertmanager\"}") == Some(0.0)
    });
    assert_eq!(sent(&agent, "dropped"), 0.0);
    assert!(agent.stop().success());
}

#[test]
fn a_full_queue_drops_counts_and_raises_an_internal_alert() {
    let dir = scratch("am-full");
    let receiver = Receiver::start();
    let mut am = Alertmanager::new(&receiver.url("/hook"));
    let agent = oncall::agent(
        &dir,
        "alertmanager",
        &format!(
            "    url: {}\n    fields_as_labels: [fd.name]\n    queue_size: 2\n    batch_size: 1\n",
            am.url()
        ),
        &[],
    );
    let raised = 6;
    let pages: Vec<String> = (0..raised)
        .map(|i| touch(&dir, &format!("page-{i}")))
        .collect();
    for p in &pages {
        let pid = run_actor(&["open", p], Some(true)).pid;
        assert!(agent.wait_alert("Test page", pid).is_some());
    }
    wait_until(30, "the queue-full alert", || {
        agent
            .alerts()
            .iter()
            .any(|a| a["rule"] == "mamori internal: output queue full")
    });
    let internal = agent
        .alerts()
        .into_iter()
        .find(|a| a["rule"] == "mamori internal: output queue full")
        .unwrap();
    assert_eq!(internal["priority"], "Critical");
    let dropped = internal["output_fields"]["dropped"].as_u64().unwrap();
    assert!(dropped >= 1, "{internal:#}");
    assert_eq!(sent(&agent, "dropped"), dropped as f64);

    am.up();
    let kept = raised as u64 - dropped;
    receiver.wait_for(60, "the queued pages", |_| {
        let n = notified(&receiver);
        pages
            .iter()
            .filter(|p| !with_file(&n, p).is_empty())
            .count() as u64
            == kept
    });
    // Raised = delivered + dropped; the first ones were kept (order holds).
    let n = notified(&receiver);
    for p in &pages[..kept as usize] {
        assert_eq!(with_file(&n, p).len(), 1, "{p}");
    }
    assert!(agent.stop().success());
}

#[test]
fn refused_alerts_are_counted_and_not_sent_again() {
    let dir = scratch("am-refused");
    // The receiver stands in for Alertmanager's API and refuses.
    let receiver = Receiver::start();
    receiver.answer(400);
    let agent = oncall::agent(
        &dir,
        "alertmanager",
        &format!("    url: {}\n", receiver.url("")),
        &[],
    );
    let page = touch(&dir, "page-refused");
    run_actor(&["open", &page], Some(true));
    let got = receiver.wait_for(30, "the refused post", |r| !r.is_empty());
    assert_eq!(got[0].path, "/api/v2/alerts");
    assert_eq!(got[0].header("content-type"), Some("application/json"));
    assert!(got[0].header("user-agent").unwrap().starts_with("mamori/"));
    let body = got[0].json();
    assert_eq!(body.as_array().unwrap().len(), 1, "{body:#}");
    assert_eq!(body[0]["labels"]["rule"], "Test page");
    wait_until(10, "the failure counted", || sent(&agent, "failed") == 1.0);
    // A 400 is not retried: the next request carries only the next alert.
    receiver.answer(200);
    let next = touch(&dir, "page-next");
    run_actor(&["open", &next], Some(true));
    let got = receiver.wait_for(30, "the next post", |r| r.len() >= 2);
    assert_eq!(got.len(), 2, "{got:#?}");
    let body = got[1].json();
    assert_eq!(body.as_array().unwrap().len(), 1, "{body:#}");
    assert_eq!(body[0]["labels"]["rule"], "Test page");
    assert!(
        body[0]["annotations"]["summary"]
            .as_str()
            .unwrap()
            .contains(&next)
    );
    wait_until(10, "the next one counted", || sent(&agent, "sent") == 1.0);
    assert!(agent.stop().success());
}
