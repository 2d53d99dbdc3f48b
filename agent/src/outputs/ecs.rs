//! Alerts as Elastic Common Schema (ECS 8.17) documents, shaped so that
//! Kibana's Security app reads them without configuration: `event.kind:
//! alert`, `event.severity` on its 21/47/73/99 scale, `message` as the
//! alert title, MITRE ids under `threat.*`.
//!
//! Values come from the alert and its context (Falco field names, see
//! `detect::context`); the rule's own output fields go under
//! `mamori.output_fields`, a flattened object, never at the top level.
//! `event.ingested` holds a fixed-width placeholder that the Elasticsearch
//! sender overwrites at send time ([`INGESTED_PLACEHOLDER`]).

use serde_json::{Map, Value, json};

use super::{
    format::{escape_controls, json_value},
    identity::Identity,
    ids, mitre,
};
use crate::{
    alert::{ARGV, Alert, FieldValue, Priority, Source},
    time::rfc3339_nanos,
};

pub const ECS_VERSION: &str = "8.17.0";
/// `data_stream.dataset` and `event.dataset` of alerts.
pub const DATASET: &str = "mamori.alerts";

/// The `event.ingested` value written into documents; the sender replaces
/// its bytes with the send time (same length, see [`ingested_value`]).
pub const INGESTED_PLACEHOLDER: &str = "\"ingested\":\"1970-01-01T00:00:00.000Z\"";

/// `"ingested":"<time>"` for `ns`, the same length as the placeholder.
pub fn ingested_value(ns: u64) -> String {
    format!("\"ingested\":\"{}\"", rfc3339_millis(ns))
}

/// Longest `message`: a Kibana alert title, not a log.
const MAX_MESSAGE: usize = 2048;

/// Builds ECS documents for one agent.
#[derive(Clone, Debug)]
pub struct EcsMapper {
    pub identity: Identity,
    /// `data_stream.namespace`.
    pub namespace: String,
}

/// Kibana's severity scale: low 21, medium 47, high 73, critical 99.
pub fn severity(p: Priority) -> u8 {
    match p {
        Priority::Emergency | Priority::Alert | Priority::Critical => 99,
        Priority::Error => 73,
        Priority::Warning => 47,
        Priority::Notice | Priority::Informational | Priority::Debug => 21,
    }
}

impl EcsMapper {
    /// The document of `alert`, and its id (`event.id`, the `_id`).
    pub fn document(&self, alert: &Alert, created_ns: u64) -> (String, Value) {
        let id = ids::alert_id(alert, &self.identity.host_id, &self.identity.boot_id);
        let mut d = Doc::default();
        let ctx = |name: &str| alert.context(name);
        let evt_type = ctx("evt.type").and_then(as_str).unwrap_or("internal");

        d.put("@timestamp", rfc3339_nanos(alert.time_ns));
        d.put("message", message(&alert.message));
        d.put("tags", alert.tags.clone());
        d.put("ecs.version", ECS_VERSION);
        d.put(
            "data_stream",
            json!({"type": "logs", "dataset": DATASET, "namespace": self.namespace}),
        );

        let (category, kind) = classify(alert);
        d.put("event.kind", "alert");
        d.put("event.category", category);
        d.put("event.type", kind);
        d.put("event.action", evt_type);
        // The act came through an io_uring request, not the syscall named.
        if let Some(op) = ctx("evt.io_uring.op").and_then(as_str) {
            d.put("mamori.io_uring_op", op);
        }
        if let Some(ret) = ctx("evt.rawres").and_then(as_int) {
            d.put("event.outcome", if ret < 0 { "failure" } else { "success" });
        }
        let sev = severity(alert.priority);
        d.put("event.severity", sev);
        d.put("event.risk_score", sev);
        d.put("event.id", id.as_str());
        d.put("event.module", "mamori");
        d.put("event.dataset", DATASET);
        d.put("event.provider", alert.source.as_str());
        d.put("event.created", rfc3339_nanos(created_ns));
        d.put("event.ingested", "1970-01-01T00:00:00.000Z");
        d.put("event.reason", message(&alert.message));

        d.put("rule.name", alert.rule.as_str());
        d.put("rule.id", ids::rule_id(&alert.rule));
        d.put("rule.description", alert.description.as_str());
        d.put("rule.ruleset", alert.ruleset.as_str());
        d.put("rule.category", alert.priority.as_str());

        self.host_and_agent(&mut d);
        if alert.source == Source::Syscall {
            process(&mut d, alert);
            file(&mut d, alert);
            network(&mut d, alert);
            container(&mut d, alert);
        }
        threat(&mut d, &alert.tags);

        let mut fields = Map::new();
        for (name, value) in &alert.output_fields {
            fields.insert(name.clone(), json_value(value));
        }
        d.put("mamori.output_fields", Value::Object(fields));
        d.put("mamori.priority", alert.priority.as_str());
        d.put("mamori.time_ns", alert.time_ns);
        d.put("mamori.output", alert.message.as_str());
        (id, d.into_value())
    }

