//! `helm install` of the chart, as its README shows, with an inline rules
//! file: a second release beside the agent the other tests use (its own
//! namespace and health port), Ready within `--wait`, its inline rule
//! firing on the node, then uninstalled. It runs with
//! `rules.watchConfigMap: false`, the option with no API access: no token
//! in the pod and no Role.

use std::path::Path;

use mamori_e2e::k8s::wait_for;
use serde_json::Value;

use crate::{
    agent::cluster,
    workload::{sh_in_web, web_pod_name},
};

#[test]
fn helm_install_with_an_inline_rule_runs_and_alerts() {
    let c = cluster();
    let chart = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/helm/mamori"
    ));
    let path = format!("/tmp/mamori-helm-inline-{}", std::process::id());
    let rule = format!(
        "- rule: Helm inline probe\n  desc: the chart's inline rules\n  \
         condition: evt.type in (open, openat, openat2) and fd.name = {path}\n  \
         output: inline probe %fd.name in %k8s.pod.name\n  priority: WARNING\n"
    );
    let values =
        std::env::temp_dir().join(format!("mamori-helm-values-{}.yaml", std::process::id()));
    let indented: String = rule.lines().map(|l| format!("      {l}\n")).collect();
    std::fs::write(
        &values,
        format!("rules:\n  watchConfigMap: false\n  custom:\n    probe.yaml: |\n{indented}elasticsearch:\n  enabled: false\nport: 8766\n"),
    )
    .unwrap();
    let _ = c.try_kubectl(&["delete", "namespace", "mamori-helm", "--wait=true"], None);
    c.helm(&[
        "install",
        "probe",
        chart.to_str().unwrap(),
        "--namespace",
        "mamori-helm",
        "--create-namespace",
        "--values",
        values.to_str().unwrap(),
        "--wait",
        "--timeout",
        "180s",
    ]);
    let web = web_pod_name(c);
    let fired = wait_for("the inline rule to fire", 60, || {
        sh_in_web(c, &format!(": > {path}"));
        let logs = c.kubectl(&["-n", "mamori-helm", "logs", "ds/probe-mamori"]);
        logs.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|a| a["rule"] == "Helm inline probe")
            .ok_or_else(|| logs.lines().rev().take(3).collect::<Vec<_>>().join("\n"))
    });
    assert_eq!(fired["output_fields"]["fd.name"], path.as_str());
    assert_eq!(fired["output_fields"]["k8s.pod.name"], web.as_str());
    // No API access: no Role, no token in the pod, no watch started.
    let roles = c.kubectl(&[
        "-n",
        "mamori-helm",
        "get",
        "roles,rolebindings",
        "-o",
        "name",
    ]);
    assert_eq!(roles.trim(), "", "no RBAC with watchConfigMap false");
    let pods: Value = serde_json::from_str(&c.kubectl(&[
        "-n",
        "mamori-helm",
        "get",
        "pods",
        "-l",
        "app.kubernetes.io/instance=probe",
        "-o",
        "json",
    ]))
    .unwrap();
    let pod = &pods["items"][0];
    assert_eq!(pod["spec"]["automountServiceAccountToken"], false);
    let mounts = pod["spec"]["containers"][0]["volumeMounts"].to_string();
    assert!(
        !mounts.contains("serviceaccount"),
        "no token mounted: {mounts}"
    );
    let logs = c.kubectl(&["-n", "mamori-helm", "logs", "ds/probe-mamori"]);
    assert!(!logs.contains("rules_configmap"), "no watch: {logs}");
    c.helm(&["uninstall", "probe", "--namespace", "mamori-helm", "--wait"]);
    c.kubectl(&["delete", "namespace", "mamori-helm"]);
    let _ = std::fs::remove_file(values);
}
