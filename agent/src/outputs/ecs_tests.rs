use super::*;
use crate::alert::FieldValue as F;

fn identity() -> Identity {
    Identity {
        host_name: "node-1".into(),
        host_id: "0123456789abcdef0123456789abcdef".into(),
        boot_id: "b0".into(),
        architecture: "x86_64".into(),
        kernel: "6.18.0".into(),
        os_id: "debian".into(),
        os_name: "Debian GNU/Linux".into(),
        os_version: "12".into(),
        agent_id: "a1".into(),
        agent_ephemeral_id: "e1".into(),
        agent_version: "0.1.0".into(),
    }
}

fn mapper() -> EcsMapper {
    EcsMapper {
        identity: identity(),
        namespace: "prod".into(),
    }
}

fn s(v: &str) -> F {
    F::Str(v.into())
}

fn alert(context: Vec<(&'static str, F)>) -> Alert {
    Alert {
        time_ns: 1_795_606_870_371_008_876,
        rule: "Shell in container".into(),
        description: "A shell ran in a container.".into(),
        ruleset: "mamori_rules.yaml".into(),
        priority: Priority::Warning,
        source: Source::Syscall,
        tags: vec![
            "container".into(),
            "T1059.004".into(),
            "mitre_execution".into(),
        ],
        message: "shell bash in web\n(FAKE)".into(),
        output_fields: vec![
            ("proc.name".into(), s("bash")),
            ("proc.pid".into(), F::Int(42)),
            ("proc.pid.ts".into(), F::Int(7)),
            ("container.name".into(), F::Missing),
        ],
        hostname: "node-1".into(),
        event: None,
        context,
    }
}

fn exec_context() -> Vec<(&'static str, F)> {
    vec![
        ("evt.type", s("execve")),
        ("evt.rawres", F::Int(0)),
        ("proc.pid", F::Int(4242)),
        ("proc.vpid", F::Int(17)),
        ("thread.tid", F::Int(4242)),
        ("proc.name", s("bash")),
        ("proc.exepath", s("/usr/bin/bash")),
        ("proc.cmdline", s("bash -i")),
        ("proc.cwd", s("/srv")),
        ("proc.tty", F::Int(34816)),
        ("proc.pid.ts", F::Int(1_795_606_870_000_000_000)),
        ("proc.ppid", F::Int(4200)),
        ("proc.pname", s("nginx")),
        ("proc.pexepath", s("/usr/sbin/nginx")),
        ("proc.pcmdline", s("nginx -g daemon off;")),
        ("proc.ppid.ts", F::Int(1_795_606_000_000_000_000)),
        ("user.uid", F::Int(0)),
        ("user.name", s("root")),
        ("group.gid", F::Int(0)),
        ("group.name", s("root")),
        ("container.id", s("3f2a1b4c5d6e")),
        ("container.name", s("web")),
        ("container.type", s("containerd")),
        ("container.image.repository", s("docker.io/library/nginx")),
        ("container.image.tag", s("1.27")),
        ("container.privileged", F::Bool(false)),
        ("k8s.ns.name", s("shop")),
        ("k8s.pod.name", s("web-7d9f")),
        ("k8s.pod.uid", s("9c1e")),
        ("k8s.pod.labels", s("app:web,tier:front")),
        (ARGV, F::List(vec!["bash".into(), "-i".into()])),
    ]
}

#[test]
fn exec_in_a_pod_maps_to_ecs() {
    let (id, d) = mapper().document(&alert(exec_context()), 1_795_606_870_400_000_000);
    assert_eq!(id.len(), 32);
    assert_eq!(d["event"]["id"], id.as_str());
    assert_eq!(d["@timestamp"], "2026-11-25T11:41:10.371008876Z");
    assert_eq!(d["message"], "shell bash in web\\n(FAKE)");
    assert_eq!(d["ecs"]["version"], "8.17.0");
    assert_eq!(d["event"]["kind"], "alert");
    assert_eq!(
        d["event"]["category"],
        json!(["process", "intrusion_detection"])
    );
    assert_eq!(d["event"]["type"], json!(["start"]));
    assert_eq!(d["event"]["action"], "execve");
    assert_eq!(d["event"]["outcome"], "success");
    assert_eq!(d["event"]["severity"], 47);
    assert_eq!(d["event"]["risk_score"], 47);
    assert_eq!(d["event"]["ingested"], "1970-01-01T00:00:00.000Z");
    assert_eq!(d["event"]["created"], "2026-11-25T11:41:10.400000000Z");
    assert_eq!(d["rule"]["name"], "Shell in container");
    assert_eq!(d["rule"]["description"], "A shell ran in a container.");
    assert_eq!(d["rule"]["ruleset"], "mamori_rules.yaml");
    assert_eq!(
        d["data_stream"],
        json!({"type": "logs", "dataset": "mamori.alerts", "namespace": "prod"})
    );
    assert_eq!(d["host"]["name"], "node-1");
    assert_eq!(d["host"]["os"]["kernel"], "6.18.0");
    assert_eq!(d["agent"]["type"], "mamori");

    let p = &d["process"];
    assert_eq!(p["pid"], 4242);
    assert_eq!(p["vpid"], 17);
    assert_eq!(p["executable"], "/usr/bin/bash");
    assert_eq!(p["args"], json!(["bash", "-i"]));
    assert_eq!(p["args_count"], 2);
    assert_eq!(p["command_line"], "bash -i");
    assert_eq!(p["working_directory"], "/srv");
    assert_eq!(p["interactive"], true);
    assert_eq!(p["user"], json!({"id": "0", "name": "root"}));
    assert_eq!(p["parent"]["pid"], 4200);
    assert_eq!(p["parent"]["name"], "nginx");
    assert_eq!(p["parent"]["executable"], "/usr/sbin/nginx");
    assert_eq!(p["entity_id"].as_str().unwrap().len(), 32);
    assert_ne!(p["entity_id"], p["parent"]["entity_id"]);
    assert_eq!(d["user"]["name"], "root");

    let c = &d["container"];
    assert_eq!(c["id"], "3f2a1b4c5d6e");
    assert_eq!(c["name"], "web");
    assert_eq!(c["runtime"], "containerd");
    assert_eq!(c["image"]["name"], "docker.io/library/nginx");
    assert_eq!(c["image"]["tag"], json!(["1.27"]));
    assert_eq!(c["security_context"]["privileged"], false);
    let o = &d["orchestrator"];
    assert_eq!(o["type"], "kubernetes");
    assert_eq!(o["namespace"], "shop");
    assert_eq!(o["resource"]["name"], "web-7d9f");
    assert_eq!(o["resource"]["id"], "9c1e");
    assert_eq!(o["resource"]["label"], json!(["app:web", "tier:front"]));

    let t = &d["threat"];
    assert_eq!(t["framework"], "MITRE ATT&CK");
    assert_eq!(t["technique"]["id"], json!(["T1059"]));
    assert_eq!(
        t["technique"]["name"],
        json!(["Command and Scripting Interpreter"])
    );
    assert_eq!(t["technique"]["subtechnique"]["id"], json!(["T1059.004"]));
    assert_eq!(t["tactic"]["id"], json!(["TA0002"]));

    // The rule's fields stay together under mamori, dotted names intact.
    let f = &d["mamori"]["output_fields"];
    assert_eq!(f["proc.pid"], 42);
    assert_eq!(f["proc.pid.ts"], 7);
    assert!(f["container.name"].is_null());
    assert!(d.get("proc").is_none() && d.get("proc.name").is_none());
}

#[test]
fn ids_are_stable_per_alert_and_differ_per_rule() {
    let m = mapper();
    let a = alert(exec_context());
    let (id1, _) = m.document(&a, 1);
    let (id2, _) = m.document(&a, 2);
    assert_eq!(
        id1, id2,
        "the id does not depend on when the document is built"
    );
    let mut b = alert(exec_context());
    b.rule = "Another rule".into();
    assert_ne!(m.document(&b, 1).0, id1);
    let mut c = alert(exec_context());
    c.time_ns += 1;
    assert_ne!(m.document(&c, 1).0, id1);
}

#[test]
fn host_processes_have_no_container_block() {
    let mut ctx = exec_context();
    ctx.retain(|(n, _)| !n.starts_with("container.") && !n.starts_with("k8s."));
    ctx.push(("container.id", s("host")));
    let (_, d) = mapper().document(&alert(ctx), 1);
    assert!(d.get("container").is_none());
    assert!(d.get("orchestrator").is_none());
}

#[test]
fn file_and_network_events() {
    let (_, d) = mapper().document(
        &alert(vec![
            ("evt.type", s("openat")),
            ("evt.rawres", F::Int(-13)),
            ("evt.is_open_create", F::Bool(false)),
            ("fd.typechar", s("f")),
            ("fd.name", s("/etc/shadow")),
            ("fd.directory", s("/etc")),
            ("fd.filename", s("shadow")),
            ("fd.ino", F::Int(1234)),
        ]),
        1,
    );
    assert_eq!(
        d["event"]["category"],
        json!(["file", "intrusion_detection"])
    );
    assert_eq!(d["event"]["type"], json!(["access"]));
    assert_eq!(d["event"]["outcome"], "failure");
    assert_eq!(d["file"]["path"], "/etc/shadow");
    assert_eq!(d["file"]["directory"], "/etc");
    assert_eq!(d["file"]["name"], "shadow");
    assert_eq!(d["file"]["inode"], "1234");
    assert!(d["file"].get("extension").is_none());

    let (_, d) = mapper().document(
        &alert(vec![
            ("evt.type", s("unlinkat")),
            ("fs.path.name", s("/var/log/auth.log")),
        ]),
        1,
    );
    assert_eq!(d["event"]["type"], json!(["deletion"]));
    assert!(d["mamori"].get("io_uring_op").is_none());
    assert_eq!(d["file"]["name"], "auth.log");
    assert_eq!(d["file"]["extension"], "log");
    assert_eq!(d["file"]["directory"], "/var/log");

    let (_, d) = mapper().document(
        &alert(vec![
            ("evt.type", s("connect")),
            ("evt.rawres", F::Int(0)),
            ("fd.typechar", s("4")),
            ("fd.name", s("10.0.0.1:40000->10.0.0.2:443")),
            ("fd.l4proto", s("tcp")),
            ("fd.is_server", F::Bool(false)),
            ("fd.lip", s("10.0.0.1")),
            ("fd.lport", F::Int(40000)),
            ("fd.rip", s("10.0.0.2")),
            ("fd.rport", F::Int(443)),
        ]),
        1,
    );
    assert!(d.get("file").is_none(), "a socket is not a file");
    assert_eq!(
        d["event"]["category"],
        json!(["network", "intrusion_detection"])
    );
    assert_eq!(d["network"]["transport"], "tcp");
    assert_eq!(d["network"]["type"], "ipv4");
    assert_eq!(d["network"]["direction"], "egress");
    assert_eq!(d["source"]["ip"], "10.0.0.1");
    assert_eq!(d["source"]["port"], 40000);
    assert_eq!(d["destination"]["ip"], "10.0.0.2");
    assert_eq!(d["destination"]["port"], 443);
    assert_eq!(d["related"]["ip"], json!(["10.0.0.1", "10.0.0.2"]));
}

#[test]
fn an_act_through_io_uring_says_so() {
    let (_, d) = mapper().document(
        &alert(vec![
            ("evt.type", s("unlinkat")),
            ("evt.io_uring.op", s("IORING_OP_UNLINKAT")),
            ("fs.path.name", s("/var/log/auth.log")),
        ]),
        1,
    );
    assert_eq!(d["event"]["action"], "unlinkat");
    assert_eq!(d["event"]["type"], json!(["deletion"]));
    assert_eq!(d["mamori"]["io_uring_op"], "IORING_OP_UNLINKAT");
}

#[test]
fn severities_follow_kibanas_scale() {
    assert_eq!(severity(Priority::Emergency), 99);
    assert_eq!(severity(Priority::Critical), 99);
    assert_eq!(severity(Priority::Error), 73);
    assert_eq!(severity(Priority::Warning), 47);
    assert_eq!(severity(Priority::Notice), 21);
    assert_eq!(severity(Priority::Debug), 21);
}

#[test]
fn hostile_messages_stay_one_bounded_line() {
    let mut a = alert(Vec::new());
    a.message = format!("x\r\n\x1b[2J{}", "é".repeat(5000));
    let (_, d) = mapper().document(&a, 1);
    let m = d["message"].as_str().unwrap();
    assert!(!m.contains('\n') && !m.contains('\x1b'));
    assert!(m.len() <= MAX_MESSAGE + '…'.len_utf8());
    assert!(m.ends_with('…'));
    // The exact text is kept beside it.
    assert_eq!(d["mamori"]["output"], a.message.as_str());
}

#[test]
fn ingested_placeholder_has_the_value_length() {
    let doc = mapper().document(&alert(Vec::new()), 1).1.to_string();
    assert_eq!(doc.matches(INGESTED_PLACEHOLDER).count(), 1);
    assert_eq!(
        ingested_value(1_795_606_870_371_008_876),
        "\"ingested\":\"2026-11-25T11:41:10.371Z\""
    );
    assert_eq!(ingested_value(1).len(), INGESTED_PLACEHOLDER.len());
}

#[test]
fn internal_alerts_are_host_info() {
    let mut a = alert(Vec::new());
    a.source = Source::Internal;
    a.tags = vec!["mamori_internal".into()];
    let (_, d) = mapper().document(&a, 1);
    assert_eq!(d["event"]["category"], json!(["host"]));
    assert_eq!(d["event"]["provider"], "internal");
    assert_eq!(d["event"]["action"], "internal");
    assert!(d.get("process").is_none());
    assert!(d.get("threat").is_none());
}

/// A document with every block the mapper writes: exec in a pod, a file,
/// a connection, MITRE tags, and the fields of an internal alert.
pub fn full_document(m: &EcsMapper) -> Value {
    let mut ctx = exec_context();
    ctx.extend([
        ("evt.is_open_create", F::Bool(true)),
        ("fd.typechar", s("f")),
        ("fd.name", s("/etc/shadow.bak")),
        ("fd.directory", s("/etc")),
        ("fd.filename", s("shadow.bak")),
        ("fd.ino", F::Int(1)),
        ("fs.path.target", s("/tmp/x")),
        ("user.loginname", s("alice")),
        ("proc.sid", F::Int(1)),
        ("proc.vpgid", F::Int(1)),
        ("container.image.digest", s("sha256:00")),
    ]);
    let (_, mut d) = m.document(&alert(ctx), 1);
    let net = vec![
        ("evt.type", s("connect")),
        ("fd.l4proto", s("tcp")),
        ("fd.lip", s("10.0.0.1")),
        ("fd.lport", F::Int(1)),
        ("fd.rip", s("10.0.0.2")),
        ("fd.rport", F::Int(2)),
    ];
    let (_, n) = m.document(&alert(net), 1);
    for k in ["network", "source", "destination", "related"] {
        d[k] = n[k].clone();
    }
    d
}
