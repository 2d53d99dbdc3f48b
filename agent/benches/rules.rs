//! Rule evaluation throughput: Falco's stable rules (or the files given in
//! MAMORI_BENCH_RULES, colon-separated) over a generated mix of events, in
//! and out of containers, through the agent's real field extraction.
//! Run with `cargo xtask bench rules`.

use std::{hint::black_box, sync::Arc, time::Instant};

use mamori::{
    detect::Detector,
    event::{Detail, Event, EventType, Exec, FileInfo, Param, SockTuple, Task, Text},
    state::{Process, State, container::Container, process::Origin},
};
use mamori_common::syscalls;
use mamori_rules::{MatchMode, SourceFile};

fn task(pid: u32, comm: &str) -> Task {
    Task {
        tgid: pid,
        tid: pid,
        ppid: pid / 2,
        ns_tgid: pid,
        ns_tid: pid,
        uid: if pid.is_multiple_of(3) { 1000 } else { 0 },
        gid: 0,
        euid: 0,
        egid: 0,
        loginuid: u32::MAX,
        sessionid: 1,
        pidns: 1,
        mntns: 1,
        cgroup_id: 1,
        cap_effective: 0x1ff,
        cap_permitted: 0x1ff,
        comm: Text::from(comm),
    }
}

fn process(pid: u32, comm: &str, exe: &str, args: &[&str], container: bool) -> Process {
    Process {
        pid,
        ppid: pid / 2,
        name: Text::from(comm),
        comm: Text::from(comm),
        exe: Text::from(exe),
        args: args.iter().map(|a| Text::from(*a)).collect(),
        args_joined: Vec::new(),
        cmdline: Vec::new(),
        exepath: Text::from(exe),
        program: Text::default(),
        cwd: Text::from("/srv/app"),
        env: vec![Text::from("PATH=/usr/bin")],
        env_truncated: false,
        loader_env_truncated: false,
        tty: 0,
        sid: 1,
        pgid: pid,
        start_ns: 1,
        uid: 0,
        euid: 0,
        gid: 0,
        loginuid: u32::MAX,
        exe_ino: 42,
        exe_nlink: 1,
        exe_facts: None,
        from_memfd: false,
        container: container.then(|| Container {
            full_id: Arc::from("4f1c8a2be7d9c0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071829"),
            runtime: "containerd",
        }),
        cgroup_id: 1,
        origin: Origin::Exec,
        fds: Default::default(),
    }
}

fn open_event(pid: u32, comm: &str, path: &str, flags: u64) -> Event {
    let sc = syscalls::by_name("openat").unwrap_or(&syscalls::ALL[0]);
    Event {
        ty: EventType::Syscall(sc),
        time_ns: 1_000,
        task: task(pid, comm),
        ret: 3,
        detail: Detail::Syscall {
            args: [u64::MAX - 99, 0, flags, 0, 0, 0],
            params: vec![
                Param::Str(Text::from(path)),
                Param::Path {
                    path: Text::from(path),
                    partial: false,
                },
                Param::File(FileInfo {
                    ino: 7,
                    dev: 1,
                    mode: 0o100644,
                    flags: flags as u32,
                    fs_magic: 0xef53,
                }),
            ],
            uring: None,
        },
    }
}

fn exec_event(pid: u32, comm: &str, exe: &str, args: &[&str]) -> Event {
    let mut argv = vec![Text::from(exe)];
    argv.extend(args.iter().map(|a| Text::from(*a)));
    Event {
        ty: EventType::Exec("execve"),
        time_ns: 1_000,
        task: task(pid, comm),
        ret: 0,
        detail: Detail::Exec(Box::new(Exec {
            exe_path: Some(Text::from(exe)),
            filename: Some(Text::from(exe)),
            args: argv,
            cwd: Some(Text::from("/srv/app")),
            exe_nlink: 1,
            ..Exec::default()
        })),
    }
}

fn connect_event(pid: u32, comm: &str, port: u16) -> Event {
    let sc = syscalls::by_name("connect").unwrap_or(&syscalls::ALL[0]);
    let mut t = SockTuple {
        family: 2,
        sock_type: 1,
        protocol: 6,
        state: 1,
        lport: 40000,
        rport: port,
        ..SockTuple::default()
    };
    t.laddr[..4].copy_from_slice(&[10, 0, 0, 5]);
    t.raddr[..4].copy_from_slice(&[93, 184, 216, 34]);
    Event {
        ty: EventType::Syscall(sc),
        time_ns: 1_000,
        task: task(pid, comm),
        ret: 0,
        detail: Detail::Syscall {
            args: [3, 0, 16, 0, 0, 0],
            params: vec![
                Param::Bytes(vec![2, 0, (port >> 8) as u8, port as u8, 93, 184, 216, 34]),
                Param::Sock(t),
            ],
            uring: None,
        },
    }
}

