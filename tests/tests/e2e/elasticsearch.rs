//! The Elasticsearch output against a real node: alerts from real eBPF
//! events arrive as ECS documents; an outage and a `kill -9` lose and
//! duplicate nothing; refused documents reach the dead-letter stream.

use std::fs;

use mamori_e2e::{
    agent::free_port,
    es::{
        self, Node, by_pid, config, count, marker_rules, rules, scratch, search, shared_url,
        start_agent, wait_until,
    },
    run_actor,
};
use serde_json::{Value, json};

#[test]
fn alerts_arrive_as_ecs_documents() {
    let url = shared_url();
    let dir = scratch("ecs");
    let ns = format!("ecs{}", std::process::id());
    let index = format!("logs-mamori.alerts-{ns}");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let agent = start_agent(&config(&dir, &url, &ns, ""), &rules(&dir, port));

    let file_pid = run_actor(&["open", "/etc/shadow"], Some(true)).pid;
    let shm = "/dev/shm/mamori-es-true";
    fs::copy("/bin/true", shm).unwrap();
    let exec_pid = run_actor(&["exec", shm], Some(true)).pid;
    let net_pid = run_actor(&["connect", &port.to_string()], Some(true)).pid;

    for pid in [file_pid, exec_pid, net_pid] {
        wait_until(30, "the alerts in Elasticsearch", || {
            count(&url, &index, by_pid(pid)) >= 1
        });
    }
    let _ = fs::remove_file(shm);

    let d = &search(&url, &index, by_pid(file_pid), 10)[0];
    assert_eq!(d["event"]["kind"], "alert");
    assert_eq!(
        d["event"]["category"],
        json!(["file", "intrusion_detection"])
    );
    assert_eq!(d["event"]["type"], json!(["access"]));
    assert_eq!(d["event"]["action"], "openat");
    assert_eq!(d["event"]["outcome"], "success");
    assert_eq!(
        d["event"]["severity"], 47,
        "Warning is medium on Kibana's scale"
    );
    assert_eq!(d["event"]["module"], "mamori");
    assert!(d["event"]["ingested"].as_str().unwrap() > "2026");
    assert!(d["event"]["created"].as_str().unwrap() > "2026");
    assert_eq!(
        d["rule"]["name"],
        "Credential file read by unexpected process"
    );
    assert_eq!(d["rule"]["ruleset"], "mamori_rules.yaml");
    assert!(!d["rule"]["description"].as_str().unwrap().is_empty());
    assert_eq!(d["file"]["path"], "/etc/shadow");
    assert_eq!(d["file"]["name"], "shadow");
    assert_eq!(d["process"]["pid"], file_pid);
    assert_eq!(d["process"]["name"], "mamori-actor");
    assert!(
        d["process"]["executable"]
            .as_str()
            .unwrap()
            .ends_with("/mamori-actor")
    );
    assert_eq!(d["process"]["args"][1], "open");
    assert_eq!(d["process"]["args_count"], 3);
    assert_eq!(d["process"]["user"]["id"], "0");
    assert_eq!(d["process"]["user"]["name"], "root");
    assert_eq!(d["process"]["parent"]["pid"], std::process::id());
    assert!(d["process"]["working_directory"].is_string());
    assert_eq!(d["host"]["os"]["type"], "linux");
    assert!(d["host"]["name"].is_string() && d["host"]["id"].is_string());
    assert_eq!(d["agent"]["type"], "mamori");
    assert_eq!(d["threat"]["technique"]["id"], json!(["T1003"]));
    assert_eq!(
        d["threat"]["technique"]["subtechnique"]["id"],
        json!(["T1003.008"])
    );
    assert_eq!(d["threat"]["tactic"]["name"], json!(["Credential Access"]));
    assert_eq!(d["mamori"]["output_fields"]["fd.name"], "/etc/shadow");
    assert!(
        d.get("fd").is_none() && d.get("proc").is_none(),
        "Falco fields stay under mamori"
    );
    assert!(d.get("container").is_none(), "a host process");
    assert_eq!(d["message"], d["mamori"]["output"]);

    let d = &search(&url, &index, by_pid(exec_pid), 10)[0];
    assert_eq!(d["rule"]["name"], "Program executed from shared memory");
    assert_eq!(
        d["event"]["category"],
        json!(["process", "intrusion_detection"])
    );
    assert_eq!(d["event"]["type"], json!(["start"]));
    assert_eq!(d["process"]["executable"], shm);

    let d = &search(&url, &index, by_pid(net_pid), 10)[0];
    assert_eq!(d["rule"]["name"], "Test outbound connection");
    assert_eq!(d["event"]["severity"], 73);
    assert_eq!(
        d["event"]["category"],
        json!(["network", "intrusion_detection"])
    );
    assert_eq!(d["network"]["transport"], "tcp");
    assert_eq!(d["network"]["type"], "ipv4");
    assert_eq!(d["network"]["direction"], "egress");
    assert_eq!(d["destination"]["ip"], "127.0.0.1");
    assert_eq!(d["destination"]["port"], port);
    assert_eq!(d["source"]["ip"], "127.0.0.1");
    assert!(d["source"]["port"].as_u64().unwrap() > 0);

    // The fields are typed as the template says, not by dynamic guesses.
    let mapping = es::json("GET", &format!("{url}/{index}/_mapping"), None);
    let props = &mapping.as_object().unwrap().values().next().unwrap()["mappings"]["properties"];
    assert_eq!(props["process"]["properties"]["pid"]["type"], "long");
    assert_eq!(props["destination"]["properties"]["ip"]["type"], "ip");
    assert_eq!(props["event"]["properties"]["severity"]["type"], "long");
    assert_eq!(
        props["mamori"]["properties"]["output_fields"]["type"],
        "flattened"
    );
    // Searchable by Falco field through the flattened object (this test's
    // process only: anything on the host may read /etc/shadow meanwhile).
    let by_field = json!({"bool": {"filter": [
        {"term": {"mamori.output_fields.fd.name": "/etc/shadow"}},
        {"term": {"mamori.output_fields.proc.pid": file_pid}}
    ]}});
    assert_eq!(count(&url, &index, by_field), 1);
    assert!(agent.metric("mamori_elasticsearch_indexed_total").unwrap() >= 3.0);
    assert!(
        agent
            .metric("mamori_elasticsearch_request_duration_seconds_count")
            .unwrap()
            >= 1.0,
        "bulk requests are timed"
    );
    assert!(agent.stop().success());
}

