//! Falco's `http_output` (`outputs.http`): each alert posted as the JSON
//! Falco sends, with the configured headers, so falcosidekick takes it
//! unchanged; batches as JSON arrays; TLS trusting only the configured CA.

use std::path::Path;

use mamori_e2e::{
    es::{scratch, wait_until},
    oncall::{self, output_count, touch},
    openssl, run_actor, sign_into_store,
    webhook::{Receiver, Request},
};
use serde_json::Value;

/// Falco's alert JSON as its documentation describes it: exactly these
/// keys, `time` in RFC 3339 with nanoseconds, `output` starting with the
/// time and the priority, `output_fields` holding `evt.time` in ns.
fn assert_falco_shape(v: &Value) {
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "hostname",
            "output",
            "output_fields",
            "priority",
            "rule",
            "source",
            "tags",
            "time"
        ],
        "{v:#}"
    );
    let time = v["time"].as_str().unwrap();
    assert!(
        time.len() == 30 && time.ends_with('Z') && time.as_bytes()[19] == b'.',
        "{time}"
    );
    let priority = v["priority"].as_str().unwrap();
    assert!(
        [
            "Emergency",
            "Alert",
            "Critical",
            "Error",
            "Warning",
            "Notice",
            "Informational",
            "Debug"
        ]
        .contains(&priority)
    );
    assert!(
        v["output"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{time}: {priority} ")),
        "{v:#}"
    );
    assert!(v["output_fields"]["evt.time"].is_u64(), "{v:#}");
    assert_eq!(v["source"], "syscall");
    assert!(v["tags"].as_array().unwrap().iter().all(Value::is_string));
    assert!(v["hostname"].is_string() && v["rule"].is_string());
}

/// The alerts in the requests, each request's body an array.
fn batched(requests: &[Request]) -> Vec<Value> {
    requests
        .iter()
        .flat_map(|r| r.json().as_array().expect("a batch is an array").clone())
        .collect()
}

#[test]
fn each_alert_is_posted_as_falco_posts_it() {
    let dir = scratch("http-falco");
    let receiver = Receiver::start();
    let agent = oncall::agent(
        &dir,
        "http",
        &format!(
            "    url: {}\n    headers: {{Authorization: Bearer e2e-token, X-Team: secops}}\n",
            receiver.url("/falco")
        ),
        &[],
    );
    let note = touch(&dir, "note-1");
    let note_pid = run_actor(&["open", &note], Some(true)).pid;
    let page = touch(&dir, "page-1");
    let page_pid = run_actor(&["open", &page], Some(true)).pid;
    let printed_note = agent.wait_alert("Test note", note_pid).unwrap();
    let printed_page = agent.wait_alert("Test page", page_pid).unwrap();

    // One request per alert (Falco's way), every priority (its default).
    let got = receiver.wait_for(30, "both alerts", |r| r.len() >= 2);
    assert_eq!(got.len(), 2, "{got:#?}");
    for (req, printed) in got.iter().zip([&printed_note, &printed_page]) {
        assert_eq!(req.path, "/falco");
        assert_eq!(req.header("content-type"), Some("application/json"));
        assert_eq!(req.header("authorization"), Some("Bearer e2e-token"));
        assert_eq!(req.header("x-team"), Some("secops"));
        let body = req.json();
        assert_falco_shape(&body);
        // The very JSON the agent prints for it.
        assert_eq!(&body, printed);
    }
    assert_eq!(got[1].json()["output_fields"]["fd.name"], page.as_str());
    wait_until(10, "both counted", || {
        output_count(&agent, "http", "sent") == 2.0
    });
    // The token is a secret: never in the log.
    assert!(!agent.log().contains("e2e-token"), "{}", agent.log());
    assert!(agent.stop().success());
}

/// A CA, and a certificate for 127.0.0.1 it signed (`server.pem`,
/// `server.key`).
fn make_certs(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=mamori http test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    sign_into_store(dir, "server", "IP:127.0.0.1");
}

#[test]
fn batches_go_over_tls_trusting_the_configured_ca_only() {
    let certs = scratch("http-tls");
    make_certs(&certs);
    let (cert, key) = (certs.join("server.pem"), certs.join("server.key"));
    let trusted = Receiver::start_tls(&cert, &key);
    let dir = scratch("http-tls-trusted");
    let agent = oncall::agent(
        &dir,
        "http",
        &format!(
            "    url: {}\n    ca_file: {}\n    batch_size: 10\n    min_priority: critical\n",
            trusted.url("/batch"),
            certs.join("ca.pem").display()
        ),
        &[],
    );
    let pages: Vec<String> = (0..3).map(|i| touch(&dir, &format!("page-{i}"))).collect();
    for p in &pages {
        run_actor(&["open", p], Some(true));
    }
    let note = touch(&dir, "note-1");
    run_actor(&["open", &note], Some(true));
    let got = trusted.wait_for(30, "the three pages", |r| batched(r).len() >= 3);
    let alerts = batched(&got);
    assert_eq!(alerts.len(), 3, "{alerts:#?}");
    for (a, p) in alerts.iter().zip(&pages) {
        assert_falco_shape(a);
        assert_eq!(a["rule"], "Test page");
        assert_eq!(a["output_fields"]["fd.name"], p.as_str(), "in order");
    }
    assert!(agent.stop().success());

    // Without the CA the server is not trusted: nothing is sent, the
    // attempts are retried, and the log says why.
    let dir = scratch("http-tls-untrusted");
    let untrusted = Receiver::start_tls(&cert, &key);
    let agent = oncall::agent(
        &dir,
        "http",
        &format!("    url: {}\n", untrusted.url("/batch")),
        &[],
    );
    let page = touch(&dir, "page-x");
    run_actor(&["open", &page], Some(true));
    wait_until(30, "the failed attempt counted", || {
        output_count(&agent, "http", "retried") >= 1.0
    });
    assert!(untrusted.requests().is_empty());
    assert!(
        agent.log().contains("certificate"),
        "the log names the certificate problem:\n{}",
        agent.log()
    );
    assert_eq!(output_count(&agent, "http", "sent"), 0.0);
    assert!(agent.stop().success());
}

#[test]
fn a_receiver_slower_than_the_timeout_gets_the_alert_again() {
    let dir = scratch("http-timeout");
    let receiver = Receiver::start();
    receiver.delay(3_000);
    let agent = oncall::agent(
        &dir,
        "http",
        &format!("    url: {}\n    timeout_s: 1\n", receiver.url("/slow")),
        &[],
    );
    let page = touch(&dir, "page-slow");
    run_actor(&["open", &page], Some(true));
    wait_until(30, "the timed-out request retried", || {
        output_count(&agent, "http", "retried") >= 1.0
    });
    receiver.delay(0);
    wait_until(30, "the alert delivered", || {
        output_count(&agent, "http", "sent") == 1.0
    });
    // At least once: the receiver saw the timed-out request too, and every
    // copy is the same alert.
    let got = receiver.requests();
    assert!(got.len() >= 2, "{got:#?}");
    assert!(got.iter().all(|r| r.json() == got[0].json()));
    assert_eq!(got[0].json()["output_fields"]["fd.name"], page.as_str());
    assert!(agent.stop().success());
}
