//! The prefilter never drops an open some rule matches: generated rules
//! and generated opens go through the real detector (the oracle); every
//! open it alerts on must pass the kernel's test ([`super::admits`] on
//! [`super::encode`]).

use std::sync::Arc;

use mamori_common::{FileInfo, syscalls};
use mamori_rules::{
    MatchMode, RuleSet, SourceFile,
    prefilter::{OpenFacts, Parent},
};
use proptest::prelude::*;

use super::{admits, encode};
use crate::{
    detect::Detector,
    event::{Detail, Event, EventType, Param, TYPE_NAMES, Task},
    state::Process,
};

/// Paths the generated rules and opens share, so that they meet often.
const PATHS: &[&str] = &[
    "/etc/shadow",
    "/etc/sudoers",
    "/etc/pam.d/sshd",
    "/etc/sudoers.d/admin",
    "/var/log/syslog",
    "/var/log/auth.log",
    "/root/.ssh/id_rsa",
    "/home/ann/.ssh/authorized_keys",
    "/home/ann/.aws/credentials",
    "/etc/ssh/ssh_host_rsa_key",
    "/proc/42/mem",
    "/sys/fs/cgroup/x/release_agent",
    "/dev/null",
    "/tmp/a",
    "/shadow",
    "/usr/bin/ls",
    "/etc/cron.d/job",
];

const FLAGS: &[u32] = &[0, 1, 2, 3, 0o101, 0o1101, 0o2001, 0o302, 0o2000002];

fn atom() -> impl Strategy<Value = String> {
    let path = prop::sample::select(PATHS).prop_map(str::to_owned);
    let name = prop::sample::select(PATHS)
        .prop_map(|p| p.rsplit('/').next().unwrap_or_default().to_owned());
    let dir = prop::sample::select(PATHS).prop_map(|p| {
        let d = &p[..p.rfind('/').unwrap_or(0)];
        if d.is_empty() {
            "/".to_owned()
        } else {
            d.to_owned()
        }
    });
    let tail = prop::sample::select(PATHS).prop_flat_map(|p| {
        let n = p.len();
        (1..=n).prop_map(move |k| p[n - k..].to_owned())
    });
    prop_oneof![
        prop::sample::select(&[
            "evt.is_open_read = true",
            "evt.is_open_read = false",
            "evt.is_open_write = true",
            "evt.is_open_write = false",
            "evt.is_open_create = true",
            "evt.rawres >= 0",
            "evt.rawres < 0",
            "evt.rawres = 3",
            "evt.res = SUCCESS",
            "fd.num >= 0",
            "evt.arg.flags contains O_CREAT",
            "evt.arg.flags contains O_TRUNC",
            "evt.arg.flags contains O_APPEND",
            "evt.arg.flags contains O_WRONLY",
            "evt.arg.flags contains O_RDWR",
            "evt.arg.flags contains O_RDONLY",
            "fd.nameraw contains ../",
            "fd.nameraw glob '*../*../*'",
            "fd.typechar = f",
            "proc.name = cat",
            "evt.type = openat",
            "evt.type in (open, creat)",
        ])
        .prop_map(str::to_owned),
        path.clone().prop_map(|p| format!("fd.name = {p}")),
        (path.clone(), path.clone()).prop_map(|(a, b)| format!("fd.name in ({a}, {b})")),
        tail.clone()
            .prop_map(|t| format!("fd.name endswith \"{t}\"")),
        tail.prop_map(|t| format!("fd.name glob \"*{t}\"")),
        path.clone()
            .prop_map(|p| format!("fd.name startswith {}", &p[..p.len() / 2])),
        path.prop_map(|p| format!("fd.name glob \"{p}\"")),
        name.clone().prop_map(|n| format!("fd.filename = \"{n}\"")),
        name.clone()
            .prop_map(|n| format!("fd.filename endswith \"{}\"", &n[n.len() / 2..])),
        (name.clone(), name).prop_map(|(a, b)| format!("fd.filename in (\"{a}\", \"{b}\")")),
        dir.clone().prop_map(|d| format!("fd.directory = \"{d}\"")),
        dir.clone().prop_flat_map(|d| {
            let n = d.len();
            (1..=n).prop_map(move |k| format!("fd.directory endswith \"{}\"", &d[n - k..]))
        }),
        (dir.clone(), dir).prop_map(|(a, b)| format!("fd.directory in (\"{a}\", \"{b}\")")),
    ]
}

