//! `mamori rules test`: rule unit tests without a kernel. A YAML file lists
//! cases; each is a short sequence of events as the agent sees them (type,
//! arguments, return value, the process and its parents, its container) and
//! the rules that must fire. The events run through the same detector as
//! live ones, over a state built from the case alone.
//!
//! ```yaml
//! tests:
//!   - name: cat reads /etc/shadow
//!     event:
//!       type: openat
//!       res: 3
//!       args: {name: /etc/shadow, flags: O_RDONLY}
//!       process: {name: cat, args: [/etc/shadow]}
//!       parent: {name: bash}
//!     expect: [Credential file read by unexpected process]
//!     fields: {fd.name: /etc/shadow}
//! ```

use std::{collections::BTreeMap, path::Path, sync::Arc};

use anyhow::Context;
use mamori_common::syscalls;
use mamori_rules::RuleSet;
use serde::Deserialize;

use crate::{
    alert::Alert,
    detect::Detector,
    event::{Detail, Event, EventType, Exec, Param, Task, Text, args},
    state::{
        Process, State,
        container::Container,
        fds::Fds,
        process::Origin,
        runtime::{Metadata, Mount, Pod},
        users::Db,
    },
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    pub tests: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    /// One event, or `events` for a sequence (earlier ones build state).
    #[serde(default)]
    pub event: Option<EventSpec>,
    #[serde(default)]
    pub events: Vec<EventSpec>,
    /// Exactly these rules fire (none when empty).
    #[serde(default)]
    pub expect: Vec<String>,
    /// Output fields the alerts must carry, rendered as text.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    /// `evt.type`: a syscall name, or `execve`/`execveat` for a program start.
    #[serde(rename = "type")]
    pub ty: String,
    /// Return value (`evt.rawres`); 0 by default.
    #[serde(default)]
    pub res: i64,
    /// Arguments by Falco's names, in the form `evt.arg.*` shows them.
    #[serde(default)]
    pub args: BTreeMap<String, String>,
    #[serde(default)]
    pub process: ProcSpec,
    #[serde(default)]
    pub parent: Option<ProcSpec>,
    /// The parent's ancestors, nearest first.
    #[serde(default)]
    pub ancestors: Vec<ProcSpec>,
    #[serde(default)]
    pub container: Option<ContainerSpec>,
    /// The agent's own pid and files, for `evt.targets_agent` (none by
    /// default: nothing is the agent).
    #[serde(default)]
    pub agent: Option<AgentSpec>,
    /// The first path argument as read again at syscall exit, when a racing
    /// thread changed it (`evt.is_arg_changed`, `evt.arg_at_exit`).
    #[serde(default)]
    pub arg_at_exit: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentSpec {
    pub pid: u32,
    /// Absolute paths of its executable, configuration and rules files.
    pub files: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcSpec {
    pub pid: Option<u32>,
    /// `proc.vpid` (in its pid namespace); the pid by default.
    pub vpid: Option<u32>,
    /// `proc.name` (the kernel's comm at exec, 15 bytes at most).
    pub name: Option<String>,
    /// `proc.comm`: the current name, after a rename; the name by default.
    pub comm: Option<String>,
    /// argv[0]; the name by default.
    pub exe: Option<String>,
    pub args: Vec<String>,
    /// `/usr/bin/<name>` by default.
    pub exepath: Option<String>,
    /// `proc.program` (a script, a program a loader loads); the exepath by
    /// default.
    pub program: Option<String>,
    pub cwd: Option<String>,
    pub env: Vec<String>,
    pub uid: u32,
    /// `user.name`: root for uid 0, `user<uid>` otherwise, by default.
    pub user: Option<String>,
    pub loginuid: Option<u32>,
    pub tty: u32,
    pub memfd: bool,
    /// `upper` or `lower`: the executable is on overlayfs, written in the
    /// container or as its image has it (`proc.is_exe_upper_layer`).
    pub exe_layer: Option<Layer>,
    /// The command line was cut at the capture bound.
    pub args_truncated: bool,
    /// The environment was cut at the capture bound.
    pub env_truncated: bool,
    /// ... and not every loader variable (`LD_*`) of it is known.
    pub loader_env_truncated: bool,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    Upper,
    Lower,
}

impl ProcSpec {
    /// The executable's inode facts a layer implies.
    fn exe_facts(&self) -> Option<crate::event::ExeFacts> {
        self.exe_layer.map(|l| crate::event::ExeFacts {
            overlay: true,
            upper: l == Layer::Upper,
            mode: 0o100_755,
            ..Default::default()
        })
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContainerSpec {
    /// A 64-hex id (made from this text when shorter).
    pub id: String,
    pub runtime: Option<String>,
    pub name: String,
    pub image: String,
    pub privileged: Option<bool>,
    /// `source:dest[:ro]`.
    pub mounts: Vec<String>,
    pub pod: Option<String>,
    pub namespace: Option<String>,
    /// Only a cgroup named like this container: no runtime knows it and
    /// the process shares the host's mount namespace.
    pub unknown_to_runtime: bool,
}

/// The outcome of one case.
pub struct Outcome {
    pub name: String,
    /// Empty when the case passed.
    pub problems: Vec<String>,
}

/// Reads a test file; errors name the file and the YAML position.
pub fn load(path: &Path) -> anyhow::Result<TestFile> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_saphyr::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Runs every case of `file` against `rules`.
pub fn run(file: &TestFile, rules: &Arc<RuleSet>) -> Vec<Outcome> {
    file.tests.iter().map(|c| run_case(c, rules)).collect()
}

fn run_case(case: &Case, rules: &Arc<RuleSet>) -> Outcome {
    let mut problems = Vec::new();
    let specs: Vec<&EventSpec> = case.event.iter().chain(&case.events).collect();
    if specs.is_empty() {
        problems.push("no event (give `event` or `events`)".into());
    }
    let mut detector = Detector::new(rules.clone(), "rules-test".into());
    let mut state = State::offline(0);
    let mut alerts: Vec<Alert> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        match build(spec, i as u64, &mut state) {
            Ok(ev) => detector.process(&mut state, &ev, |a| alerts.push(a)),
            Err(e) => problems.push(format!("event {}: {e}", i + 1)),
        }
    }
    if problems.is_empty() {
        compare(case, &alerts, &mut problems);
    }
    Outcome {
        name: case.name.clone(),
        problems,
    }
}

/// Why `rule` does or does not match the last event of `case` (the
/// earlier ones build state as in a run).
pub fn explain(
    case: &Case,
    rules: &Arc<RuleSet>,
    rule: &str,
) -> anyhow::Result<mamori_rules::explain::Explained> {
    let specs: Vec<&EventSpec> = case.event.iter().chain(&case.events).collect();
    let Some((last, earlier)) = specs.split_last() else {
        anyhow::bail!("case `{}` has no event", case.name);
    };
    let mut detector = Detector::new(rules.clone(), "rules-test".into());
    let mut state = State::offline(0);
    for (i, spec) in earlier.iter().enumerate() {
        let ev = build(spec, i as u64, &mut state).map_err(anyhow::Error::msg)?;
        detector.process(&mut state, &ev, |_| {});
    }
    let ev = build(last, earlier.len() as u64, &mut state).map_err(anyhow::Error::msg)?;
    match detector.explain(&mut state, &ev, rule, |_| true) {
        Some(r) => r.map_err(anyhow::Error::msg),
        None => anyhow::bail!("the event was not explained"),
    }
}

/// The diff between what was expected and what fired.
fn compare(case: &Case, alerts: &[Alert], problems: &mut Vec<String>) {
    let fired: Vec<&str> = alerts.iter().map(|a| a.rule.as_str()).collect();
    for want in &case.expect {
        if !fired.contains(&want.as_str()) {
            problems.push(format!("- expected `{want}`, it did not fire"));
        }
    }
    for got in &fired {
        if !case.expect.iter().any(|w| w == got) {
            problems.push(format!("+ `{got}` fired, not expected"));
        }
    }
    for (field, want) in &case.fields {
        for a in alerts {
            let got = a
                .output_fields
                .iter()
                .find(|(k, _)| k == field)
                .map(|(_, v)| v);
            let got = match got.map(crate::outputs::format::json_value) {
                Some(serde_json::Value::String(s)) => s,
                Some(serde_json::Value::Null) => "<NA>".into(),
                Some(v) => v.to_string(),
                None => continue,
            };
            if &got != want {
                problems.push(format!("  `{}`: {field} = {got} (want {want})", a.rule));
            }
        }
    }
}

const PID: u32 = 4242;
const MNTNS: u32 = 4_026_531_841;

/// Puts the case's processes, users and container into the state and
/// returns the event.
fn build(spec: &EventSpec, seq: u64, state: &mut State) -> Result<Event, String> {
    let pid = spec.process.pid.unwrap_or(PID);
    let container = spec.container.as_ref().map(|c| container(c, state));
    // The chain: the process, its parent, then the ancestors.
    let chain: Vec<&ProcSpec> = std::iter::once(&spec.process)
        .chain(spec.parent.as_ref())
        .chain(&spec.ancestors)
        .collect();
    let pids: Vec<u32> = chain
        .iter()
        .enumerate()
        .map(|(i, p)| p.pid.unwrap_or(pid.saturating_sub(i as u32)))
        .collect();
    let mut passwd = String::new();
    for (i, p) in chain.iter().enumerate().rev() {
        let ppid = pids.get(i + 1).copied().unwrap_or(1);
        // A later event of a sequence keeps what earlier ones built (fds).
        if state.processes.get(pids[i]).is_none() {
            state
                .processes
                .insert(process(p, pids[i], ppid, container.clone()));
        }
        passwd.push_str(&passwd_line(p));
    }
    passwd.push_str("root:x:0:0:root:/root:/bin/bash\n");
    state.users.insert(MNTNS, Db::parse(&passwd, "root:x:0:\n"));
    state.agent = spec.agent.as_ref().map(|a| {
        crate::state::agent_self::AgentSelf::described(
            a.pid,
            a.files.iter().map(|f| f.as_bytes().to_vec()).collect(),
        )
    });

    let p = &spec.process;
    let name = p.name();
    let task = Task {
        tgid: pid,
        tid: pid,
        ppid: pids.get(1).copied().unwrap_or(1),
        ns_tgid: p.vpid.unwrap_or(pid),
        ns_tid: p.vpid.unwrap_or(pid),
        uid: p.uid,
        gid: p.uid,
        euid: p.uid,
        egid: p.uid,
        loginuid: p.loginuid.unwrap_or(u32::MAX),
        mntns: MNTNS,
        cgroup_id: container.as_ref().map_or(1, |_| 2),
        comm: p.comm.as_deref().unwrap_or(&name).into(),
        ..Task::default()
    };
    let time_ns = 1_700_000_000_000_000_000 + seq * 1000;
    let (ty, detail) = match spec.ty.as_str() {
        n @ ("execve" | "execveat") => (
            EventType::Exec(if n == "execve" { "execve" } else { "execveat" }),
            Detail::Exec(Box::new(exec(p, &name))),
        ),
        n => {
            let sc = syscalls::ALL
                .iter()
                .find(|s| s.name == n && s.program != syscalls::Program::Sched)
                .ok_or_else(|| format!("unknown event type `{n}`"))?;
            (
                EventType::Syscall(sc),
                Detail::Syscall {
                    args: [0; 6],
                    params: Vec::new(),
                    uring: None,
                },
            )
        }
    };
    let mut ev = Event {
        ty,
        time_ns,
        task,
        ret: spec.res,
        detail,
    };
    for (k, v) in &spec.args {
        args::set(&mut ev, k, v)?;
    }
    if let (Some(at_exit), Detail::Syscall { params, .. }) = (&spec.arg_at_exit, &mut ev.detail) {
        params.push(Param::AtExit(Some(at_exit.as_str().into())));
    }
    Ok(ev)
}

impl ProcSpec {
    fn name(&self) -> String {
        self.name.clone().unwrap_or_else(|| "proc".into())
    }

    /// `/usr/bin/<name>` unless given.
    fn exepath(&self) -> String {
        self.exepath
            .clone()
            .unwrap_or_else(|| format!("/usr/bin/{}", self.name()))
    }
}

fn process(p: &ProcSpec, pid: u32, ppid: u32, container: Option<Container>) -> Process {
    let name = p.name();
    let exepath = p.exepath();
    Process {
        pid,
        ppid,
        name: name.as_str().into(),
        comm: p.comm.as_deref().unwrap_or(&name).into(),
        exe: p.exe.as_deref().unwrap_or(&name).into(),
        args: p.args.iter().map(|a| a.as_str().into()).collect(),
        args_joined: Vec::new(),
        cmdline: Vec::new(),
        exepath: exepath.as_str().into(),
        program: p.program.as_deref().unwrap_or(&exepath).into(),
        cwd: p.cwd.as_deref().unwrap_or("/").into(),
        env: p.env.iter().map(|a| a.as_str().into()).collect(),
        env_truncated: p.env_truncated,
        loader_env_truncated: p.loader_env_truncated,
        tty: p.tty,
        sid: pid,
        pgid: pid,
        start_ns: 1_700_000_000_000_000_000,
        uid: p.uid,
        euid: p.uid,
        gid: p.uid,
        loginuid: p.loginuid.unwrap_or(u32::MAX),
        exe_ino: 1,
        exe_nlink: 1,
        exe_facts: p.exe_facts(),
        from_memfd: p.memfd,
        cgroup_id: container.as_ref().map_or(1, |_| 2),
        container,
        origin: Origin::ProcFs,
        fds: Fds::default(),
    }
}

/// The exec record of a program start, from the process spec.
fn exec(p: &ProcSpec, name: &str) -> Exec {
    let exepath = p.exepath();
    let exe: Text = p.exe.as_deref().unwrap_or(name).into();
    Exec {
        exe_path: Some(exepath.as_str().into()),
        filename: Some(exepath.as_str().into()),
        interp: Some(exepath.as_str().into()),
        args: std::iter::once(exe)
            .chain(p.args.iter().map(|a| a.as_str().into()))
            .collect(),
        env: p.env.iter().map(|a| a.as_str().into()).collect(),
        args_truncated: p.args_truncated,
        env_truncated: p.env_truncated,
        loader_env_truncated: p.loader_env_truncated,
        cwd: Some(p.cwd.as_deref().unwrap_or("/").into()),
        tty: p.tty,
        exe_nlink: if p.memfd { 0 } else { 1 },
        exe_facts: p.exe_facts(),
        exe_file: p.memfd.then(|| mamori_common::FileInfo {
            fs_magic: 0x0102_1994,
            ..Default::default()
        }),
        ..Exec::default()
    }
}

/// The passwd line of `p`'s user.
fn passwd_line(p: &ProcSpec) -> String {
    let name = p.user.clone().unwrap_or_else(|| match p.uid {
        0 => "root".into(),
        u => format!("user{u}"),
    });
    format!("{name}:x:{0}:{0}:{name}:/home/{name}:/bin/sh\n", p.uid)
}

fn container(c: &ContainerSpec, state: &mut State) -> Container {
    let id = if c.id.len() == 64 {
        c.id.clone()
    } else {
        // Any text makes a stable 64-hex id.
        let hex: String = c.id.bytes().map(|b| format!("{b:02x}")).collect();
        format!("{hex:0<64}")[..64].to_owned()
    };
    let container = Container {
        full_id: id.as_str().into(),
        runtime: crate::record::wire::runtime_name(c.runtime.as_deref().unwrap_or("containerd")),
    };
    let mounts = c
        .mounts
        .iter()
        .map(|m| {
            let mut parts = m.split(':');
            Mount {
                source: parts.next().unwrap_or_default().into(),
                dest: parts.next().unwrap_or_default().into(),
                mode: String::new(),
                rdwr: parts.next() != Some("ro"),
                propagation: String::new(),
            }
        })
        .collect();
    let pod = c.pod.as_ref().map(|name| Pod {
        name: name.clone(),
        namespace: c.namespace.clone().unwrap_or_else(|| "default".into()),
        ..Pod::default()
    });
    if c.unknown_to_runtime {
        state.host_mntns = MNTNS;
        state.containers.learn(2, container.clone());
        return container;
    }
    state.containers.insert_metadata(
        &id,
        Metadata {
            name: c.name.clone(),
            image: c.image.clone(),
            privileged: c.privileged,
            mounts,
            pod,
            ..Metadata::default()
        },
    );
    state.containers.learn(2, container.clone());
    container
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules_files;

    fn default_rules() -> Arc<RuleSet> {
        Arc::new(rules_files::load(&[]).unwrap())
    }

    fn test_file() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/tests/mamori_rules.test.yaml")
    }

    #[test]
    fn the_default_rules_pass_their_tests() {
        let file = load(&test_file()).unwrap();
        let failed: Vec<String> = run(&file, &default_rules())
            .into_iter()
            .filter(|o| !o.problems.is_empty())
            .map(|o| format!("{}: {}", o.name, o.problems.join("; ")))
            .collect();
        assert!(failed.is_empty(), "{failed:#?}");
    }

    #[test]
    fn every_default_rule_has_a_firing_case() {
        let file = load(&test_file()).unwrap();
        let tested: Vec<&str> = file
            .tests
            .iter()
            .flat_map(|c| c.expect.iter().map(String::as_str))
            .collect();
        let (_, text) = rules_files::DEFAULT_RULES[0];
        let missing: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("- rule: "))
            .filter(|r| !tested.contains(r))
            .collect();
        assert!(missing.is_empty(), "rules without a test case: {missing:?}");
    }

    #[test]
    fn a_wrong_expectation_is_reported_as_a_diff() {
        let file: TestFile = serde_saphyr::from_str(
            "tests:\n  - name: x\n    event:\n      type: openat\n      res: 3\n      args: {name: /etc/shadow, flags: O_RDONLY}\n      process: {name: cat}\n    expect: [SSH private key read]\n    fields: {fd.name: /etc/passwd}\n",
        )
        .unwrap();
        let out = run(&file, &default_rules());
        let p = &out[0].problems;
        assert!(
            p.contains(&"- expected `SSH private key read`, it did not fire".to_owned()),
            "{p:?}"
        );
        assert!(
            p.contains(
                &"+ `Credential file read by unexpected process` fired, not expected".to_owned()
            ),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|l| l.contains("fd.name = /etc/shadow (want /etc/passwd)")),
            "{p:?}"
        );
    }

    #[test]
    fn bad_events_are_named() {
        let file: TestFile = serde_saphyr::from_str(
            "tests:\n  - name: x\n    event:\n      type: openat\n      args: {nme: /x}\n    expect: []\n  - name: y\n    event:\n      type: nosuch\n    expect: []\n",
        )
        .unwrap();
        let out = run(&file, &default_rules());
        assert!(
            out[0].problems[0].contains("openat has no argument `nme`"),
            "{:?}",
            out[0].problems
        );
        assert!(
            out[1].problems[0].contains("unknown event type `nosuch`"),
            "{:?}",
            out[1].problems
        );
    }
}
