//! Memory and speed of the state tables: 100,000 short-lived processes
//! (fork, exec, open, dup2, close, exit), one in ten in a container of its
//! own, through the agent's real `State`. The tables must come back to
//! their size before the run: exited processes leave nothing behind.
//! Run with `cargo xtask bench state`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark: failing loudly is right"
)]

use std::{hint::black_box, time::Instant};

use mamori::{
    event::{Detail, Event, EventType, Exec, FileInfo, Param, Task, Text},
    state::State,
};
use mamori_common::syscalls;

const PROCESSES: u32 = 100_000;
const PARENT: u32 = 10;
/// Processes alive at once (a busy host's churn).
const LIVE: u32 = 500;

fn task(pid: u32, comm: &str, cgroup_id: u64) -> Task {
    Task {
        tgid: pid,
        tid: pid,
        ppid: PARENT,
        ns_tgid: pid,
        ns_tid: pid,
        loginuid: u32::MAX,
        pidns: 1,
        mntns: 1,
        cgroup_id,
        comm: Text::from(comm),
        ..Task::default()
    }
}

fn syscall(pid: u32, cg: u64, name: &str, args: [u64; 6], ret: i64, params: Vec<Param>) -> Event {
    Event {
        ty: EventType::Syscall(syscalls::by_name(name).unwrap()),
        time_ns: 1_000,
        task: task(pid, "worker", cg),
        ret,
        detail: Detail::Syscall {
            args,
            params,
            uring: None,
        },
    }
}

fn cgroup(pid: u32) -> u64 {
    if pid.is_multiple_of(10) {
        u64::from(pid)
    } else {
        1
    }
}

/// The events of one process's life, up to its exit.
fn life(pid: u32) -> Vec<Event> {
    let in_container = pid.is_multiple_of(10);
    let cg = cgroup(pid);
    let leaf = in_container.then(|| Text::from(format!("libpod-{pid:064x}.scope").as_str()));
    let path = format!("/srv/data/file-{pid}");
    vec![
        Event {
            ty: EventType::Fork("clone"),
            time_ns: 1_000,
            task: task(PARENT, "parent", 1),
            ret: i64::from(pid),
            detail: Detail::Fork {
                child_tgid: pid,
                child_tid: pid,
                child_ns_tgid: pid,
                child_ns_tid: pid,
                clone_flags: 0x11,
            },
        },
        Event {
            ty: EventType::Exec("execve"),
            time_ns: 2_000,
            task: task(pid, "worker", cg),
            ret: 0,
            detail: Detail::Exec(Box::new(Exec {
                exe_path: Some(Text::from("/usr/bin/worker")),
                filename: Some(Text::from("/usr/bin/worker")),
                args: vec![
                    Text::from("worker"),
                    Text::from(format!("--job={pid}").as_str()),
                ],
                cwd: Some(Text::from("/srv")),
                cgroup_leaf: leaf,
                exe_nlink: 1,
                ..Exec::default()
            })),
        },
        syscall(
            pid,
            cg,
            "openat",
            [(-100i64) as u64, 0, 0, 0, 0, 0],
            3,
            vec![
                Param::Str(Text::from(path.as_str())),
                Param::Path {
                    path: Text::from(path.as_str()),
                    partial: false,
                },
                Param::File(FileInfo {
                    ino: u64::from(pid),
                    mode: 0o100644,
                    ..FileInfo::default()
                }),
            ],
        ),
        syscall(pid, cg, "dup2", [3, 1, 0, 0, 0, 0], 1, Vec::new()),
        syscall(pid, cg, "close", [3, 0, 0, 0, 0, 0], 0, Vec::new()),
    ]
}

fn exit(pid: u32) -> Event {
    Event {
        ty: EventType::Exit,
        time_ns: 3_000,
        task: task(pid, "worker", cgroup(pid)),
        ret: 0,
        detail: Detail::Exit {
            code: 0,
            group_dead: true,
        },
    }
}

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn apply(state: &mut State, ev: &Event) {
    state.apply_before(ev);
    black_box(state.processes.get(ev.task.tgid));
    state.apply_after(ev);
}

fn main() {
    let mut state = State::empty();
    let rss_start = rss_kib();
    let started = Instant::now();
    let mut events = 0u64;
    let mut peak_procs = 0;
    // LIVE processes alive at a time: each new one starts as the oldest
    // ends.
    for i in 0..PROCESSES {
        for ev in life(1000 + i) {
            apply(&mut state, &ev);
            events += 1;
        }
        if i >= LIVE {
            apply(&mut state, &exit(1000 + i - LIVE));
            events += 1;
        }
        peak_procs = peak_procs.max(state.processes.len());
    }
    for i in PROCESSES - LIVE..PROCESSES {
        apply(&mut state, &exit(1000 + i));
        events += 1;
    }
    let elapsed = started.elapsed();
    let rss_end = rss_kib();

    println!(
        "state: {PROCESSES} short-lived processes, {LIVE} alive at a time, 1 in 10 in its own container"
    );
    println!(
        "  {events} events (fork, exec, openat, dup2, close, exit) in {:.2} s: {:.0} ns/event including building it",
        elapsed.as_secs_f64(),
        elapsed.as_nanos() as f64 / events as f64,
    );
    println!(
        "  process table: peak {peak_procs} entries, {} after (the parent), evicted {}",
        state.processes.len(),
        state.processes.evicted
    );
    println!(
        "  container cache: {} cgroups remembered (cap {})",
        state.containers.len(),
        mamori::state::container::CAPACITY
    );
    println!(
        "  RSS: {rss_start} KiB before, {rss_end} KiB after (+{} KiB)",
        rss_end.saturating_sub(rss_start)
    );
    assert_eq!(
        state.processes.len(),
        1,
        "only the parent may remain: every child exited"
    );
    assert!(state.containers.len() <= mamori::state::container::CAPACITY);
    record_and_replay();
}

/// The same stream written with `--record`'s recorder, then replayed
/// through the default rules: cost per event, bytes per event.
fn record_and_replay() {
    let dir = std::env::temp_dir().join(format!("mamori-bench-rec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bench.jsonl.gz");
    let mut state = State::empty();
    let mut rec = mamori::record::Recorder::create(&path, &mut state, "bench").unwrap();
    let started = Instant::now();
    let mut events = 0u64;
    let mut record = |state: &mut State, ev: &Event| {
        let before = rec.before(state, ev);
        apply(state, ev);
        rec.after(state, ev, before).unwrap();
    };
    for i in 0..PROCESSES {
        for ev in life(1000 + i) {
            record(&mut state, &ev);
            events += 1;
        }
        record(&mut state, &exit(1000 + i));
        events += 1;
    }
    rec.finish().unwrap();
    let recorded = started.elapsed();
    let bytes = std::fs::metadata(&path).unwrap().len();

    let rules = std::sync::Arc::new(mamori::rules_files::load(&[]).unwrap());
    let started = Instant::now();
    let summary = mamori::app::replay::replay(&path, rules, |a| {
        black_box(a);
    })
    .unwrap();
    let replayed = started.elapsed();
    assert_eq!(summary.events, events);
    println!(
        "record: {events} events in {:.2} s: {:.0} ns/event (state update, JSON, gzip), {:.1} bytes/event on disk",
        recorded.as_secs_f64(),
        recorded.as_nanos() as f64 / events as f64,
        bytes as f64 / events as f64
    );
    println!(
        "replay: {:.0} events/s through the default rules ({} alerts)",
        events as f64 / replayed.as_secs_f64(),
        summary.alerts
    );
    let _ = std::fs::remove_dir_all(&dir);
}
