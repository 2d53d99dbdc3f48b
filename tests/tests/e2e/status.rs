//! The agent's status documents in a real Elasticsearch node: written
//! every interval with what `/metrics` says, stopped while the agent is
//! frozen (SIGSTOP) and when it stops, and the shipped search for silent
//! agents finds the host then, and not while the agent runs; so does the
//! shipped Kibana table of agents by when they were last heard from.

use mamori_e2e::{
    es::{self, config, count, marker_rules, scratch, shared_url, start_agent, wait_until},
    run_actor,
};
use serde_json::{Value, json};

/// Hosts the shipped silent-agents search finds in `index`: a status in
/// the last hour, none in the last `silent_for` (the file's 24h and 90s,
/// shortened for the test).
fn silent_hosts(url: &str, index: &str, silent_for: &str) -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/elasticsearch/query-silent-agents.json");
    let query = std::fs::read_to_string(path)
        .unwrap()
        .replace("now-24h", "now-1h")
        .replace("now-90s", &format!("now-{silent_for}"));
    let _ = es::http("POST", &format!("{url}/{index}/_refresh"), None);
    let v = es::json(
        "POST",
        &format!("{url}/{index}/_search"),
        Some(&serde_json::from_str(&query).unwrap()),
    );
    v["aggregations"]["hosts"]["buckets"]
        .as_array()
        .map(|b| {
            b.iter()
                .filter(|x| x["recent"]["doc_count"] == 0)
                .filter_map(|x| x["key"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The newest status document of `index`.
/// Hosts in the order the shipped Kibana table "agents, least recently
/// heard from first" lists them in `index`, each with its last status
/// (ms since the epoch): its aggregation, read from the saved object.
fn least_recently_heard(url: &str, index: &str) -> Vec<(String, f64)> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kibana/mamori.ndjson");
    let objects = std::fs::read_to_string(path).unwrap();
    let vis: Value = objects
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|o| o["id"] == "mamori-agents-last-heard")
        .expect("the saved visualization");
    let state: Value =
        serde_json::from_str(vis["attributes"]["visState"].as_str().unwrap()).unwrap();
    let aggs = state["aggs"].as_array().unwrap();
    let metric = aggs.iter().find(|a| a["schema"] == "metric").unwrap();
    let bucket = aggs.iter().find(|a| a["schema"] == "bucket").unwrap();
    assert_eq!(
        (metric["type"].as_str(), bucket["type"].as_str()),
        (Some("max"), Some("terms"))
    );
    assert_eq!(bucket["params"]["orderBy"], metric["id"]);
    let body = json!({
        "size": 0,
        "query": {"term": {"event.dataset": "mamori.status"}},
        "aggs": {"hosts": {
            "terms": {
                "field": bucket["params"]["field"],
                "size": bucket["params"]["size"],
                "order": {"last": bucket["params"]["order"]},
            },
            "aggs": {"last": {"max": {"field": metric["params"]["field"]}}},
        }},
    });
    let _ = es::http("POST", &format!("{url}/{index}/_refresh"), None);
    let v = es::json("POST", &format!("{url}/{index}/_search"), Some(&body));
    v["aggregations"]["hosts"]["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["key"].as_str().unwrap().to_owned(),
                b["last"]["value"].as_f64().unwrap(),
            )
        })
        .collect()
}

fn latest(url: &str, index: &str) -> Value {
    let _ = es::http("POST", &format!("{url}/{index}/_refresh"), None);
    let body = json!({"size": 1, "sort": [{"@timestamp": "desc"}]}).to_string();
    match es::http("POST", &format!("{url}/{index}/_search"), Some(&body)) {
        Some((200, text)) => serde_json::from_str::<Value>(&text).unwrap_or(Value::Null)["hits"]
            ["hits"][0]["_source"]
            .clone(),
        _ => Value::Null, // not written yet
    }
}