fn condition() -> impl Strategy<Value = String> {
    atom().prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4)
                .prop_map(|v| format!("({})", v.join(" and "))),
            prop::collection::vec(inner.clone(), 2..4)
                .prop_map(|v| format!("({})", v.join(" or "))),
            inner.prop_map(|c| format!("not ({c})")),
        ]
    })
}

/// An open as the kernel reports it.
#[derive(Clone, Debug)]
struct Open {
    ty: &'static str,
    path: String,
    raw: String,
    flags: u32,
    ret: i64,
}

fn open() -> impl Strategy<Value = Open> {
    (
        prop::sample::select(&["open", "openat", "openat2", "creat"][..]),
        prop::sample::select(PATHS),
        prop::sample::select(&["", "../../..", "./", "x/../"][..]),
        prop::sample::select(FLAGS),
        prop::sample::select(&[3i64, 0, -2, -13][..]),
    )
        .prop_map(|(ty, path, raw_prefix, flags, ret)| Open {
            ty,
            path: path.to_owned(),
            raw: if raw_prefix.is_empty() {
                path.to_owned()
            } else {
                format!("{raw_prefix}{path}")
            },
            flags: if ty == "creat" { 0o1101 } else { flags },
            ret,
        })
}

fn event(o: &Open) -> Event {
    let sc = syscalls::by_name(o.ty).unwrap();
    let flags = u64::from(o.flags);
    let args = match o.ty {
        "open" => [0, flags, 0o644, 0, 0, 0],
        "creat" => [0, 0o644, 0, 0, 0, 0],
        _ => [(-100i64) as u64, 0, flags, 0o644, 0, 0],
    };
    let mut params = vec![Param::Str(o.raw.as_str().into())];
    if o.ret >= 0 {
        params.push(Param::Path {
            path: o.path.as_str().into(),
            partial: false,
        });
        params.push(Param::File(FileInfo {
            mode: 0o100644,
            flags: o.flags,
            ..FileInfo::default()
        }));
    } else {
        params.push(Param::Absent);
        params.push(Param::Absent);
    }
    if o.ty == "openat2" {
        let mut how = flags.to_le_bytes().to_vec();
        how.extend(0o644u64.to_le_bytes());
        how.extend(0u64.to_le_bytes());
        params.push(Param::Bytes(how));
    }
    Event {
        ty: EventType::Syscall(sc),
        time_ns: 1,
        task: Task {
            tgid: 4242,
            tid: 4242,
            comm: "cat".into(),
            ..Task::default()
        },
        ret: o.ret,
        detail: Detail::Syscall {
            args,
            params,
            uring: None,
        },
    }
}

/// What the kernel knows when it decides.
fn facts(o: &Open) -> OpenFacts {
    let (dir_part, name) = o.path.rsplit_once('/').unwrap();
    let dir = match dir_part.rsplit_once('/') {
        None => Parent::Root,
        Some((_, last)) => Parent::Named(last.as_bytes().to_vec()),
    };
    OpenFacts {
        ret: o.ret,
        flags: (o.ty != "openat2").then_some(o.flags),
        raw: Some(o.raw.as_bytes().to_vec()),
        name: Some(name.as_bytes().to_vec()),
        dir,
    }
}

