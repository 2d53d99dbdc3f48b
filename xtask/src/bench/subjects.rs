//! What a benchmark round runs beside the workload: nothing, bpftrace with
//! one tracepoint (the floor any tracepoint-based agent pays), or mamori
//! with a ruleset.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

/// The bpftrace reference: one `sys_enter_openat` tracepoint counting.
const BPFTRACE_PROG: &str = "tracepoint:syscalls:sys_enter_openat { @opens = count(); }";

#[derive(Clone, Debug)]
pub enum Kind {
    Nothing,
    Bpftrace,
    /// `binary` with the rules at `rules`.
    Mamori {
        binary: PathBuf,
        rules: PathBuf,
    },
}

#[derive(Clone, Debug)]
pub struct Subject {
    pub label: &'static str,
    pub kind: Kind,
    /// This checkout's mamori (a baseline build lacks newer options).
    pub current: bool,
}

/// A subject running for one round.
pub struct Running {
    child: Option<Child>,
    port: Option<u16>,
}

impl Subject {
    pub fn is_mamori(&self) -> bool {
        matches!(self.kind, Kind::Mamori { .. })
    }

    /// Starts the subject and waits until it observes (`extra`: more
    /// `mamori run` arguments).
    pub fn start(&self, extra: &[&str]) -> anyhow::Result<Running> {
        match &self.kind {
            Kind::Nothing => Ok(Running {
                child: None,
                port: None,
            }),
            Kind::Bpftrace => {
                let mut child = Command::new("bpftrace")
                    .args(["-e", BPFTRACE_PROG])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .context("starting bpftrace")?;
                let out = child.stdout.take().context("bpftrace stdout")?;
                let (tx, rx) = mpsc::channel();
                std::thread::spawn(move || {
                    for line in BufReader::new(out).lines().map_while(Result::ok) {
                        if line.starts_with("Attaching") {
                            let _ = tx.send(());
                        }
                    }
                });
                rx.recv_timeout(Duration::from_secs(60))
                    .context("bpftrace did not attach")?;
                // Attaching is printed just before the attach itself.
                std::thread::sleep(Duration::from_millis(500));
                Ok(Running {
                    child: Some(child),
                    port: None,
                })
            }
            Kind::Mamori { binary, rules } => {
                let port = std::net::TcpListener::bind("127.0.0.1:0")?
                    .local_addr()?
                    .port();
                let child = Command::new(binary)
                    .args(["run", "--json", "--health-addr"])
                    .arg(format!("127.0.0.1:{port}"))
                    .arg("-r")
                    .arg(rules)
                    .args(extra)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .context("starting mamori")?;
                let running = Running {
                    child: Some(child),
                    port: Some(port),
                };
                let deadline = Instant::now() + Duration::from_secs(90);
                while !running
                    .http("/readyz")
                    .is_some_and(|r| r.starts_with("HTTP/1.1 200"))
                {
                    if Instant::now() > deadline {
                        bail!("mamori did not become ready");
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                Ok(running)
            }
        }
    }
}

impl Running {
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn http(&self, path: &str) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port?)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        Some(out)
    }

    /// mamori's `/metrics` (empty for other subjects).
    pub fn metrics(&self) -> String {
        self.http("/metrics").unwrap_or_default()
    }

    /// `(utime + stime in ticks, RSS bytes)`.
    pub fn usage(&self) -> (u64, u64) {
        self.pid().map_or((0, 0), usage)
    }

    /// Bytes the kernel charges for the subject's BPF maps (ring included).
    pub fn map_bytes(&self) -> u64 {
        let Some(pid) = self.pid() else { return 0 };
        let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
            return 0;
        };
        dir.filter_map(Result::ok)
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .filter(|t| t.contains("map_type:"))
            .filter_map(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("memlock:")?.trim().parse::<u64>().ok())
            })
            .sum()
    }

    pub fn stop(mut self) {
        if let Some(c) = self.child.as_mut() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGINT) };
            let _ = c.wait();
        }
        self.child = None;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `(utime + stime ticks, rss bytes)` of a process.
pub fn usage(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    (num(11) + num(12), num(21) * page)
}

/// Clock ticks per second.
pub fn ticks_per_s() -> f64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64
}

/// Sum of a metric's samples in Prometheus text (labels any).
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter(|l| l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// One labelled sample: `name{label="value"}`.
pub fn labelled(text: &str, name: &str, label: &str, value: &str) -> f64 {
    let prefix = format!("{name}{{{label}=\"{value}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix)?.trim().parse().ok())
        .unwrap_or(0.0)
}
