//! Kibana's saved objects (`deploy/kibana/mamori.ndjson`) against a real
//! Elasticsearch node holding real alerts. Kibana itself cannot run here:
//! this checks what the objects rely on — that they reference each other
//! correctly, that every field they use is mapped and aggregatable, and
//! that every query and aggregation they make runs and finds the alerts.

use std::{collections::BTreeMap, fs, path::PathBuf};

use mamori_e2e::{
    agent::{Agent, repo_rules},
    es::{self, count, shared_url, wait_until},
    run_actor,
};
use serde_json::{Value, json};

fn objects() -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/kibana/mamori.ndjson");
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A nested JSON document kept as a string in a saved object.
fn inner(v: &Value) -> Value {
    v.as_str()
        .map_or(Value::Null, |s| serde_json::from_str(s).unwrap())
}

#[test]
fn saved_objects_reference_each_other() {
    let objs = objects();
    let ids: BTreeMap<String, String> = objs
        .iter()
        .map(|o| {
            (
                o["id"].as_str().unwrap().to_owned(),
                o["type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(ids.len(), objs.len(), "ids are unique");
    // Two data views: the alerts, and the agents' status documents.
    let views: BTreeMap<&str, &str> = objs
        .iter()
        .filter(|o| o["type"] == "index-pattern")
        .map(|o| {
            assert_eq!(o["attributes"]["timeFieldName"], "@timestamp");
            (
                o["id"].as_str().unwrap(),
                o["attributes"]["title"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        views,
        BTreeMap::from([
            ("mamori-alerts", "logs-mamori.alerts-*"),
            ("mamori-status", "metrics-mamori.status-*")
        ])
    );
    for o in &objs {
        for r in o["references"].as_array().unwrap() {
            let id = r["id"].as_str().unwrap();
            assert_eq!(
                ids.get(id).map(String::as_str),
                r["type"].as_str(),
                "{}: reference to {id}",
                o["id"]
            );
        }
        // A search or visualization reads the index pattern through a
        // named reference; a dashboard has a search source without one.
        let ss = inner(&o["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"]);
        match o["type"].as_str().unwrap() {
            "search" | "visualization" => {
                let name = ss["indexRefName"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{}: no indexRefName", o["id"]));
                let target = o["references"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|r| r["name"] == name)
                    .unwrap_or_else(|| panic!("{}: no reference named {name}", o["id"]));
                assert!(
                    views.contains_key(target["id"].as_str().unwrap()),
                    "{}: reads an index that is not a data view",
                    o["id"]
                );
            }
            "dashboard" => assert!(ss["indexRefName"].is_null(), "{}", o["id"]),
            "index-pattern" => assert!(ss.is_null(), "{}", o["id"]),
            other => panic!(
                "{}: a saved object type this test does not know: {other}",
                o["id"]
            ),
        }
    }
    let dash = objs.iter().find(|o| o["type"] == "dashboard").unwrap();
    let panels = inner(&dash["attributes"]["panelsJSON"]);
    for p in panels.as_array().unwrap() {
        let name = p["panelRefName"].as_str().unwrap();
        assert!(
            dash["references"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["name"] == name),
            "{name}"
        );
    }
    assert_eq!(
        panels.as_array().unwrap().len(),
        dash["references"].as_array().unwrap().len()
    );
}

/// The fields a visualization or search uses.
fn fields_of(o: &Value) -> Vec<String> {
    let mut out = Vec::new();
    match o["type"].as_str().unwrap() {
        "visualization" => {
            let vis = inner(&o["attributes"]["visState"]);
            for a in vis["aggs"].as_array().unwrap() {
                if let Some(f) = a["params"]["field"].as_str() {
                    out.push(f.to_owned());
                }
            }
        }
        "search" => {
            for c in o["attributes"]["columns"].as_array().unwrap() {
                out.push(c.as_str().unwrap().to_owned());
            }
        }
        _ => {}
    }
    out
}

/// KQL as the objects use it: `field:value` and `field:*` joined by `and`.
fn kql(q: &str) -> Value {
    if q.trim().is_empty() {
        return json!({"match_all": {}});
    }
    let clauses: Vec<Value> = q
        .split(" and ")
        .map(|c| {
            let (field, value) = c
                .trim()
                .split_once(':')
                .unwrap_or_else(|| panic!("KQL this test does not know: {q:?}"));
            assert!(
                !value.contains(' ') && !value.contains('"'),
                "KQL this test does not know: {q:?}"
            );
            if value == "*" {
                json!({"exists": {"field": field}})
            } else {
                json!({"term": {field: value}})
            }
        })
        .collect();
    json!({"bool": {"filter": clauses}})
}

/// The aggregations a legacy visualization asks for: bucket aggregations
/// nested in order, the date histogram outermost.
fn aggs_of(vis: &Value) -> Value {
    let buckets: Vec<&Value> = vis["aggs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["schema"] != "metric")
        .collect();
    let mut tree = json!({});
    for a in buckets.iter().rev() {
        let p = &a["params"];
        let mut node = match a["type"].as_str().unwrap() {
            "date_histogram" => {
                json!({"date_histogram": {"field": p["field"], "fixed_interval": "1m", "min_doc_count": 1}})
            }
            "terms" => {
                json!({"terms": {"field": p["field"], "size": p["size"], "order": {"_count": "desc"}}})
            }
            other => panic!("aggregation this test does not know: {other}"),
        };
        if tree.as_object().is_some_and(|o| !o.is_empty()) {
            node["aggs"] = tree;
        }
        tree = json!({ format!("a{}", a["id"].as_str().unwrap()): node });
    }
    tree
}

/// Every bucket key at the top level of an aggregation answer.
fn top_keys(answer: &Value) -> Vec<String> {
    let aggs = answer["aggregations"].as_object().unwrap();
    let first = aggs.values().next().unwrap();
    first["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            b["key_as_string"].as_str().map_or_else(
                || b["key"].to_string().trim_matches('"').to_owned(),
                str::to_owned,
            )
        })
        .collect()
}

#[test]
fn saved_object_queries_run_on_real_alerts() {
    let url = shared_url();
    let ns = format!("kib{}", std::process::id());
    let index = format!("logs-mamori.alerts-{ns}");
    let dir = std::env::temp_dir().join(format!("mamori-kibana-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("mamori.yaml");
    fs::write(
        &cfg,
        format!(
            "outputs:\n  elasticsearch:\n    url: {url}\n    namespace: {ns}\n    spool_dir: {}\n    flush_interval_ms: 100\n",
            dir.join("spool").display()
        ),
    )
    .unwrap();
    let agent = Agent::start(&[
        "-c",
        cfg.to_str().unwrap(),
        "-r",
        repo_rules().to_str().unwrap(),
    ]);
    let pid = run_actor(&["open", "/etc/shadow"], Some(true)).pid;
    let shm = "/dev/shm/mamori-kibana-true";
    fs::copy("/bin/true", shm).unwrap();
    let exec_pid = run_actor(&["exec", shm], Some(true)).pid;
    let _ = fs::remove_file(shm);
    // This test's alerts only: anything on the host may alert meanwhile.
    let ours = json!({"terms": {"process.pid": [pid, exec_pid]}});
    wait_until(30, "the alerts indexed", || {
        count(&url, &index, ours.clone()) >= 2
    });
    assert!(agent.stop().success());

    // Every field is mapped, and aggregatable where aggregated.
    let caps = es::json("GET", &format!("{url}/{index}/_field_caps?fields=*"), None);
    // The alerts' objects; those on the status data view are run against
    // real status documents in status.rs.
    let objs: Vec<Value> = objects()
        .into_iter()
        .filter(|o| {
            !o["references"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["id"] == "mamori-status")
        })
        .collect();
    for o in &objs {
        for f in fields_of(o) {
            let cap = &caps["fields"][&f];
            assert!(cap.is_object(), "{}: field {f} is not mapped", o["id"]);
            if o["type"] == "visualization" {
                let c = cap.as_object().unwrap().values().next().unwrap();
                assert_eq!(
                    c["aggregatable"], true,
                    "{}: {f} is not aggregatable",
                    o["id"]
                );
            }
        }
    }

    // The data view's pattern finds the alerts.
    assert!(
        count(
            &url,
            "logs-mamori.alerts-*",
            json!({"term": {"process.pid": pid}})
        ) >= 1
    );

    let host = {
        let v = es::search(&url, &index, json!({"term": {"process.pid": pid}}), 1);
        v[0]["host"]["name"].as_str().unwrap().to_owned()
    };
    let last_day = json!({"range": {"@timestamp": {"gte": "now-24h", "lte": "now"}}});
    for o in &objs {
        let ss = o["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"].as_str();
        let Some(ss) = ss.map(|s| serde_json::from_str::<Value>(s).unwrap()) else {
            continue;
        };
        let query = json!({"bool": {"filter": [kql(ss["query"]["query"].as_str().unwrap()), last_day, ours]}});
        let id = o["id"].as_str().unwrap();
        match o["type"].as_str().unwrap() {
            "visualization" => {
                let vis = inner(&o["attributes"]["visState"]);
                let answer = es::json(
                    "POST",
                    &format!("{url}/{index}/_search"),
                    Some(&json!({"size": 0, "query": query, "aggs": aggs_of(&vis)})),
                );
                let keys = top_keys(&answer);
                let expect: Option<&str> = match id {
                    "mamori-top-rules" => Some("Credential file read by unexpected process"),
                    "mamori-top-hosts" => Some(&host),
                    "mamori-top-techniques" => Some("T1003"),
                    "mamori-alerts-over-time" => None,
                    // Host processes only here: no container or pod alerts.
                    "mamori-top-containers" | "mamori-top-pods" => {
                        assert!(keys.is_empty(), "{id}: {keys:?}");
                        continue;
                    }
                    other => panic!("a visualization this test does not know: {other}"),
                };
                assert!(!keys.is_empty(), "{id}: no buckets");
                if let Some(k) = expect {
                    assert!(keys.iter().any(|x| x == k), "{id}: {keys:?} lacks {k}");
                }
                if id == "mamori-alerts-over-time" {
                    let inner_keys: Vec<String> = answer["aggregations"]
                        .as_object()
                        .unwrap()
                        .values()
                        .next()
                        .unwrap()["buckets"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .flat_map(|b| {
                            b.as_object()
                                .unwrap()
                                .iter()
                                .filter_map(|(_, v)| v["buckets"].as_array())
                                .flatten()
                                .map(|x| x["key"].as_str().unwrap_or_default().to_owned())
                                .collect::<Vec<_>>()
                        })
                        .collect();
                    assert!(inner_keys.contains(&"Warning".to_owned()), "{inner_keys:?}");
                }
            }
            "search" => {
                let sort = &o["attributes"]["sort"][0];
                let answer = es::json(
                    "POST",
                    &format!("{url}/{index}/_search"),
                    Some(
                        &json!({"size": 10, "query": query, "sort": [{sort[0].as_str().unwrap(): sort[1]}]}),
                    ),
                );
                assert!(
                    answer["hits"]["hits"].as_array().unwrap().len() >= 2,
                    "{id}"
                );
            }
            _ => {}
        }
    }
}
