//! The agent's DaemonSet, installed once from `deploy/kubernetes/` as an
//! operator would, and what the tests read from it: its alerts (`kubectl
//! logs`), its log lines and its metrics (through the API server's proxy,
//! as a Prometheus in the cluster would reach them).

use std::{fs, path::Path, sync::OnceLock};

use mamori_e2e::k8s::{Cluster, NODE_IP, wait_for};
use serde_json::Value;

/// The image `cargo xtask image` builds, imported into the node.
const IMAGE: &str = concat!("localhost/mamori:", env!("CARGO_PKG_VERSION"));

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The cluster, with the agent installed and Ready.
pub fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let c = Cluster::from_env();
        install(&c);
        c
    })
}

fn install(c: &Cluster) {
    let dir = repo().join("deploy/kubernetes");
    c.apply(&fs::read_to_string(dir.join("namespace.yaml")).unwrap());
    // A real Elasticsearch over TLS, wanting the password; the Secret
    // from a literal and a file, as the README says.
    let es = crate::elastic::elastic(c);
    let _ = c.try_kubectl(
        &["-n", "mamori", "delete", "secret", "mamori-elasticsearch"],
        None,
    );
    c.kubectl(&[
        "-n",
        "mamori",
        "create",
        "secret",
        "generic",
        "mamori-elasticsearch",
        &format!("--from-literal=password={}", crate::elastic::PASSWORD),
        &format!("--from-file=ca.pem={}", es.ca.display()),
    ]);
    let manifest = fs::read_to_string(dir.join("mamori.yaml")).unwrap();
    let default_url = "url: https://elasticsearch.logging.svc:9200";
    let default_image = "image: \"localhost/mamori:0.1.0\"";
    assert!(manifest.contains(default_url) && manifest.contains(default_image));
    let manifest = manifest
        .replace(default_url, &format!("url: {}", es.url_in_node))
        .replace(default_image, &format!("image: \"{IMAGE}\""));
    c.apply(&manifest);
    wait_for("the agent's pod to be Ready", 180, || {
        let pods = c.json(&["-n", "mamori", "get", "pods"]);
        let ready = pods["items"].as_array().is_some_and(|items| {
            items.iter().any(|p| {
                p["metadata"]["deletionTimestamp"].is_null()
                    && p["status"]["conditions"].as_array().is_some_and(|cs| {
                        cs.iter()
                            .any(|x| x["type"] == "Ready" && x["status"] == "True")
                    })
            })
        });
        if ready {
            Ok(())
        } else {
            Err(pods["items"].to_string())
        }
    });
}

/// The agent's pod (the single node's one).
pub fn pod(c: &Cluster) -> Value {
    let pods = c.json(&["-n", "mamori", "get", "pods"]);
    pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["metadata"]["deletionTimestamp"].is_null())
        .cloned()
        .expect("the agent's pod")
}

/// Everything the running agent printed.
pub fn logs(c: &Cluster) -> String {
    c.kubectl(&["-n", "mamori", "logs", "ds/mamori"])
}

/// The alerts the running agent printed.
pub fn alerts(c: &Cluster) -> Vec<Value> {
    logs(c)
        .lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The agent's /metrics, through the API server's pod proxy.
pub fn metrics(c: &Cluster) -> String {
    let name = pod(c)["metadata"]["name"].as_str().unwrap().to_owned();
    c.kubectl(&[
        "get",
        "--raw",
        &format!("/api/v1/namespaces/mamori/pods/{name}:8765/proxy/metrics"),
    ])
}

/// The value of metric `name`, summed over its series (labels).
pub fn metric(c: &Cluster, name: &str) -> f64 {
    let text = metrics(c);
    let values: Vec<f64> = text
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let value = if rest.starts_with('{') {
                rest.split_once("} ")?.1
            } else {
                rest.strip_prefix(' ')?
            };
            value.trim().parse().ok()
        })
        .collect();
    assert!(!values.is_empty(), "no metric {name}");
    values.iter().sum()
}

/// The agent's process on the node (found by its container's cgroup).
pub fn agent_pid(c: &Cluster) -> u32 {
    let pod = pod(c);
    let id = pod["status"]["containerStatuses"][0]["containerID"]
        .as_str()
        .unwrap()
        .trim_start_matches("containerd://")
        .to_owned();
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .find(|p| {
            fs::read_to_string(format!("/proc/{p}/cgroup")).is_ok_and(|cg| cg.contains(&id))
                && fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|n| n.trim() == "mamori")
        })
        .unwrap_or_else(|| panic!("no mamori process in container {id}"))
}

/// Capability numbers (linux/capability.h) of those the chart names.
const CAPABILITIES: &[(&str, u32)] = &[
    ("DAC_READ_SEARCH", 2),
    ("SYS_PTRACE", 19),
    ("SYS_ADMIN", 21),
    ("SYS_RESOURCE", 24),
    ("PERFMON", 38),
    ("BPF", 39),
];

/// The agent runs with exactly the capabilities its manifest names, not
/// privileged, and loaded its programs: the pod became Ready through its
/// own probes.
#[test]
fn the_daemonset_runs_unprivileged_with_the_capabilities_it_names() {
    let c = cluster();
    let pod = pod(c);
    let container = &pod["spec"]["containers"][0];
    let security = &container["securityContext"];
    assert_eq!(security["privileged"], false, "{security}");
    let named: Vec<&str> = security["capabilities"]["add"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(security["capabilities"]["drop"][0], "ALL");
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        assert!(container[probe]["httpGet"]["path"].is_string(), "{probe}");
    }
    let logs = logs(c);
    assert!(logs.contains("programs loaded and attached"), "{logs}");

    // The agent's process on the node: its effective capabilities are
    // exactly the named ones.
    let pid = agent_pid(c);
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .unwrap();
    let expected: u64 = named
        .iter()
        .map(|n| {
            let bit = CAPABILITIES
                .iter()
                .find(|(name, _)| name == n)
                .unwrap_or_else(|| panic!("capability {n} unknown to this test"))
                .1;
            1u64 << bit
        })
        .sum();
    assert_eq!(
        eff, expected,
        "CapEff {eff:#x} of pid {pid}, named {named:?} ({expected:#x})"
    );
    // Served to Prometheus through a Service, and up.
    assert!(metrics(c).contains("mamori_"), "metrics served");
    let node = &pod["spec"]["nodeName"];
    assert_eq!(node, mamori_e2e::k8s::NODE_NAME);
    assert_eq!(pod["status"]["hostIP"], NODE_IP);
}
