//! `cargo xtask bench capture|rules|delivery`.
//!
//! capture: a fixed-count open+close loop (a syscall the rules capture) and
//! a getppid loop (one nobody captures), pinned to one CPU, without and
//! with the agent attached, alternated (A B A B ...) five times. Reports ns
//! per operation added, events per second, loss, agent CPU and RSS.
//!
//! rules: `cargo bench -p mamori --bench rules` (Falco's stable rules over a
//! generated event mix).
//!
//! delivery: `cargo bench -p mamori --bench delivery` with the test
//! Elasticsearch node running: ECS mapping, spool write and read rates,
//! alerts per second into Elasticsearch.

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use crate::cmd;

const ROUNDS: usize = 5;
const OPENS: u64 = 1_000_000;
const GETPPIDS: u64 = 5_000_000;
/// The workload runs on this CPU; the agent may use the other.
const WORKLOAD_CPU: usize = 1;

pub fn run(what: &str) -> anyhow::Result<()> {
    match what {
        "capture" => capture(),
        "rules" => cmd::cargo(&["bench", "-p", "mamori", "--bench", "rules"]),
        "state" => cmd::cargo(&["bench", "-p", "mamori", "--bench", "state"]),
        "delivery" => {
            let url = crate::es::start()?;
            // SAFETY: single-threaded; read by the bench process.
            unsafe { std::env::set_var("MAMORI_BENCH_ES_URL", url) };
            let r = cmd::cargo(&["bench", "-p", "mamori", "--bench", "delivery"]);
            crate::es::stop()?;
            r
        }
        other => bail!("unknown benchmark `{other}` (capture, rules, state, delivery)"),
    }
}

/// The hidden `cargo xtask bench-workload KIND N` entry: runs the loop in
/// this process, pinned, and prints ns per operation.
pub fn workload(kind: &str, n: u64) -> anyhow::Result<()> {
    pin(WORKLOAD_CPU);
    let start = Instant::now();
    match kind {
        "open" => {
            for _ in 0..n {
                // SAFETY: valid C string; the fd is closed at once.
                unsafe {
                    let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
                    libc::close(fd);
                }
            }
        }
        "getppid" => {
            for _ in 0..n {
                // SAFETY: no arguments.
                unsafe { libc::getppid() };
            }
        }
        other => bail!("unknown workload {other}"),
    }
    println!("{:.1}", start.elapsed().as_nanos() as f64 / n as f64);
    Ok(())
}

fn pin(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t with one bit set, for this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Runs the workload in a child process and returns ns per operation.
fn measure(kind: &str, n: u64) -> anyhow::Result<f64> {
    let exe = std::env::current_exe()?;
    let out = Command::new(exe)
        .args(["bench-workload", kind, &n.to_string()])
        .output()
        .context("workload")?;
    if !out.status.success() {
        bail!("workload failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// Sum of a metric's samples in Prometheus text.
fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter(|l| l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// `(utime + stime ticks, rss bytes)` of a process.
fn usage(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    (num(11) + num(12), num(21) * page)
}

struct Agent {
    child: Child,
    port: u16,
}

impl Agent {
    fn start(rules: &Path) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(cmd::root().join("target/release/mamori"))
            .args([
                "run",
                "--json",
                "--health-addr",
                &format!("127.0.0.1:{port}"),
                "-r",
            ])
            .arg(rules)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting mamori")?;
        let deadline = Instant::now() + Duration::from_secs(90);
        while !http_get(port, "/readyz").is_some_and(|r| r.starts_with("HTTP/1.1 200")) {
            if Instant::now() > deadline {
                bail!("mamori did not become ready");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(Self { child, port })
    }

    fn stop(mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn capture() -> anyhow::Result<()> {
    // Rules that make the kernel capture open/openat/close but never match:
    // the cost measured is capture + decode + evaluation, not alerting.
    let dir = std::env::temp_dir().join("mamori-bench");
    std::fs::create_dir_all(&dir)?;
    let rules = dir.join("bench_rules.yaml");
    std::fs::write(
        &rules,
        "- rule: bench capture\n  desc: captures opens and closes, never matches\n  \
         condition: evt.type in (open, openat, close) and proc.name = never-a-process-name\n  \
         output: \"%proc.name %fd.name\"\n  priority: DEBUG\n",
    )?;
    let (mut base_open, mut base_ppid, mut with_open, mut with_ppid) =
        (vec![], vec![], vec![], vec![]);
    let (mut events, mut lost, mut cpu_ticks, mut busy_ns, mut rss) =
        (0u64, 0u64, 0u64, 0u128, 0u64);
    for round in 0..ROUNDS {
        base_open.push(measure("open", OPENS)?);
        base_ppid.push(measure("getppid", GETPPIDS)?);
        let agent = Agent::start(&rules)?;
        let before = http_get(agent.port, "/metrics").unwrap_or_default();
        let (cpu0, _) = usage(agent.child.id());
        let t0 = Instant::now();
        with_open.push(measure("open", OPENS)?);
        with_ppid.push(measure("getppid", GETPPIDS)?);
        // Let the agent drain what it was sent.
        std::thread::sleep(Duration::from_millis(300));
        let busy = t0.elapsed();
        let after = http_get(agent.port, "/metrics").unwrap_or_default();
        let (cpu1, mem) = usage(agent.child.id());
        let received = metric(&after, "mamori_events_received_total")
            - metric(&before, "mamori_events_received_total");
        events += received;
        lost += metric(&after, "mamori_kernel_events_lost_total")
            + metric(&after, "mamori_events_decode_errors_total");
        cpu_ticks += cpu1 - cpu0;
        busy_ns += busy.as_nanos();
        rss = rss.max(mem);
        eprintln!(
            "round {}: open+close {:.0} -> {:.0} ns, getppid {:.0} -> {:.0} ns, {received} events",
            round + 1,
            base_open[round],
            with_open[round],
            base_ppid[round],
            with_ppid[round]
        );
        agent.stop();
    }
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let secs = busy_ns as f64 / 1e9;
    let (bo, wo, bp, wp) = (
        median(base_open),
        median(with_open),
        median(base_ppid),
        median(with_ppid),
    );
    println!(
        "capture bench: {ROUNDS} rounds, A/B alternated, workload pinned to CPU {WORKLOAD_CPU}; medians"
    );
    println!("| loop | without agent | with agent | added |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| open+close (captured), ns/pair | {bo:.0} | {wo:.0} | {:+.0} ({:+.1} %) |",
        wo - bo,
        (wo - bo) / bo * 100.0
    );
    println!(
        "| getppid (not captured), ns/call | {bp:.0} | {wp:.0} | {:+.1} ({:+.1} %) |",
        wp - bp,
        (wp - bp) / bp * 100.0
    );
    println!();
    println!(
        "| events received | events/s while loaded | lost | agent CPU (% of one core) | agent RSS |"
    );
    println!("| --- | --- | --- | --- | --- |");
    println!(
        "| {events} | {:.0} | {lost} | {:.1} % | {:.1} MiB |",
        events as f64 / secs,
        cpu_ticks as f64 / ticks / secs * 100.0,
        rss as f64 / 1048576.0
    );
    Ok(())
}