    fn host_and_agent(&self, d: &mut Doc) {
        let i = &self.identity;
        d.put("host.name", i.host_name.as_str());
        d.put("host.hostname", i.host_name.as_str());
        put_nonempty(d, "host.id", &i.host_id);
        put_nonempty(d, "host.boot.id", &i.boot_id);
        put_nonempty(d, "host.architecture", &i.architecture);
        d.put("host.os.type", "linux");
        put_nonempty(d, "host.os.kernel", &i.kernel);
        put_nonempty(d, "host.os.platform", &i.os_id);
        put_nonempty(d, "host.os.name", &i.os_name);
        put_nonempty(d, "host.os.version", &i.os_version);
        d.put("agent.type", "mamori");
        d.put("agent.name", i.host_name.as_str());
        put_nonempty(d, "agent.id", &i.agent_id);
        d.put("agent.ephemeral_id", i.agent_ephemeral_id.as_str());
        d.put("agent.version", i.agent_version.as_str());
        d.put("observer.type", "host");
        d.put("observer.vendor", "mamori");
        d.put("observer.product", "mamori");
        d.put("observer.hostname", i.host_name.as_str());
        d.put("related.hosts", vec![i.host_name.clone()]);
    }
}

/// ECS `event.category` and `event.type` for the event that alerted.
fn classify(alert: &Alert) -> (Vec<&'static str>, Vec<&'static str>) {
    if alert.source == Source::Internal {
        return (vec!["host"], vec!["info"]);
    }
    let ty = alert.context("evt.type").and_then(as_str).unwrap_or("");
    let flag = |name| matches!(alert.context(name), Some(FieldValue::Bool(true)));
    let (c, t): (&[&str], &[&str]) = match ty {
        "execve" | "execveat" | "clone" | "clone3" | "fork" | "vfork" => (&["process"], &["start"]),
        "procexit" => (&["process"], &["end"]),
        "kill" | "ptrace" => (&["process"], &["access"]),
        "setuid" | "setgid" | "setresuid" | "setresgid" | "capset" | "unshare" | "setns" => {
            (&["process"], &["change"])
        }
        "open" | "openat" | "openat2" | "creat" if flag("evt.is_open_create") => {
            (&["file"], &["creation"])
        }
        "open" | "openat" | "openat2" | "creat" | "memfd_create" => (&["file"], &["access"]),
        "unlink" | "unlinkat" | "rmdir" => (&["file"], &["deletion"]),
        "mkdir" | "mkdirat" | "link" | "linkat" | "symlink" | "symlinkat" => {
            (&["file"], &["creation"])
        }
        "rename" | "renameat" | "renameat2" | "chmod" | "fchmod" | "fchmodat" => {
            (&["file"], &["change"])
        }
        "mount" | "umount2" => (&["file", "configuration"], &["change"]),
        "connect" => (&["network"], &["connection", "start"]),
        "accept" | "accept4" => (&["network"], &["connection", "allowed"]),
        "bind" | "listen" => (&["network"], &["start"]),
        "socket" | "sendto" | "recvfrom" | "sendmsg" | "recvmsg" => (&["network"], &["protocol"]),
        "init_module" | "finit_module" => (&["driver"], &["start"]),
        "bpf" | "userfaultfd" => (&["process"], &["info"]),
        _ => (&["host"], &["info"]),
    };
    let mut category = c.to_vec();
    category.push("intrusion_detection");
    (category, t.to_vec())
}

