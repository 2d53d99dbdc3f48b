//! Editing the rules ConfigMap reaches the running agent without a
//! restart, within seconds: the agent watches the ConfigMap through the
//! API (the chart's default `rules.watchConfigMap`), rather than waiting
//! for the kubelet to swap the mounted files on its next sync of the pod
//! (1 to 1.5 minutes). A broken edit keeps the running rules and shows in
//! the pod's log and metrics.

use std::time::Instant;

use mamori_e2e::k8s::wait_for;

use crate::{
    agent::{alerts, cluster, logs, metric, pod},
    workload::sh_in_web,
};

fn rules_configmap(rules: &str) -> String {
    let indented: String = rules.lines().map(|l| format!("    {l}\n")).collect();
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: mamori-rules, namespace: mamori}}\n\
         data:\n  local_rules.yaml: |\n{indented}"
    )
}

fn probe_rule(path: &str) -> String {
    format!(
        "- rule: Kubernetes reload probe\n  desc: opened by the reload test\n  \
         condition: evt.type in (open, openat, openat2) and fd.name = {path}\n  \
         output: probe file %fd.name opened by %proc.name\n  priority: WARNING\n"
    )
}

/// Opens the probe file in the web pod (every time: `touch` of an existing
/// file only sets its times).
fn open_probe(c: &mamori_e2e::k8s::Cluster, path: &str) {
    sh_in_web(c, &format!(": > {path}"));
}

#[test]
fn a_rules_configmap_edit_reaches_the_running_agent_and_a_broken_one_is_refused() {
    let c = cluster();
    let restarts = |c| pod(c)["status"]["containerStatuses"][0]["restartCount"].clone();
    let restarts_before = restarts(c);
    let path = format!("/tmp/mamori-reload-{}", std::process::id());

    let edited = Instant::now();
    c.apply(&rules_configmap(&probe_rule(&path)));
    wait_for("the edited rules to fire", 60, || {
        open_probe(c, &path);
        let fired = alerts(c).into_iter().any(|a| {
            a["rule"] == "Kubernetes reload probe" && a["output_fields"]["fd.name"] == path.as_str()
        });
        if fired {
            Ok(())
        } else {
            Err(logs(c).lines().rev().take(5).collect::<Vec<_>>().join("\n"))
        }
    });
    let took = edited.elapsed().as_secs_f64();
    println!("a rules ConfigMap edit fired {took:.1} s after kubectl apply");
    let log = logs(c);
    assert!(
        log.contains("rules reloaded") && log.contains("rules ConfigMap changed (resourceVersion"),
        "the reload came from the API's report of the ConfigMap:\n{log}"
    );
    assert_eq!(
        metric(c, "mamori_rules_api_errors_total"),
        0.0,
        "the API was read without an error"
    );

    // A broken edit: the agent says where, counts it, and keeps the probe.
    let failures = metric(c, "mamori_rules_reload_failures_total");
    let broken = format!(
        "{}  condition: evt.type = open and not_a_field = 1\n",
        probe_rule(&path).replace("  condition:", "  old_condition:")
    );
    c.apply(&rules_configmap(&broken));
    wait_for("the broken edit to be refused", 60, || {
        let now = metric(c, "mamori_rules_reload_failures_total");
        if now > failures {
            Ok(())
        } else {
            Err(format!("reload failures still {now}"))
        }
    });
    let log = logs(c);
    let at = log
        .rfind("rules reload failed")
        .unwrap_or_else(|| panic!("no reload failure logged:\n{log}"));
    let refused: String = log[at..].lines().take(4).collect::<Vec<_>>().join("\n");
    assert!(
        refused.contains("/etc/mamori/rules.d/local_rules.yaml:6:")
            && refused.contains("not_a_field"),
        "names the file, line and field: {refused}"
    );
    // The running rules stay: the probe still fires, with no restart.
    let probes = |c| {
        alerts(c)
            .into_iter()
            .filter(|a| {
                a["rule"] == "Kubernetes reload probe"
                    && a["output_fields"]["fd.name"] == path.as_str()
            })
            .count()
    };
    let before = probes(c);
    wait_for("the kept rules to fire again", 30, || {
        open_probe(c, &path);
        let n = probes(c);
        if n > before {
            Ok(())
        } else {
            Err(format!("{n} probe alerts, {before} before"))
        }
    });
    assert_eq!(restarts(c), restarts_before, "no restart");

    // Back to the rules the manifests ship.
    c.apply(&rules_configmap("[]"));
}