#[test]
fn a_silent_agent_is_found_by_its_missing_status_documents() {
    let url = shared_url();
    let dir = scratch("status");
    let ns = format!("status{}", std::process::id());
    let index = format!("metrics-mamori.status-{ns}");
    let (rules, marker) = marker_rules(&dir);
    let agent = start_agent(
        &config(&dir, &url, &ns, "    status_interval_s: 1\n"),
        &rules,
    );
    let all = || count(&url, &index, json!({"match_all": {}}));
    run_actor(&["open", &marker], Some(true));
    // A document that counts the delivered alert, and is not the first
    // (which has no rates).
    wait_until(60, "the alert counted in a status document", || {
        let s = &latest(&url, &index)["mamori"]["status"];
        s["outputs"]["elasticsearch"]["sent"]
            .as_u64()
            .is_some_and(|n| n >= 1)
            && s["events"]["per_s"].is_number()
    });
    let d = latest(&url, &index);
    let s = &d["mamori"]["status"];
    let host = d["host"]["name"].as_str().unwrap_or_default().to_owned();
    let mut failures = Vec::new();
    let mut check = |ok: bool, what: &str| {
        if !ok {
            failures.push(format!("{what}: {d}"));
        }
    };
    check(!host.is_empty(), "host.name");
    check(d["agent"]["type"] == "mamori", "agent.type");
    check(d["agent"]["version"].is_string(), "agent.version");
    check(d["data_stream"]["namespace"] == ns.as_str(), "namespace");
    check(s["ready"] == true, "ready");
    check(
        s["rules"]["enabled"] == 1,
        "one rule enabled (the marker's)",
    );
    check(
        s["rules"]["fingerprint"]
            .as_str()
            .is_some_and(|f| f.len() == 16),
        "rules fingerprint",
    );
    check(s["alerts"]["total"].as_u64() >= Some(1), "alerts counted");
    check(s["events"]["total"].as_u64() >= Some(1), "events counted");
    check(s["events"]["per_s"].is_number(), "events per second");
    check(s["events"]["last"].is_string(), "last event time");
    check(s["interval_s"] == 1, "interval");
    check(s["spool"]["pending"].is_number(), "spool depth");
    // Running: written every second, so not silent for 5 s.
    let running = silent_hosts(&url, &index, "5s");
    check(running.is_empty(), "a running agent reported silent");

    // Frozen (SIGSTOP: it cannot raise an alert about that itself), then
    // stopped: each time the documents stop and the host is found silent;
    // thawed, it writes again and is not.
    let silent_after = |what: &str, failures: &mut Vec<String>| {
        std::thread::sleep(std::time::Duration::from_secs(2));
        let before = all();
        std::thread::sleep(std::time::Duration::from_secs(5));
        if all() != before {
            failures.push(format!("status documents went on after the agent {what}"));
        }
        let silent = silent_hosts(&url, &index, "5s");
        if silent != [host.clone()] {
            failures.push(format!(
                "the {what} agent's host {host} not found silent: {silent:?}"
            ));
        }
    };
    agent.signal(libc::SIGSTOP);
    silent_after("frozen", &mut failures);
    agent.signal(libc::SIGCONT);
    let thawed = all();
    wait_until(30, "status documents after SIGCONT", || all() >= thawed + 2);
    if !silent_hosts(&url, &index, "5s").is_empty() {
        failures.push("the thawed agent still reported silent".into());
    }
    assert!(agent.stop().success());
    silent_after("stopped", &mut failures);
    // Kibana's table lists the host first, last heard from over 5 s ago.
    let table = least_recently_heard(&url, &index);
    let now_ms = mamori_e2e::agent::now_ns() as f64 / 1e6;
    match table.first() {
        Some((h, last)) if *h == host && now_ms - last > 5_000.0 => {}
        other => failures.push(format!(
            "Kibana's least-recently-heard table does not show the stopped agent first: {other:?}"
        )),
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