fn process(d: &mut Doc, alert: &Alert) {
    let ctx = |name: &str| alert.context(name);
    let pid = ctx("proc.pid").and_then(as_int);
    let start = ctx("proc.pid.ts").and_then(as_int);
    put_int(d, "process.pid", pid);
    put_int(d, "process.vpid", ctx("proc.vpid").and_then(as_int));
    put_int(d, "process.thread.id", ctx("thread.tid").and_then(as_int));
    put_str(d, "process.name", ctx("proc.name"));
    put_str(d, "process.executable", ctx("proc.exepath"));
    put_str(d, "process.command_line", ctx("proc.cmdline"));
    put_str(d, "process.working_directory", ctx("proc.cwd"));
    if let Some(FieldValue::List(argv)) = ctx(ARGV) {
        d.put("process.args", argv.clone());
        d.put("process.args_count", argv.len());
    }
    if let Some(ts) = start {
        d.put("process.start", rfc3339_nanos(ts as u64));
    }
    if let (Some(pid), Some(ts)) = (pid, start) {
        d.put("process.entity_id", entity_id(d, pid, ts));
    }
    if let Some(tty) = ctx("proc.tty").and_then(as_int) {
        d.put("process.interactive", tty != 0);
    }
    put_int(
        d,
        "process.session_leader.pid",
        ctx("proc.sid").and_then(as_int),
    );
    put_int(
        d,
        "process.group_leader.pid",
        ctx("proc.vpgid").and_then(as_int),
    );

    let ppid = ctx("proc.ppid").and_then(as_int);
    put_int(d, "process.parent.pid", ppid);
    put_str(d, "process.parent.name", ctx("proc.pname"));
    put_str(d, "process.parent.executable", ctx("proc.pexepath"));
    put_str(d, "process.parent.command_line", ctx("proc.pcmdline"));
    if let (Some(ppid), Some(ts)) = (ppid, ctx("proc.ppid.ts").and_then(as_int)) {
        d.put("process.parent.start", rfc3339_nanos(ts as u64));
        d.put("process.parent.entity_id", entity_id(d, ppid, ts));
    }

    let uid = ctx("user.uid").and_then(as_int);
    let user = ctx("user.name").and_then(as_str);
    if let Some(uid) = uid {
        d.put("process.user.id", uid.to_string());
        d.put("user.id", uid.to_string());
    }
    if let Some(name) = user {
        d.put("process.user.name", name);
        d.put("user.name", name);
        d.put("related.user", vec![name.to_owned()]);
    }
    if let Some(gid) = ctx("group.gid").and_then(as_int) {
        d.put("process.group.id", gid.to_string());
        d.put("group.id", gid.to_string());
    }
    if let Some(name) = ctx("group.name").and_then(as_str) {
        d.put("process.group.name", name);
        d.put("group.name", name);
    }
    if let Some(name) = ctx("user.loginname").and_then(as_str) {
        d.put("user.changes.name", name);
    }
}

/// ECS `process.entity_id`: stable across the process's life, unique
/// across pid reuse and hosts (host id, boot, pid, start time).
fn entity_id(d: &Doc, pid: i64, start_ns: i64) -> String {
    let host = d.get_str("host.id").unwrap_or_default();
    let boot = d.get_str("host.boot.id").unwrap_or_default();
    ids::hex_digest(
        &[
            host.as_bytes(),
            boot.as_bytes(),
            &pid.to_le_bytes(),
            &start_ns.to_le_bytes(),
        ],
        16,
    )
}

