//! A workload pod (Deployment `web` in namespace `shop`, labels
//! `app=web,tier=front`) does what the default rules detect, through
//! `kubectl exec -it` as an intruder with cluster credentials would: a
//! shell at a terminal, its service-account token read, a write to
//! /etc/passwd. The alerts name the pod as the API server does.

use std::sync::OnceLock;

use mamori_e2e::k8s::{Cluster, NODE_NAME, wait_for};
use serde_json::Value;

use crate::agent::{alerts, cluster};

pub const IMAGE: &str = "localhost/mamori-k8s/busybox:1.0";

const DEPLOYMENT: &str = r#"apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: web, tier: front}}
  template:
    metadata: {labels: {app: web, tier: front}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: web
          image: localhost/mamori-k8s/busybox:1.0
          imagePullPolicy: Never
          command: ["sleep", "1000000"]
"#;

/// The workload's running pod, as the API server reports it.
pub fn web_pod(c: &Cluster) -> &'static Value {
    static POD: OnceLock<Value> = OnceLock::new();
    POD.get_or_init(|| {
        c.apply(DEPLOYMENT);
        wait_for("the web pod to run", 120, || {
            let pods = c.json(&["-n", "shop", "get", "pods", "-l", "app=web"]);
            pods["items"]
                .as_array()
                .and_then(|items| {
                    items.iter().find(|p| {
                        p["metadata"]["deletionTimestamp"].is_null()
                            && p["status"]["containerStatuses"][0]["ready"] == true
                    })
                })
                .cloned()
                .ok_or_else(|| pods.to_string())
        })
    })
}

pub fn web_pod_name(c: &Cluster) -> String {
    web_pod(c)["metadata"]["name"].as_str().unwrap().to_owned()
}

/// `sh -c SCRIPT` in the web pod (`kubectl exec`, no terminal), which
/// must succeed.
pub fn sh_in_web(c: &Cluster, script: &str) {
    let web = web_pod_name(c);
    c.kubectl(&["-n", "shop", "exec", &web, "--", "sh", "-c", script]);
}

/// `k8s.pod.labels` as mamori (and Falco) write them: `key:value`, by key.
fn labels_field(pod: &Value) -> String {
    let labels = pod["metadata"]["labels"].as_object().unwrap();
    let mut v: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}:{}", v.as_str().unwrap()))
        .collect();
    v.sort();
    v.join(",")
}

#[test]
fn a_workload_pods_attack_alerts_carry_its_kubernetes_identity() {
    let c = cluster();
    let pod = web_pod(c);
    let name = web_pod_name(c);
    let typed = c.exec_tty(
        "shop",
        &name,
        "tty\n\
         cat /var/run/secrets/kubernetes.io/serviceaccount/token > /dev/null\n\
         echo 'mallory:x:0:0::/:/bin/sh' >> /etc/passwd",
    );
    assert!(typed.contains("/dev/pts/"), "a terminal: {typed}");
    let wanted = [
        "Shell started in a container",
        "Kubernetes service account token read by a shell tool",
        "Account database modified",
    ];
    let found = wait_for("the three alerts from the web pod", 30, || {
        let mine: Vec<Value> = alerts(c)
            .into_iter()
            .filter(|a| a["output_fields"]["k8s.pod.name"] == name.as_str())
            .collect();
        let missing: Vec<&&str> = wanted
            .iter()
            .filter(|w| !mine.iter().any(|a| a["rule"] == **w))
            .collect();
        if missing.is_empty() {
            Ok(mine)
        } else {
            Err(format!("missing {missing:?}; the pod's alerts: {mine:?}"))
        }
    });
    let (repository, tag) = IMAGE.rsplit_once(':').unwrap();
    for rule in wanted {
        let a = found.iter().find(|a| a["rule"] == rule).unwrap();
        let f = &a["output_fields"];
        assert_eq!(a["hostname"], NODE_NAME, "{a}");
        assert_eq!(f["k8s.ns.name"], "shop", "{a}");
        assert_eq!(f["k8s.pod.labels"], labels_field(pod).as_str(), "{a}");
        assert_eq!(f["container.name"], "web", "{a}");
        assert_eq!(f["container.image.repository"], repository, "{a}");
        assert_eq!(f["container.image.tag"], tag, "{a}");
        let id = pod["status"]["containerStatuses"][0]["containerID"]
            .as_str()
            .unwrap()
            .trim_start_matches("containerd://");
        assert!(
            id.starts_with(f["container.id"].as_str().unwrap()),
            "{a} vs {id}"
        );
    }
    // The shell ran at the terminal kubectl gave it.
    let shells: Vec<&Value> = found
        .iter()
        .filter(|a| a["rule"] == wanted[0] && a["output_fields"]["proc.name"] == "sh")
        .collect();
    assert!(
        shells.iter().any(|a| a["output_fields"]["proc.tty"]
            .as_u64()
            .is_some_and(|t| t != 0)),
        "no shell at a terminal: {shells:?}"
    );
}
