//! Alerts from the pod to a real Elasticsearch node over TLS with the
//! credentials from the Secret: a dedicated node (its HTTPS front needs a
//! password and presents a certificate for the node's address, signed by
//! a CA that only the Secret carries), reached from the node's network
//! namespace through a forwarder. Then `kubectl rollout restart` while the
//! node is down: what was raised before and after the restart arrives once
//! each when it is back (the spool is a hostPath).

use std::{
    fs,
    path::{Path, PathBuf},
    sync::{
        Mutex, OnceLock,
        atomic::{AtomicI32, Ordering},
    },
};

use mamori_e2e::{
    agent::free_port,
    es::{Node, count, search},
    k8s::{Cluster, NODE_IP, NODE_NAME, forward, wait_for},
    openssl, sign_into_store,
};
use serde_json::{Value, json};

use crate::{
    agent::{alerts, cluster, pod},
    workload::{sh_in_web, web_pod_name},
};

/// The user the chart's config names, and the password only the Secret has.
pub const USER: &str = "mamori_writer";
pub const PASSWORD: &str = "k8s-Secret-Pa55";
const INDEX: &str = "logs-mamori.alerts-default";

pub struct Elastic {
    node: Mutex<Node>,
    home: PathBuf,
    port: u16,
    args: Vec<String>,
    /// The HTTPS front, as the pod reaches it.
    pub url_in_node: String,
    /// The CA that signed the front's certificate (for the Secret).
    pub ca: PathBuf,
}

/// The process group of the node, stopped when the test process exits
/// (statics are never dropped).
static GROUP: AtomicI32 = AtomicI32::new(0);

extern "C" fn stop_node() {
    let g = GROUP.load(Ordering::SeqCst);
    if g > 0 {
        // SAFETY: signalling the process group this test started.
        unsafe { libc::kill(-g, libc::SIGTERM) };
    }
}

pub fn elastic(c: &Cluster) -> &'static Elastic {
    static ES: OnceLock<Elastic> = OnceLock::new();
    ES.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("mamori-k8s-es-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let (ca, p12) = certificates(&dir);
        let tls_port = free_port();
        let args: Vec<String> = [
            "--tls-port",
            &tls_port.to_string(),
            "--keystore",
            p12.to_str().unwrap(),
            "--keystore-pass",
            "storepw",
            "--user",
            USER,
            "--password",
            PASSWORD,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let home = dir.join("node");
        let port = free_port();
        let node = start(&home, port, &args);
        // SAFETY: registering a plain function to run at exit.
        unsafe { libc::atexit(stop_node) };
        forward(
            c,
            &format!("{NODE_IP}:{tls_port}"),
            &format!("127.0.0.1:{tls_port}"),
        );
        Elastic {
            node: Mutex::new(node),
            home,
            port,
            args,
            url_in_node: format!("https://{NODE_IP}:{tls_port}"),
            ca,
        }
    })
}

fn start(home: &Path, port: u16, args: &[String]) -> Node {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let node = Node::start_with(home, port, &args);
    GROUP.store(node.pid().map_or(0, |p| p as i32), Ordering::SeqCst);
    node
}

impl Elastic {
    /// The node's own (plain, local) URL, for the test's queries.
    fn query_url(&self) -> String {
        self.node.lock().unwrap().url.clone()
    }

    fn stop(&self) {
        self.node.lock().unwrap().stop();
        GROUP.store(0, Ordering::SeqCst);
    }

    fn restart(&self) {
        let mut node = self.node.lock().unwrap();
        *node = start(&self.home, self.port, &self.args);
    }
}

/// A CA, and a certificate for the node's address signed by it, in the
/// PKCS#12 store the node's HTTPS front reads.
fn certificates(dir: &Path) -> (PathBuf, PathBuf) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut a = vec!["req", "-x509"];
    a.extend(ec);
    a.extend([
        "-subj",
        "/CN=mamori k8s test es ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
    ]);
    openssl(dir, &a);
    let mut a = vec!["req"];
    a.extend(ec);
    a.extend([
        "-subj",
        "/CN=elasticsearch",
        "-keyout",
        "es.key",
        "-out",
        "es.csr",
    ]);
    openssl(dir, &a);
    sign_into_store(dir, "es", &format!("IP:{NODE_IP},DNS:localhost"));
    // The launcher runs as its own user: it must reach the store.
    let mut p = fs::metadata(dir).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut p, 0o755);
    fs::set_permissions(dir, p).unwrap();
    (dir.join("ca.pem"), dir.join("es.p12"))
}