fn file(d: &mut Doc, alert: &Alert) {
    let ctx = |name: &str| alert.context(name);
    let is_file = matches!(ctx("fd.typechar").and_then(as_str), Some("f" | "d"));
    let (path, dir, name) = if is_file {
        (
            ctx("fd.name").and_then(as_str),
            ctx("fd.directory").and_then(as_str),
            ctx("fd.filename").and_then(as_str),
        )
    } else if let Some(p) = ctx("fs.path.name")
        .or(ctx("fs.path.source"))
        .and_then(as_str)
    {
        let (dir, name) = split_path(p);
        (Some(p), Some(dir), Some(name))
    } else {
        return;
    };
    let Some(path) = path else { return };
    d.put("file.path", path);
    if let Some(dir) = dir {
        d.put("file.directory", dir);
    }
    if let Some(name) = name {
        d.put("file.name", name);
        if let Some((stem, ext)) = name.rsplit_once('.')
            && !stem.is_empty()
            && !ext.is_empty()
        {
            d.put("file.extension", ext);
        }
    }
    if is_file && let Some(ino) = ctx("fd.ino").and_then(as_int) {
        d.put("file.inode", ino.to_string());
    }
    if let Some(target) = ctx("fs.path.target").and_then(as_str) {
        d.put("file.target_path", target);
    }
    d.put(
        "file.type",
        if ctx("fd.typechar").and_then(as_str) == Some("d") {
            "dir"
        } else {
            "file"
        },
    );
}

fn split_path(p: &str) -> (&str, &str) {
    match p.rsplit_once('/') {
        Some(("", name)) => ("/", name),
        Some((dir, name)) => (dir, name),
        None => ("", p),
    }
}

fn network(d: &mut Doc, alert: &Alert) {
    let ctx = |name: &str| alert.context(name);
    let proto = ctx("fd.l4proto").and_then(as_str);
    let Some(proto @ ("tcp" | "udp" | "icmp" | "raw")) = proto else {
        return;
    };
    d.put("network.transport", proto);
    if let Some(n) = match proto {
        "tcp" => Some(6),
        "udp" => Some(17),
        _ => None,
    } {
        d.put("network.iana_number", n.to_string());
    }
    let lip = ctx("fd.lip").and_then(as_str);
    let rip = ctx("fd.rip").and_then(as_str);
    if let Some(ip) = lip.or(rip) {
        d.put(
            "network.type",
            if ip.contains(':') { "ipv6" } else { "ipv4" },
        );
    }
    // Falco's local end is the source, the remote end the destination.
    let server = matches!(ctx("fd.is_server"), Some(FieldValue::Bool(true)));
    d.put(
        "network.direction",
        if server { "ingress" } else { "egress" },
    );
    let mut related = Vec::new();
    for (prefix, ip, port) in [
        ("source", lip, ctx("fd.lport").and_then(as_int)),
        ("destination", rip, ctx("fd.rport").and_then(as_int)),
    ] {
        if let Some(ip) = ip {
            d.put(&format!("{prefix}.ip"), ip);
            d.put(&format!("{prefix}.address"), ip);
            related.push(ip.to_owned());
        }
        if let Some(port) = port {
            d.put(&format!("{prefix}.port"), port);
        }
    }
    if !related.is_empty() {
        related.dedup();
        d.put("related.ip", related);
    }
}

fn container(d: &mut Doc, alert: &Alert) {
    let ctx = |name: &str| alert.context(name);
    match ctx("container.id").and_then(as_str) {
        None | Some("host" | "") => return,
        Some(id) => d.put("container.id", id),
    }
    put_str(d, "container.name", ctx("container.name"));
    put_str(d, "container.runtime", ctx("container.type"));
    put_str(d, "container.image.name", ctx("container.image.repository"));
    if let Some(tag) = ctx("container.image.tag").and_then(as_str) {
        d.put("container.image.tag", vec![tag.to_owned()]);
    }
    if let Some(digest) = ctx("container.image.digest").and_then(as_str) {
        d.put("container.image.hash.all", vec![digest.to_owned()]);
    }
    if let Some(FieldValue::Bool(p)) = ctx("container.privileged") {
        d.put("container.security_context.privileged", *p);
    }
    let Some(pod) = ctx("k8s.pod.name").and_then(as_str) else {
        return;
    };
    d.put("orchestrator.type", "kubernetes");
    d.put("orchestrator.resource.type", "pod");
    d.put("orchestrator.resource.name", pod);
    put_str(d, "orchestrator.namespace", ctx("k8s.ns.name"));
    put_str(d, "orchestrator.resource.id", ctx("k8s.pod.uid"));
    if let Some(labels) = ctx("k8s.pod.labels").and_then(as_str) {
        let labels: Vec<String> = labels
            .split(',')
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        d.put("orchestrator.resource.label", labels);
    }
}

