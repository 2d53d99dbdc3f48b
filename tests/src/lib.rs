//! End-to-end test support: one real capture per test binary (loading the
//! programs takes seconds), an actor that performs exact syscalls in a child
//! process (the agent never reports its own pid), and waiting for events.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test support: panics are the failure report"
)]

use std::{
    collections::VecDeque,
    path::PathBuf,
    process::Command,
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

pub mod agent;
pub mod alertmanager;
pub mod containerd;
pub mod es;
pub mod expect;
pub mod hosts;
pub mod http;
pub mod k8s;
pub mod oncall;
pub mod podman;
pub mod webhook;

use mamori::{
    capture::{AttachReport, Capture, CountersHandle, Options},
    event::Event,
};

/// Events kept for tests to search, newest last.
const KEEP: usize = 500_000;

pub struct Harness {
    events: Arc<Mutex<VecDeque<Event>>>,
    pub counters: CountersHandle,
    pub report: AttachReport,
}

static HARNESS: OnceLock<Harness> = OnceLock::new();

/// The shared capture, started on first use.
pub fn harness() -> &'static Harness {
    HARNESS.get_or_init(start)
}

fn start() -> Harness {
    let events = Arc::new(Mutex::new(VecDeque::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = events.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let opts = Options::default();
            let mut cap = Capture::start(&opts).expect("capture must start (run as root)");
            let counters = cap.counters_handle().unwrap();
            let (etx, mut erx) = tokio::sync::mpsc::channel(8192);
            let (_stop, stop_rx) = tokio::sync::watch::channel(false);
            let reader = cap.reader(etx, opts.poll_interval, stop_rx).unwrap();
            tx.send((counters, cap.report().clone())).unwrap();
            tokio::spawn(reader.run());
            while let Some(ev) = erx.recv().await {
                let mut q = sink.lock().unwrap();
                if q.len() >= KEEP {
                    q.pop_front();
                }
                q.push_back(ev);
            }
            drop(cap);
        });
    });
    let (counters, report) = rx.recv().expect("capture thread died");
    Harness {
        events,
        counters,
        report,
    }
}

/// Path of a binary built beside the test (`target/<profile>/<name>`):
/// tests run from `target/<profile>/deps`, this crate's programs from
/// `target/<profile>`.
pub fn sibling_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap();
    let dir = if dir.ends_with("deps") {
        dir.parent().unwrap()
    } else {
        dir
    };
    dir.join(name)
}

/// Outcome of an actor run.
pub struct Acted {
    pub pid: u32,
    pub stdout: String,
}

/// Runs `mamori-actor ARGS` to completion; checks its exit when `success`
/// is given.
pub fn run_actor(args: &[&str], success: Option<bool>) -> Acted {
    let child = Command::new(sibling_binary("mamori-actor"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    if let Some(success) = success {
        assert_eq!(
            out.status.success(),
            success,
            "actor {args:?}: {:?}",
            out.status
        );
    }
    Acted {
        pid,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
    }
}

impl Harness {
    /// Runs `mamori-actor ARGS` to completion; panics if it fails.
    pub fn act(&self, args: &[&str]) -> Acted {
        self.act_expecting(args, true)
    }

    pub fn act_expecting(&self, args: &[&str], success: bool) -> Acted {
        run_actor(args, Some(success))
    }

    /// The first event matching `pred`, waiting up to 10 s for it.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(ev) = self.events.lock().unwrap().iter().find(|e| pred(e)) {
                return ev.clone();
            }
            if Instant::now() > deadline {
                panic!("no event: {what}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every event of `pid` seen so far.
    pub fn events_of(&self, pid: u32) -> Vec<Event> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.task.tgid == pid)
            .cloned()
            .collect()
    }
}

/// `openssl ARGS` in `dir` (test certificates), which must succeed.
pub fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (cargo xtask setup installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Signs `dir/NAME.csr` with the CA `dir/ca.pem` (key `dir/ca.key`) for
/// `san` (`subjectAltName=...`), and stores the certificate with its key
/// `dir/NAME.key` in `dir/NAME.p12` (password `storepw`), the store the
/// test Elasticsearch's HTTPS front reads; the store and the CA are made
/// readable by the node's own user.
pub fn sign_into_store(dir: &std::path::Path, name: &str, san: &str) {
    std::fs::write(dir.join("san.ext"), format!("subjectAltName={san}\n")).unwrap();
    let (csr, pem, key, p12) = (
        format!("{name}.csr"),
        format!("{name}.pem"),
        format!("{name}.key"),
        format!("{name}.p12"),
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &pem,
            "-extfile",
            "san.ext",
            "-days",
            "2",
        ],
    );
    openssl(
        dir,
        &[
            "pkcs12",
            "-export",
            "-in",
            &pem,
            "-inkey",
            &key,
            "-out",
            &p12,
            "-passout",
            "pass:storepw",
        ],
    );
    for f in [p12.as_str(), "ca.pem"] {
        let mut p = std::fs::metadata(dir.join(f)).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut p, 0o644);
        std::fs::set_permissions(dir.join(f), p).unwrap();
    }
}