/// A shell in the web pod whose command line carries `marker`: one
/// "Shell started in a container" alert each.
fn raise(c: &Cluster, marker: &str) {
    sh_in_web(c, &format!(": {marker}"));
}

/// Waits until the agent printed the alert of `marker` (it was raised).
fn printed(c: &Cluster, marker: &str) {
    wait_for("the agent to print the alert", 30, || {
        let seen = alerts(c).iter().any(|a| {
            a["output_fields"]["proc.cmdline"]
                .as_str()
                .is_some_and(|l| l.contains(marker))
        });
        if seen {
            Ok(())
        } else {
            Err(format!("no alert for {marker} yet"))
        }
    });
}

fn by_marker(marker: &str) -> Value {
    json!({"bool": {"filter": [
        {"wildcard": {"process.command_line": {"value": format!("*{marker}*")}}},
        {"term": {"rule.name": "Shell started in a container"}}
    ]}})
}

#[test]
fn alerts_reach_elasticsearch_from_the_pod_with_the_secrets_credentials() {
    let c = cluster();
    let es = elastic(c);
    let marker = format!("mamori-k8s-es-{}", std::process::id());
    raise(c, &marker);
    let url = es.query_url();
    let docs = wait_for("the alert in Elasticsearch", 60, || {
        let d = search(&url, INDEX, by_marker(&marker), 10);
        if d.is_empty() {
            Err(crate::agent::logs(c)
                .lines()
                .rev()
                .take(3)
                .collect::<Vec<_>>()
                .join("\n"))
        } else {
            Ok(d)
        }
    });
    assert_eq!(docs.len(), 1, "{docs:?}");
    let d = &docs[0];
    let web = web_pod_name(c);
    assert_eq!(d["host"]["name"], NODE_NAME, "{d}");
    assert_eq!(d["orchestrator"]["resource"]["name"], web.as_str(), "{d}");
    assert_eq!(d["orchestrator"]["namespace"], "shop", "{d}");
    assert_eq!(d["container"]["name"], "web", "{d}");
    assert_eq!(
        d["container"]["image"]["name"], "localhost/mamori-k8s/busybox",
        "{d}"
    );
    let labels = d["orchestrator"]["resource"]["label"].to_string();
    assert!(
        labels.contains("app:web") && labels.contains("tier:front"),
        "{d}"
    );
}

#[test]
fn a_rollout_restart_while_elasticsearch_is_down_loses_nothing() {
    let c = cluster();
    let es = elastic(c);
    let url = es.query_url();
    es.stop();
    let before = format!("mamori-k8s-before-restart-{}", std::process::id());
    raise(c, &before);
    // Raised (the agent printed it) while the node is down.
    printed(c, &before);
    let old = pod(c)["metadata"]["name"].as_str().unwrap().to_owned();
    c.kubectl(&["-n", "mamori", "rollout", "restart", "ds/mamori"]);
    c.kubectl(&[
        "-n",
        "mamori",
        "rollout",
        "status",
        "ds/mamori",
        "--timeout=180s",
    ]);
    let new = pod(c)["metadata"]["name"].as_str().unwrap().to_owned();
    assert_ne!(old, new, "a new pod");
    let after = format!("mamori-k8s-after-restart-{}", std::process::id());
    raise(c, &after);
    printed(c, &after);
    es.restart();
    let url2 = es.query_url();
    assert_eq!(url, url2);
    wait_for(
        "both alerts, once each, after the node is back",
        120,
        || {
            let n: Vec<u64> = [&before, &after]
                .iter()
                .map(|m| count(&url, INDEX, by_marker(m)))
                .collect();
            if n == [1, 1] {
                Ok(())
            } else {
                Err(format!("counts {n:?}"))
            }
        },
    );
    // And no more arrive later (nothing delivered twice).
    std::thread::sleep(std::time::Duration::from_secs(5));
    for m in [&before, &after] {
        assert_eq!(count(&url, INDEX, by_marker(m)), 1, "{m}");
    }
}