fn threat(d: &mut Doc, tags: &[String]) {
    let t = mitre::from_tags(tags);
    if t.is_empty() {
        return;
    }
    d.put("threat.framework", "MITRE ATT&CK");
    let ids = |v: &[(String, Option<&str>)]| v.iter().map(|(i, _)| i.clone()).collect::<Vec<_>>();
    let names = |v: &[(String, Option<&str>)]| {
        v.iter()
            .map(|(i, n)| n.map_or_else(|| i.clone(), str::to_owned))
            .collect::<Vec<_>>()
    };
    let refs = |v: Vec<String>| v.iter().map(|i| mitre::reference(i)).collect::<Vec<_>>();
    if !t.tactics.is_empty() {
        let tids: Vec<String> = t.tactics.iter().map(|(i, _)| (*i).to_owned()).collect();
        d.put(
            "threat.tactic.name",
            t.tactics.iter().map(|(_, n)| *n).collect::<Vec<_>>(),
        );
        d.put("threat.tactic.reference", refs(tids.clone()));
        d.put("threat.tactic.id", tids);
    }
    if !t.techniques.is_empty() {
        d.put("threat.technique.name", names(&t.techniques));
        d.put("threat.technique.reference", refs(ids(&t.techniques)));
        d.put("threat.technique.id", ids(&t.techniques));
    }
    if !t.subtechniques.is_empty() {
        d.put(
            "threat.technique.subtechnique.name",
            names(&t.subtechniques),
        );
        d.put(
            "threat.technique.subtechnique.reference",
            refs(ids(&t.subtechniques)),
        );
        d.put("threat.technique.subtechnique.id", ids(&t.subtechniques));
    }
}

/// The alert title: one line, bounded.
fn message(text: &str) -> String {
    let mut m = escape_controls(text);
    if m.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !m.is_char_boundary(cut) {
            cut -= 1;
        }
        m.truncate(cut);
        m.push('…');
    }
    m
}

/// `2026-11-25T11:41:10.371Z`.
fn rfc3339_millis(ns: u64) -> String {
    let full = rfc3339_nanos(ns);
    // `...SS.nnnnnnnnnZ` → `...SS.nnnZ`
    format!("{}Z", &full[..full.len() - 7])
}

fn as_str(v: &FieldValue) -> Option<&str> {
    match v {
        FieldValue::Str(s) => Some(s),
        _ => None,
    }
}

fn as_int(v: &FieldValue) -> Option<i64> {
    match v {
        FieldValue::Int(i) => Some(*i),
        FieldValue::UInt(u) => i64::try_from(*u).ok(),
        _ => None,
    }
}

fn put_str(d: &mut Doc, path: &str, v: Option<&FieldValue>) {
    if let Some(s) = v.and_then(as_str) {
        d.put(path, s);
    }
}

fn put_int(d: &mut Doc, path: &str, v: Option<i64>) {
    if let Some(i) = v {
        d.put(path, i);
    }
}

fn put_nonempty(d: &mut Doc, path: &str, v: &str) {
    if !v.is_empty() {
        d.put(path, v);
    }
}

/// A JSON object built by dotted paths (`process.parent.pid`).
#[derive(Default)]
struct Doc(Map<String, Value>);

impl Doc {
    fn put(&mut self, path: &str, value: impl Into<Value>) {
        let mut map = &mut self.0;
        let mut parts = path.split('.').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                map.insert(part.to_owned(), value.into());
                return;
            }
            let slot = map
                .entry(part.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            let Value::Object(next) = slot else { return };
            map = next;
        }
    }

    fn get_str(&self, path: &str) -> Option<String> {
        let mut v = self.0.get(path.split('.').next()?)?;
        for part in path.split('.').skip(1) {
            v = v.get(part)?;
        }
        v.as_str().map(str::to_owned)
    }

    fn into_value(self) -> Value {
        Value::Object(self.0)
    }
}

#[cfg(test)]
#[path = "ecs_tests.rs"]
mod tests;

/// Documents for other modules' tests (the templates' coverage check).
#[cfg(test)]
pub mod tests_support {
    pub use super::tests::full_document;
}