/// Runs `n` events of `set` through the detector and prints a table row:
/// alerts, ns per event, events per second.
fn mix_row(name: &str, detector: &mut Detector, state: &mut State, set: &[Event], n: usize) {
    let mut alerts = 0u64;
    let start = Instant::now();
    for ev in set.iter().cycle().take(n) {
        detector.process(state, black_box(ev), |a| {
            alerts += 1;
            black_box(a);
        });
    }
    let per_event = start.elapsed().as_nanos() as f64 / n as f64;
    println!(
        "| {name} | {n} | {alerts} | {per_event:.0} | {:.0} |",
        1e9 / per_event
    );
}

fn main() {
    // Falco's stable rules (not in this repository): MAMORI_BENCH_RULES
    // names rules files, else MAMORI_FALCO_RULES_DIR or
    // shared/compat/falco-rules beside the clone holds them.
    let paths = std::env::var("MAMORI_BENCH_RULES").unwrap_or_else(|_| {
        let dir = std::env::var("MAMORI_FALCO_RULES_DIR").unwrap_or_else(|_| {
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/compat/falco-rules"
            )
            .to_owned()
        });
        format!("{dir}/falco_rules.yaml")
    });
    let files: Vec<SourceFile> = paths
        .split(':')
        .map(|p| {
            SourceFile::new(
                p,
                std::fs::read_to_string(p).unwrap_or_else(|e| {
                    panic!(
                        "{p}: {e}: this benchmark runs Falco's stable rules; set \
                         MAMORI_FALCO_RULES_DIR to a directory holding falco_rules.yaml"
                    )
                }),
            )
        })
        .collect();
    let loaded = mamori_rules::load(&files, MatchMode::First, &mamori::event::TYPE_NAMES);
    let rules = Arc::new(
        loaded
            .ruleset
            .unwrap_or_else(|| panic!("rules do not load: {:?}", loaded.diagnostics)),
    );

    let mut state = State::empty();
    // A process tree: host daemons and services, some in containers.
    let procs = [
        (1, "systemd", "/usr/lib/systemd/systemd", vec![], false),
        (2, "containerd", "/usr/bin/containerd", vec![], false),
        (
            4,
            "nginx",
            "/usr/sbin/nginx",
            vec!["-g", "daemon off;"],
            true,
        ),
        (8, "python3", "/usr/bin/python3", vec!["app.py"], true),
        (16, "bash", "/bin/bash", vec![], false),
        (32, "sshd", "/usr/sbin/sshd", vec!["-D"], false),
        (64, "java", "/usr/bin/java", vec!["-jar", "svc.jar"], true),
        (128, "cat", "/usr/bin/cat", vec!["/etc/hosts"], false),
        (256, "node", "/usr/bin/node", vec!["server.js"], true),
    ];
    for (pid, comm, exe, args, c) in &procs {
        state.processes.insert(process(*pid, comm, exe, args, *c));
    }
    let mix: Vec<Event> = vec![
        open_event(4, "nginx", "/var/log/nginx/access.log", 0o2101),
        open_event(8, "python3", "/srv/app/templates/index.html", 0),
        open_event(64, "java", "/usr/lib/jvm/lib/rt.jar", 0),
        open_event(16, "bash", "/etc/shadow", 0),
        open_event(128, "cat", "/etc/hosts", 0),
        open_event(256, "node", "/srv/app/node_modules/x/index.js", 0),
        open_event(4, "nginx", "/etc/nginx/nginx.conf", 0),
        open_event(8, "python3", "/tmp/cache/x", 0o101),
        // Execs are by new children (pid/2 is the parent), named as the
        // program they run, as the kernel reports them at execve's exit.
        exec_event(513, "sh", "/bin/sh", &["-c", "npm run build"]),
        exec_event(17, "sh", "/bin/sh", &["-c", "id"]),
        exec_event(129, "curl", "/usr/bin/curl", &["-s", "http://example"]),
        connect_event(8, "python3", 443),
        connect_event(64, "java", 5432),
        connect_event(256, "node", 22),
    ];
    let mut detector = Detector::new(rules.clone(), "bench".into());
    let mut state = state;

    // Warm up, then measure.
    let mut alerts = 0u64;
    for ev in mix.iter().cycle().take(10_000) {
        detector.process(&mut state, ev, |_| alerts += 1);
    }
    // The rule each event alerts with, if any.
    let alerting: Vec<Option<String>> = mix
        .iter()
        .map(|ev| {
            let mut hit = None;
            detector.process(&mut state, ev, |a| hit = Some(a.rule));
            hit
        })
        .collect();
    let quiet: Vec<Event> = mix
        .iter()
        .zip(&alerting)
        .filter(|(_, a)| a.is_none())
        .map(|(e, _)| e.clone())
        .collect();
    // For profiling (perf record): one part of the mix in a loop,
    // MAMORI_BENCH_PROFILE=quiet (the non-alerting events) or alerting.
    if let Ok(part) = std::env::var("MAMORI_BENCH_PROFILE") {
        let set: Vec<&Event> = mix
            .iter()
            .zip(&alerting)
            .filter(|(_, a)| a.is_some() == (part == "alerting"))
            .map(|(e, _)| e)
            .collect();
        for ev in set.iter().cycle().take(20_000_000) {
            detector.process(&mut state, black_box(ev), |a| {
                black_box(a);
            });
        }
        return;
    }
    println!(
        "rules bench: {} file(s), {} rules, {} (rule, type) pairs indexed; mix of {} events, {} of which alert",
        files.len(),
        loaded.stats.rules,
        rules.indexed(),
        mix.len(),
        alerting.iter().flatten().count()
    );
    println!("| event | alert | ns/event | rules only, ns |");
    println!("| --- | --- | --- | --- |");
    for (ev, alerts) in mix.iter().zip(&alerting) {
        let n = 200_000;
        let start = Instant::now();
        for _ in 0..n {
            detector.process(&mut state, black_box(ev), |a| {
                black_box(a);
            });
        }
        let ns = start.elapsed().as_nanos() as f64 / n as f64;
        let start = Instant::now();
        for _ in 0..n {
            black_box(detector.matching(&state, black_box(ev)));
        }
        let rules_ns = start.elapsed().as_nanos() as f64 / n as f64;
        println!(
            "| {} by {} | {} | {ns:.0} | {rules_ns:.0} |",
            ev.ty.name(),
            ev.task.comm.to_str_lossy(),
            alerts.as_deref().unwrap_or("-")
        );
    }
    println!();
    println!("| mix | events | alerts | ns/event | events/s (one core) |");
    println!("| --- | --- | --- | --- | --- |");
    let n: usize = std::env::var("MAMORI_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000_000);
    for (name, set) in [("all", &mix), ("non-alerting", &quiet)] {
        mix_row(name, &mut detector, &mut state, set, n);
    }
    // Falco's `rule_matching: all`: every matching rule of an event alerts,
    // so an alerting event is evaluated against all its bucket's rules.
    let loaded_all = mamori_rules::load(&files, MatchMode::All, &mamori::event::TYPE_NAMES);
    let Some(all_rules) = loaded_all.ruleset else {
        panic!("rules do not load: {:?}", loaded_all.diagnostics);
    };
    let mut every = Detector::new(Arc::new(all_rules), "bench".into());
    for ev in mix.iter().cycle().take(10_000) {
        every.process(&mut state, ev, |_| {});
    }
    for (name, set) in [
        ("all, rule_matching=all", &mix),
        ("non-alerting, rule_matching=all", &quiet),
    ] {
        mix_row(name, &mut every, &mut state, set, n);
    }
    // The rule engine alone: the same events against the state as it
    // stands, which the events do not change (no process, fd or
    // container bookkeeping, no output rendering).
    for (name, set) in [("all", &mix), ("non-alerting", &quiet)] {
        let n = 3_000_000;
        let mut hits = 0usize;
        let start = Instant::now();
        for ev in set.iter().cycle().take(n) {
            hits += black_box(detector.matching(&state, black_box(ev))).len();
        }
        let per_event = start.elapsed().as_nanos() as f64 / n as f64;
        println!(
            "| {name}, rules only | {n} | {hits} | {per_event:.0} | {:.0} |",
            1e9 / per_event
        );
    }
}