fn ruleset(conditions: &[String]) -> Option<Arc<RuleSet>> {
    let mut text = String::new();
    for (i, c) in conditions.iter().enumerate() {
        text.push_str(&format!(
            "- rule: r{i}\n  desc: d\n  condition: evt.type in (open, openat, openat2, creat) and {c}\n  output: o\n  priority: WARNING\n"
        ));
    }
    let loaded = mamori_rules::load(
        &[SourceFile::new("gen.yaml", text)],
        MatchMode::All,
        &TYPE_NAMES,
    );
    loaded.ruleset.map(Arc::new)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 600,
        // A failure prints its minimal case; nothing is written to the tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn no_open_a_rule_matches_is_dropped(
        conditions in prop::collection::vec(condition(), 1..5),
        opens in prop::collection::vec(open(), 1..24),
    ) {
        let Some(rules) = ruleset(&conditions) else {
            // A generated condition the checker refuses: nothing to test.
            return Ok(());
        };
        let kernel = encode(rules.open_prefilter());
        let detector = Detector::new(rules.clone(), "h".into());
        let mut state = crate::state::State::offline(0);
        for o in &opens {
            let ev = event(o);
            if state.processes.get(4242).is_none() {
                state.processes.insert(Process::stub(&ev));
            }
            let matched = detector.matching_unguarded(&state, &ev);
            // The rule engine's own guards (the same terms, per rule, on
            // the engine's fd.name) skip no rule that matches.
            prop_assert_eq!(
                detector.matching(&state, &ev),
                matched.clone(),
                "a rule's guard skipped it on {:?}\nrules: {:#?}",
                o,
                conditions
            );
            if !matched.is_empty() {
                let nr = syscalls::by_name(o.ty).unwrap().nr;
                prop_assert!(
                    admits(&kernel, nr, &facts(o)),
                    "{matched:?} match {o:?} but the kernel would drop it\nrules: {conditions:#?}\nfilter: {kernel:#?}"
                );
            }
        }
    }
}

/// The filter is not vacuous: with the default rules, ordinary opens are
/// dropped and the watched ones kept.
#[test]
fn the_default_rules_drop_ordinary_opens() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../rules/mamori_rules.yaml"
    ))
    .unwrap();
    let loaded = mamori_rules::load(
        &[SourceFile::new("m.yaml", text)],
        MatchMode::First,
        &TYPE_NAMES,
    );
    let kernel = encode(loaded.ruleset.unwrap().open_prefilter());
    let openat = syscalls::OPENAT;
    let o = |path: &str, flags: u32, ret: i64| {
        facts(&Open {
            ty: "openat",
            path: path.into(),
            raw: path.into(),
            flags,
            ret,
        })
    };
    for (path, flags, ret) in [
        ("/dev/null", 0, 3),
        ("/usr/lib/x86_64-linux-gnu/libc.so.6", 0o2000000, 3),
        ("/home/ann/notes.txt", 0, 3),
        ("/etc/shadow", 0, -13),
    ] {
        assert!(
            !admits(&kernel, openat, &o(path, flags, ret)),
            "{path} {flags:o} {ret}"
        );
    }
    for (path, flags) in [
        ("/etc/shadow", 0),
        ("/root/.ssh/id_rsa", 0),
        ("/etc/ld.so.preload", 0o2001),
        ("/etc/sudoers.d/x", 0o101),
        ("/proc/1/mem", 2),
    ] {
        assert!(admits(&kernel, openat, &o(path, flags, 3)), "{path}");
    }
}

/// The agent's own lists, loaded after the default rules, replace their
/// empty definitions and reach the kernel: a write-open of its rules file
/// (or of a file in its rules directory) and any open of its memory are
/// sent, a read elsewhere is not. (Reads of its files may be: the filter
/// merges terms past its budget into a wider one, by name. Writes are
/// sent anywhere already: some default rules want writes in many places.)
#[test]
fn the_agents_own_files_reach_the_prefilter() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../rules/mamori_rules.yaml"
    ))
    .unwrap();
    let own = crate::rules_files::agent_lists(
        vec![b"/srv/mamori/mamori.yaml".to_vec()],
        vec![b"/srv/mamori/rules.d".to_vec()],
    );
    let loaded = mamori_rules::load(
        &[SourceFile::new("m.yaml", text), own],
        MatchMode::First,
        &TYPE_NAMES,
    );
    let kernel = encode(loaded.ruleset.unwrap().open_prefilter());
    let o = |path: &str, flags: u32| {
        facts(&Open {
            ty: "openat",
            path: path.into(),
            raw: path.into(),
            flags,
            ret: 3,
        })
    };
    let mem = format!("/proc/{}/mem", std::process::id());
    for (path, flags, sent) in [
        ("/srv/mamori/mamori.yaml", 1, true),
        ("/srv/mamori/rules.d/extra.yaml", 0o1001, true),
        (mem.as_str(), 0, true),
        ("/home/ann/notes.txt", 0, false),
    ] {
        assert_eq!(
            admits(&kernel, syscalls::OPENAT, &o(path, flags)),
            sent,
            "{path} {flags:o}"
        );
    }
}