/// 1,000 alerts while Elasticsearch is down, then it comes back: each
/// alert arrives exactly once.
#[test]
fn an_outage_loses_and_duplicates_nothing() {
    let dir = scratch("outage");
    let es_port = free_port();
    let mut node = Node::start(&dir.join("node"), es_port);
    let url = node.url.clone();
    let cfg = config(&dir, &url, "outage", "    batch_size: 200\n");
    let (rules, marker) = marker_rules(&dir);
    let agent = start_agent(&cfg, &rules);
    // The agent has installed its templates and delivers: prove it.
    let first = run_actor(&["open", &marker], Some(true)).pid;
    wait_until(30, "the first alert", || {
        count(&url, "logs-mamori.alerts-outage", by_pid(first)) == 1
    });

    node.stop();
    let pid = run_actor(&["open-n", &marker, "1000"], Some(true)).pid;
    wait_until(60, "1,000 alerts in the spool", || {
        agent.metric("mamori_elasticsearch_spooled_total") >= Some(1001.0)
    });
    assert_eq!(
        agent.metric("mamori_elasticsearch_indexed_total"),
        Some(1.0)
    );
    assert!(
        agent
            .metric("mamori_elasticsearch_bulk_failures_total")
            .unwrap()
            >= 1.0
    );
    assert!(agent.metric("mamori_spool_pending").unwrap() >= 1000.0);

    let node = Node::start(&dir.join("node"), es_port);
    wait_until(120, "the spooled alerts delivered", || {
        count(&node.url, "logs-mamori.alerts-outage", by_pid(pid)) >= 1000
    });
    // Give a duplicate every chance to land before counting.
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(
        count(&node.url, "logs-mamori.alerts-outage", by_pid(pid)),
        1000
    );
    assert_unique_ids(&node.url, "logs-mamori.alerts-outage", pid, 1000);
    assert_eq!(agent.metric("mamori_spool_pending"), Some(0.0));
    eprintln!(
        "outage: 1000 alerts spooled while Elasticsearch was down, 1000 present once after it came back ({} failed requests retried, {} duplicates answered)",
        agent
            .metric("mamori_elasticsearch_bulk_failures_total")
            .unwrap(),
        agent
            .metric("mamori_elasticsearch_duplicates_total")
            .unwrap()
    );
    assert!(agent.stop().success());
}

