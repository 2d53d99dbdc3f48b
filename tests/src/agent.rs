//! Running the real `mamori` binary for a test and reading its alerts.

use std::{
    io::{BufRead, BufReader, Write},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crate::sibling_binary;

/// A running `mamori run --json`, its alerts collected as they come.
pub struct Agent {
    child: Child,
    pub port: u16,
    alerts: Arc<Mutex<Vec<serde_json::Value>>>,
    /// When each alert line was read (ns since the epoch), for the
    /// latency benchmark.
    arrivals: Arc<Mutex<Vec<u64>>>,
    /// Reads stdout into `alerts`; ends at the agent's exit.
    reader: Option<std::thread::JoinHandle<()>>,
    /// The agent's log, when captured (`start_logged`).
    log: Arc<Mutex<String>>,
}

/// Nanoseconds since the epoch, now.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The repository's `rules/` directory.
pub fn repo_rules() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../rules")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET path` on the agent's health address: status and body.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    crate::http::request("GET", &format!("http://127.0.0.1:{port}{path}"), None)
}

/// The rules that fired in agents running the default rules, appended
/// to the file `MAMORI_E2E_FIRED` names (set by `cargo xtask test`, which
/// checks after the run that every default rule fired in some test).
struct FiredLog(std::fs::File);

impl FiredLog {
    /// The log, when the run keeps one and `args` load the default rules
    /// (no `-r`, or the repository's `rules/` among them).
    fn open(args: &[&str]) -> Option<Self> {
        let path = std::env::var_os("MAMORI_E2E_FIRED")?;
        let repo = repo_rules();
        let rules: Vec<&&str> = args
            .iter()
            .zip(args.iter().skip(1))
            .filter(|(flag, _)| matches!(**flag, "-r" | "--rules"))
            .map(|(_, path)| path)
            .collect();
        let defaults = rules.is_empty()
            || rules.iter().any(|p| {
                let p = std::path::Path::new(p);
                p.canonicalize().ok() == repo.canonicalize().ok()
                    || p.canonicalize().ok() == repo.join("mamori_rules.yaml").canonicalize().ok()
            });
        if !defaults {
            return None;
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .ok()
            .map(Self)
    }

    /// One line per rule alert (appends of a line are atomic).
    fn note(&mut self, alert: &serde_json::Value) {
        if alert["source"] == "syscall"
            && let Some(rule) = alert["rule"].as_str()
        {
            let _ = self
                .0
                .write_all(format!("{}\n", rule.replace('\n', " ")).as_bytes());
        }
    }
}

impl Agent {
    /// Starts the agent with `args` after `run --json`, waits until ready.
    pub fn start(args: &[&str]) -> Self {
        Self::spawn(args, false)
    }

    /// As `start`, keeping the agent's log (stderr) for `log()`.
    pub fn start_logged(args: &[&str]) -> Self {
        Self::spawn(args, true)
    }

    /// As `start_logged`, with `env` added to the agent's environment.
    pub fn start_logged_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::spawn_with(args, true, env)
    }

    /// The log so far (only with `start_logged`).
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn spawn(args: &[&str], keep_log: bool) -> Self {
        Self::spawn_with(args, keep_log, &[])
    }

    fn spawn_with(args: &[&str], keep_log: bool, env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let mut child = Command::new(sibling_binary("mamori"))
            .args([
                "run",
                "--json",
                "--health-addr",
                &format!("127.0.0.1:{port}"),
            ])
            .args(args)
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(if keep_log {
                Stdio::piped()
            } else {
                Stdio::inherit()
            })
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        if let Some(err) = child.stderr.take() {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines() {
                    let Ok(line) = line else { return };
                    eprintln!("{line}");
                    let mut l = log.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
            });
        }
        let alerts = Arc::new(Mutex::new(Vec::new()));
        let sink = alerts.clone();
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let arrived = arrivals.clone();
        let out = child.stdout.take().unwrap();
        let mut fired = FiredLog::open(args);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { return };
                let v: serde_json::Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                if let Some(log) = &mut fired {
                    log.note(&v);
                }
                let mut sink = sink.lock().unwrap();
                sink.push(v);
                arrived.lock().unwrap().push(now_ns());
            }
        });
        let mut agent = Agent {
            child,
            port,
            alerts,
            arrivals,
            reader: Some(reader),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        while !http_get(port, "/readyz").is_some_and(|(status, _)| status == 200) {
            if let Some(status) = agent.child.try_wait().unwrap() {
                panic!("mamori exited before it was ready: {status}");
            }
            assert!(Instant::now() < deadline, "mamori never became ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        agent
    }

    /// The first alert of `rule` whose `proc.pid` is `pid`, waiting up to 10 s.
    pub fn wait_alert(&self, rule: &str, pid: u32) -> Option<serde_json::Value> {
        self.wait_alert_where(rule, |f| f["proc.pid"].as_u64() == Some(u64::from(pid)))
    }

    /// The first alert of `rule` whose output fields satisfy `pred`,
    /// waiting up to 10 s.
    pub fn wait_alert_where(
        &self,
        rule: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> Option<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found = self
                .alerts
                .lock()
                .unwrap()
                .iter()
                .find(|a| a["rule"] == rule && pred(&a["output_fields"]))
                .cloned();
            if found.is_some() || Instant::now() > deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every alert so far.
    pub fn alerts(&self) -> Vec<serde_json::Value> {
        self.alerts.lock().unwrap().clone()
    }

    /// Every alert so far with when its line was read (ns since the epoch).
    pub fn alerts_with_arrival(&self) -> Vec<(serde_json::Value, u64)> {
        let alerts = self.alerts.lock().unwrap();
        let arrivals = self.arrivals.lock().unwrap();
        alerts
            .iter()
            .cloned()
            .zip(arrivals.iter().copied())
            .collect()
    }

    /// The value of an unlabelled metric from `/metrics`.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let (_, text) = http_get(self.port, "/metrics")?;
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }

    /// The agent's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `sig` (SIGHUP to reload, say).
    pub fn signal(&self, sig: i32) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit status and every alert, those raised while
    /// the agent drained included.
    pub fn stop_with_alerts(mut self) -> (std::process::ExitStatus, Vec<serde_json::Value>) {
        let status = self.terminate();
        if let Some(reader) = self.reader.take() {
            reader.join().expect("the alert reader panicked");
        }
        (status, self.alerts())
    }

    /// SIGTERM, then the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        self.terminate()
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "mamori did not stop");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}
