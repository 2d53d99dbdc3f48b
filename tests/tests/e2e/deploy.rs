//! The Helm chart and the plain manifests rendered from it: `helm lint`,
//! the manifests identical to what the chart renders, both valid against
//! Kubernetes' own schemas (`kubernetes-validate --strict`, installed by
//! `cargo xtask setup`) with the chart's options on and off, the config in
//! their ConfigMap accepted by `mamori config check`, and the DaemonSet
//! wired to what the agent needs. The `kubernetes` test binary runs them
//! on a real node.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use mamori_e2e::sibling_binary;
use serde_json::Value;

const VALIDATOR: &str = "/var/lib/mamori-tools/venv/bin/kubernetes-validate";
/// Built by `cargo xtask test` (`cargo xtask k8s build`).
const HELM: &str = "/var/lib/mamori-tools/bin/helm";
/// The oldest Kubernetes the manifests promise to work with.
const KUBERNETES: &str = "1.30.0";

fn manifests() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes")
}

fn chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/helm/mamori")
}

/// `helm ARGS`, which must succeed; its stdout.
fn helm(args: &[&str]) -> String {
    let out = Command::new(HELM)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{HELM}: {e} (cargo xtask k8s build installs it)"));
    assert!(
        out.status.success(),
        "helm {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The chart rendered as release `mamori` in namespace `mamori`, with
/// `--set` values.
fn render(sets: &[&str]) -> String {
    let chart = chart();
    let mut args = vec![
        "template",
        "mamori",
        chart.to_str().unwrap(),
        "--namespace",
        "mamori",
    ];
    for s in sets {
        args.extend(["--set", s]);
    }
    helm(&args)
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    v.sort();
    v
}

fn validate(files: &[PathBuf]) -> std::process::Output {
    Command::new(VALIDATOR)
        .args(["--strict", "--no-warn", "-k", KUBERNETES])
        .args(files)
        .output()
        .expect("kubernetes-validate is installed by cargo xtask setup")
}

/// Every document of every manifest, parsed.
fn documents() -> Vec<Value> {
    yaml_files(&manifests())
        .iter()
        .flat_map(|f| {
            let text = fs::read_to_string(f).unwrap();
            parse_all(&text)
        })
        .collect()
}

/// The documents of a multi-document YAML text (empty ones left out).
fn parse_all(text: &str) -> Vec<Value> {
    text.split("\n---\n")
        .map(|d| d.trim_start_matches("---\n"))
        .map(|d| serde_saphyr::from_str::<Value>(d).unwrap())
        .filter(|d| !d.is_null())
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

#[test]
fn the_manifests_pass_kubernetes_schemas_strictly() {
    let files = yaml_files(&manifests());
    assert!(files.len() >= 3, "{files:?}");
    let out = validate(&files);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The validator does refuse a broken DaemonSet (so the pass above means
    // something): a misspelt field and a wrong type.
    let dir = std::env::temp_dir().join(format!("mamori-deploy-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let ds = fs::read_to_string(manifests().join("mamori.yaml")).unwrap();
    for (from, to) in [
        ("hostPID: true", "hostPID: \"yes\""),
        ("priorityClassName:", "priorityClasName:"),
    ] {
        let broken = dir.join("daemonset.yaml");
        fs::write(&broken, ds.replace(from, to)).unwrap();
        assert!(!validate(&[broken]).status.success(), "{to} passed");
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn the_configmap_config_and_rules_pass_config_check() {
    let docs = documents();
    let config = find(&docs, "ConfigMap", "mamori-config")["data"]["mamori.yaml"]
        .as_str()
        .unwrap()
        .to_owned();
    let local_rules = find(&docs, "ConfigMap", "mamori-rules")["data"]["local_rules.yaml"]
        .as_str()
        .unwrap()
        .to_owned();
    let dir = std::env::temp_dir().join(format!("mamori-deploy-cfg-{}", std::process::id()));
    let rules_d = dir.join("rules.d");
    fs::create_dir_all(&rules_d).unwrap();
    fs::write(dir.join("mamori.yaml"), config).unwrap();
    fs::write(rules_d.join("local_rules.yaml"), local_rules).unwrap();
    let ca = find(&docs, "Secret", "mamori-elasticsearch")["stringData"]["ca.pem"]
        .as_str()
        .unwrap()
        .to_owned();
    fs::write(dir.join("ca.pem"), ca).unwrap();
    // The paths inside the image and the pod, mapped to this checkout.
    let default_rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/mamori_rules.yaml");
    let out = Command::new(sibling_binary("mamori"))
        // The Secret's value, as the DaemonSet passes it.
        .env("MAMORI_ES_PASSWORD", "from-the-secret")
        .args(["config", "check", "-c"])
        .arg(dir.join("mamori.yaml"))
        .arg("-o")
        .arg(format!(
            "rules=[{}, {}]",
            default_rules.display(),
            rules_d.display()
        ))
        .arg("-o")
        .arg(format!("rules_configmap.directory={}", rules_d.display()))
        .arg("-o")
        .arg(format!(
            "outputs.elasticsearch.ca_file={}",
            dir.join("ca.pem").display()
        ))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("elasticsearch https://elasticsearch.logging.svc:9200/"),
        "{stdout}"
    );
    assert!(stdout.contains("0 error(s)"), "{stdout}");
    assert!(
        stdout.contains("rules ConfigMap: mamori/mamori-rules through the Kubernetes API"),
        "{stdout}"
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn the_daemonset_gives_the_agent_what_it_needs() {
    let docs = documents();
    let ds = find(&docs, "DaemonSet", "mamori");
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["priorityClassName"], "system-node-critical");
    assert_eq!(pod["hostPID"], true);
    assert_eq!(pod["hostNetwork"], true);
    assert!(
        pod["tolerations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["operator"] == "Exists" && t.get("key").is_none()),
        "tolerates every taint"
    );
    let c = &pod["containers"][0];
    let caps: Vec<&str> = c["securityContext"]["capabilities"]["add"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for needed in ["BPF", "PERFMON", "SYS_PTRACE"] {
        assert!(caps.contains(&needed), "{needed} missing from {caps:?}");
    }
    assert_eq!(c["securityContext"]["privileged"], false);
    let env = |name: &str| {
        c["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no env {name}"))
    };
    assert_eq!(
        env("MAMORI_HOSTNAME")["valueFrom"]["fieldRef"]["fieldPath"],
        "spec.nodeName"
    );
    assert_eq!(env("MAMORI_HOST_ROOT")["value"], "/host");
    // Probes on the agent's own endpoints, on the port its config serves.
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["ports"][0]["containerPort"], 8765);
    let config: Value = serde_saphyr::from_str(
        find(&docs, "ConfigMap", "mamori-config")["data"]["mamori.yaml"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(config["health_addr"], "0.0.0.0:8765");
    // The spool survives restarts: a hostPath at the configured directory.
    let spool_dir = config["outputs"]["elasticsearch"]["spool_dir"]
        .as_str()
        .unwrap();
    let mount = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == spool_dir)
        .expect("the spool directory is mounted");
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap();
    assert!(volume["hostPath"]["path"].is_string(), "{volume}");
    assert_eq!(c["args"][0], "run");
}

#[test]
fn the_chart_passes_helm_lint_and_the_manifests_are_what_it_renders() {
    helm(&["lint", "--strict", chart().to_str().unwrap()]);
    let file = fs::read_to_string(manifests().join("mamori.yaml")).unwrap();
    let (header, body) = file.split_at(file.find("---").unwrap());
    assert!(header.contains("cargo xtask k8s manifests"), "{header}");
    assert!(
        body == render(&[]),
        "deploy/kubernetes/mamori.yaml differs from what the chart renders: \
         run `cargo xtask k8s manifests` and commit the result"
    );
}

/// Every option the README names renders something Kubernetes accepts,
/// and does what it says.
#[test]
fn the_charts_options_render_valid_manifests() {
    let dir = std::env::temp_dir().join(format!("mamori-chart-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let variants: &[(&str, &[&str])] = &[
        ("privileged", &["privileged=true"]),
        (
            "rules-configmap",
            &["rules.existingConfigMap=site-rules", "rules.default=false"],
        ),
        (
            "outputs",
            &[
                "elasticsearch.enabled=false",
                "metrics.serviceMonitor.enabled=true",
                "metrics.prometheusRule.enabled=true",
                "metrics.service.enabled=false",
                "outputs.alertmanager.url=http://alertmanager-operated.monitoring:9093",
                "outputs.alertmanager.labels.cluster=prod",
                "outputs.alertmanager.kibanaUrl=https://kibana.example:5601",
                "outputs.http.url=http://falcosidekick:2801/",
                "rules.watchConfigMap=false",
            ],
        ),
        (
            "placement",
            &[
                "image.repository=registry.example/sec/mamori",
                "image.tag=9.9.9",
                "nodeSelector.kubernetes\\.io/os=linux",
                "priorityClassName=",
                "resources.limits.memory=1Gi",
                "elasticsearch.caKey=",
                "elasticsearch.existingSecret=es-creds",
            ],
        ),
    ];
    let mut rendered = std::collections::HashMap::new();
    for (name, sets) in variants {
        let text = render(sets);
        // The validator knows no ServiceMonitor or PrometheusRule (CRDs):
        // checked below.
        let docs: Vec<Value> = parse_all(&text);
        let known: Vec<String> = text
            .split("\n---\n")
            .filter(|d| !d.contains("kind: ServiceMonitor") && !d.contains("kind: PrometheusRule"))
            .map(str::to_owned)
            .collect();
        let file = dir.join(format!("{name}.yaml"));
        fs::write(&file, known.join("\n---\n")).unwrap();
        let out = validate(&[file]);
        assert!(
            out.status.success(),
            "{name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        rendered.insert(*name, docs);
    }
    let _ = fs::remove_dir_all(&dir);
    let container = |docs: &[Value]| {
        find(docs, "DaemonSet", "mamori")["spec"]["template"]["spec"]["containers"][0].clone()
    };

    let c = container(&rendered["privileged"]);
    assert_eq!(c["securityContext"]["privileged"], true);
    assert!(c["securityContext"].get("capabilities").is_none());

    let docs = &rendered["rules-configmap"];
    assert!(
        !docs.iter().any(|d| d["metadata"]["name"] == "mamori-rules"),
        "no rules ConfigMap of its own"
    );
    let ds = find(docs, "DaemonSet", "mamori");
    assert!(ds.to_string().contains("\"site-rules\""), "{ds}");
    let config = find(docs, "ConfigMap", "mamori-config")["data"]["mamori.yaml"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!config.contains("mamori_rules.yaml"), "{config}");
    // The agents watch that ConfigMap through the API, allowed to read it
    // and nothing else.
    assert!(config.contains("name: site-rules"), "{config}");
    assert_eq!(
        ds["spec"]["template"]["spec"]["automountServiceAccountToken"],
        true
    );
    let role = find(docs, "Role", "mamori-rules-reader");
    assert_eq!(
        role["rules"],
        serde_json::json!([{
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["site-rules"],
            "verbs": ["get", "list", "watch"],
        }])
    );
    let binding = find(docs, "RoleBinding", "mamori-rules-reader");
    assert_eq!(binding["subjects"][0]["name"], "mamori");
    assert_eq!(binding["roleRef"]["name"], "mamori-rules-reader");

    let docs = &rendered["outputs"];
    let config = find(docs, "ConfigMap", "mamori-config")["data"]["mamori.yaml"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!config.contains("elasticsearch"), "{config}");
    // watchConfigMap false: no token, no RBAC.
    assert!(!config.contains("rules_configmap"), "{config}");
    let ds = find(docs, "DaemonSet", "mamori");
    assert_eq!(
        ds["spec"]["template"]["spec"]["automountServiceAccountToken"],
        false
    );
    assert!(
        !docs
            .iter()
            .any(|d| d["kind"] == "Role" || d["kind"] == "RoleBinding"),
        "no RBAC"
    );
    // The paging outputs, as the agent reads them.
    let dir = std::env::temp_dir().join(format!("mamori-chart-out-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("mamori.yaml"), &config).unwrap();
    let out = Command::new(sibling_binary("mamori"))
        .args(["config", "check", "-c"])
        .arg(dir.join("mamori.yaml"))
        .args(["-o", "rules=[]"])
        .output()
        .unwrap();
    let _ = fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{config}\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(
            "alertmanager http://alertmanager-operated.monitoring:9093/api/v2/alerts (min priority Warning)"
        ) && stdout.contains("http http://falcosidekick:2801/ (min priority Debug, 1 per request)"),
        "{stdout}"
    );
    assert!(
        config.contains("labels: {\"cluster\":\"prod\"}"),
        "{config}"
    );
    assert!(
        config.contains("kibana_url: https://kibana.example:5601"),
        "{config}"
    );
    let monitor = find(docs, "ServiceMonitor", "mamori");
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
    // The PrometheusRule carries the shipped rules (promtool-tested in
    // metrics.rs), from the chart's copy, which must equal them.
    let shipped =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus/mamori-alerts.yaml");
    let shipped = fs::read_to_string(shipped).unwrap();
    assert_eq!(
        fs::read_to_string(chart().join("files/mamori-alerts.yaml")).unwrap(),
        shipped,
        "deploy/helm/mamori/files/mamori-alerts.yaml differs from deploy/prometheus/mamori-alerts.yaml: copy it"
    );
    let rules: Value = serde_saphyr::from_str(&shipped).unwrap();
    let prometheus_rule = find(docs, "PrometheusRule", "mamori");
    assert_eq!(prometheus_rule["spec"], rules);
    assert!(
        prometheus_rule["spec"]["groups"][0]["rules"]
            .as_array()
            .unwrap()
            .len()
            >= 9
    );
    // Another release's job is its Service's name.
    let chart_dir = chart();
    let other = helm(&[
        "template",
        "probe",
        chart_dir.to_str().unwrap(),
        "--set",
        "metrics.prometheusRule.enabled=true",
        "--show-only",
        "templates/prometheusrule.yaml",
    ]);
    assert!(other.contains("up{job=\"probe-mamori\"}"), "{other}");
    assert!(!docs.iter().any(|d| d["kind"] == "Service"));
    assert!(!container(docs).to_string().contains("spool"));

    let docs = &rendered["placement"];
    let c = container(docs);
    assert_eq!(c["image"], "registry.example/sec/mamori:9.9.9");
    assert_eq!(c["resources"]["limits"]["memory"], "1Gi");
    let pod = &find(docs, "DaemonSet", "mamori")["spec"]["template"]["spec"];
    assert_eq!(pod["nodeSelector"]["kubernetes.io/os"], "linux");
    assert!(pod.get("priorityClassName").is_none());
    assert!(!pod.to_string().contains("es-secret"), "no CA mounted");
    assert!(c.to_string().contains("\"es-creds\""), "{c}");
}