/// `kill -9` of mamori in the middle of delivering 1,000 alerts, then a
/// restart on the same spool: none lost, none duplicated.
#[test]
fn kill_9_mid_flush_loses_and_duplicates_nothing() {
    let url = shared_url();
    let dir = scratch("kill9");
    let ns = format!("kill{}", std::process::id());
    let index = format!("logs-mamori.alerts-{ns}");
    // Small batches: delivery takes many requests, so the kill lands
    // between them.
    let cfg = config(
        &dir,
        &url,
        &ns,
        "    batch_size: 5\n    flush_interval_ms: 0\n",
    );
    let (rules, marker) = marker_rules(&dir);
    let agent = start_agent(&cfg, &rules);
    let pid = run_actor(&["open-n", &marker, "1000"], Some(true)).pid;
    wait_until(60, "delivery under way", || {
        agent.metric("mamori_elasticsearch_indexed_total") >= Some(50.0)
    });
    let indexed_at_kill = agent.metric("mamori_elasticsearch_indexed_total").unwrap();
    agent.kill();
    let before_restart = count(&url, &index, by_pid(pid));
    assert!(
        before_restart < 1000,
        "the kill came after delivery finished ({indexed_at_kill} indexed); the test proves nothing"
    );

    let agent = start_agent(&cfg, &rules);
    wait_until(120, "the rest delivered after the restart", || {
        count(&url, &index, by_pid(pid)) >= 1000
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(count(&url, &index, by_pid(pid)), 1000);
    assert_unique_ids(&url, &index, pid, 1000);
    assert_eq!(agent.metric("mamori_spool_pending"), Some(0.0));
    eprintln!(
        "kill -9: {before_restart} of 1000 stored before the kill; after the restart 1000 present once ({} resends answered as duplicates)",
        agent
            .metric("mamori_elasticsearch_duplicates_total")
            .unwrap()
    );
    assert!(agent.stop().success());
}

/// A document Elasticsearch refuses (here: a field mapped with another
/// type) lands in the dead-letter stream with the reason, not nowhere.
#[test]
fn refused_documents_go_to_the_dead_letter_stream() {
    let url = shared_url();
    let dir = scratch("deadletter");
    let ns = format!("dl{}", std::process::id());
    // A template above mamori's that maps file.path as a number.
    es::json(
        "PUT",
        &format!("{url}/_index_template/test-conflict-{ns}"),
        Some(&json!({
            "index_patterns": [format!("logs-mamori.alerts-{ns}")],
            "data_stream": {},
            "priority": 500,
            "template": {"mappings": {"properties": {"file": {"properties": {"path": {"type": "long"}}}}}}
        })),
    );
    let (rules, marker) = marker_rules(&dir);
    let agent = start_agent(&config(&dir, &url, &ns, ""), &rules);
    let pid = run_actor(&["open", &marker], Some(true)).pid;
    let dl = format!("logs-mamori.deadletter-{ns}");
    wait_until(30, "the dead letter", || {
        count(&url, &dl, json!({"match_all": {}})) >= 1
    });
    let d = &search(&url, &dl, json!({"match_all": {}}), 10)[0];
    assert_eq!(d["event"]["kind"], "pipeline_error");
    assert_eq!(d["error"]["code"], "400");
    let reason = d["error"]["message"].as_str().unwrap();
    assert!(reason.contains("file.path"), "{reason}");
    let original: Value = serde_json::from_str(d["event"]["original"].as_str().unwrap()).unwrap();
    assert_eq!(original["process"]["pid"], pid);
    assert_eq!(original["file"]["path"], marker.as_str());
    assert_eq!(d["event"]["id"], original["event"]["id"]);
    assert_eq!(
        count(&url, &format!("logs-mamori.alerts-{ns}"), by_pid(pid)),
        0
    );
    assert_eq!(
        agent.metric("mamori_elasticsearch_dead_lettered_total"),
        Some(1.0)
    );
    assert_eq!(agent.metric("mamori_spool_pending"), Some(0.0));
    assert!(agent.stop().success());
    es::json(
        "DELETE",
        &format!("{url}/_index_template/test-conflict-{ns}"),
        None,
    );
}

/// `index: daily` writes `mamori-alerts-<ns>-YYYY.MM.DD` indices.
#[test]
fn daily_indices_for_clusters_without_data_streams() {
    let url = shared_url();
    let dir = scratch("daily");
    let ns = format!("daily{}", std::process::id());
    let cfg = config(&dir, &url, &ns, "    index: daily\n");
    let (rules, marker) = marker_rules(&dir);
    let agent = start_agent(&cfg, &rules);
    let pid = run_actor(&["open", &marker], Some(true)).pid;
    let pattern = format!("mamori-alerts-{ns}-*");
    wait_until(30, "the alert in a daily index", || {
        count(&url, &pattern, by_pid(pid)) == 1
    });
    let indices = es::json(
        "GET",
        &format!("{url}/_cat/indices/{pattern}?format=json"),
        None,
    );
    let name = indices[0]["index"].as_str().unwrap();
    let today = chrono_day();
    assert_eq!(name, format!("mamori-alerts-{ns}-{today}"));
    assert!(agent.stop().success());
}

/// Today's `YYYY.MM.DD` (UTC), from `date`.
fn chrono_day() -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "+%Y.%m.%d"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// No alert id appears twice among `pid`'s `n` documents. Counted here,
/// exactly: Elasticsearch's `cardinality` aggregation is an estimate (it
/// once answered 999 for 1,000 distinct ids).
fn assert_unique_ids(url: &str, index: &str, pid: u32, n: u64) {
    let docs = search(url, index, by_pid(pid), n as usize + 10);
    assert_eq!(docs.len() as u64, n, "documents of pid {pid}");
    let ids: std::collections::BTreeSet<&str> = docs
        .iter()
        .map(|d| d["event"]["id"].as_str().expect("every alert has event.id"))
        .collect();
    assert_eq!(ids.len() as u64, n, "distinct event.id among {n} documents");
}

/// Elasticsearch unreachable long enough to fill a small spool: the oldest
/// alerts are dropped and counted, and an internal alert says so once
/// Elasticsearch is back.
#[test]
fn a_full_spool_drops_the_oldest_and_says_so() {
    let url = shared_url();
    let dir = scratch("full");
    let ns = format!("full{}", std::process::id());
    // Nothing listens on this port: every request fails.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let small = "    spool_max_mib: 1\n";
    let (rules, marker) = marker_rules(&dir);
    let agent = start_agent(&config(&dir, &dead, &ns, small), &rules);
    let pid = run_actor(&["open-n", &marker, "1000"], Some(true)).pid;
    wait_until(60, "the alerts spooled", || {
        agent.metric("mamori_elasticsearch_spooled_total") >= Some(1000.0)
    });
    let dropped = agent
        .metric("mamori_elasticsearch_spool_dropped_total")
        .unwrap();
    assert!(
        dropped > 0.0,
        "1,000 alerts of ~3 KB overflow a 1 MiB spool"
    );
    assert!(agent.metric("mamori_spool_bytes").unwrap() <= (1 << 20) as f64);
    assert!(agent.stop().success());

    // Back with Elasticsearch: what is left is delivered, with the notice.
    let agent = start_agent(&config(&dir, &url, &ns, small), &rules);
    let index = format!("logs-mamori.alerts-{ns}");
    let internal = json!({"term": {"rule.name": "mamori internal: spool full"}});
    wait_until(60, "the spool-full alert", || {
        count(&url, &index, internal.clone()) >= 1
    });
    wait_until(60, "the spool delivered", || {
        agent.metric("mamori_spool_pending") == Some(0.0)
    });
    let notices = search(&url, &index, internal, 100);
    assert_eq!(notices.len(), 1, "one report for one outage");
    let reported: u64 = notices
        .iter()
        .map(|d| d["mamori"]["output_fields"]["n_dropped"].as_u64().unwrap())
        .sum();
    assert_eq!(reported as f64, dropped, "the notices add up to the drops");
    assert_eq!(notices[0]["event"]["severity"], 99);
    assert_eq!(notices[0]["event"]["kind"], "alert");
    let delivered = count(&url, &index, by_pid(pid));
    assert_eq!(
        delivered + reported,
        1000,
        "every alert delivered or counted as dropped"
    );
    eprintln!("spool full: {delivered} delivered, {reported} dropped and reported");
    assert!(agent.stop().success());
}

/// Elasticsearch unreachable for longer than `down_alert_s`: one internal
/// alert through the normal outputs.
#[test]
fn a_long_outage_raises_one_internal_alert() {
    let dir = scratch("down");
    let dead = format!("http://127.0.0.1:{}", free_port());
    let cfg = config(&dir, &dead, "down", "    down_alert_s: 2\n");
    let agent = start_agent(&cfg, &marker_rules(&dir).0);
    let find = || {
        agent
            .alerts()
            .into_iter()
            .filter(|a| a["rule"] == "mamori internal: output down")
            .collect::<Vec<_>>()
    };
    wait_until(30, "the output-down alert", || !find().is_empty());
    let a = &find()[0];
    assert_eq!(a["priority"], "Error", "{a}");
    assert!(
        a["tags"]
            .as_array()
            .unwrap()
            .contains(&json!("mamori_internal"))
    );
    assert_eq!(a["output_fields"]["output"], "elasticsearch");
    assert!(a["output_fields"]["down_s"].as_u64().unwrap() >= 2);
    // Once per outage, however long it lasts.
    std::thread::sleep(std::time::Duration::from_secs(6));
    assert_eq!(find().len(), 1, "{:?}", find());
    assert!(agent.stop().success());
}
