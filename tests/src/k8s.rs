//! The real single-node cluster `cargo xtask test` brings up
//! (`cargo xtask k8s up`; `MAMORI_TEST_K8S` names its node directory):
//! kubectl as its admin inside the node's network namespace, and the
//! waiting a test does for what the cluster does asynchronously.

use std::{
    io::Write,
    path::PathBuf,
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

/// What `cargo xtask k8s up` made (see xtask/src/k8s).
pub struct Cluster {
    pub dir: PathBuf,
    kubectl: PathBuf,
}

/// The node's name and address (xtask/src/k8s/mod.rs).
pub const NODE_NAME: &str = "mamori-node";
pub const NODE_IP: &str = "10.250.0.1";
/// Built by `cargo xtask k8s build`.
pub const HELM: &str = "/var/lib/mamori-tools/bin/helm";

impl Cluster {
    pub fn from_env() -> Self {
        let dir = std::env::var("MAMORI_TEST_K8S").unwrap_or_else(|_| {
            panic!("MAMORI_TEST_K8S is not set: run these tests with `cargo xtask test` (it brings the cluster up), or `cargo xtask k8s up` and export MAMORI_TEST_K8S=/var/lib/mamori-k8s/node")
        });
        let dir = PathBuf::from(dir);
        let kubectl = dir.join("../bin/kubectl");
        assert!(
            dir.join("ns/net").exists() && kubectl.exists(),
            "no cluster at {}: `cargo xtask k8s up`",
            dir.display()
        );
        Self { dir, kubectl }
    }

    /// `kubectl ARGS` (stdin from `input`), whatever its exit.
    pub fn try_kubectl(&self, args: &[&str], input: Option<&str>) -> Output {
        let mut c = self.command();
        c.args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("nsenter and kubectl run");
        if let Some(text) = input {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// `kubectl ARGS`, which must succeed; its stdout.
    pub fn kubectl(&self, args: &[&str]) -> String {
        self.kubectl_with(args, None)
    }

    pub fn kubectl_with(&self, args: &[&str], input: Option<&str>) -> String {
        succeeded("kubectl", args, self.try_kubectl(args, input))
    }

    pub fn apply(&self, yaml: &str) {
        self.kubectl_with(&["apply", "-f", "-"], Some(yaml));
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut full = args.to_vec();
        full.extend(["-o", "json"]);
        serde_json::from_str(&self.kubectl(&full)).unwrap()
    }

    /// The kubectl command line, in the node's network namespace.
    pub fn command(&self) -> Command {
        self.as_admin(&self.kubectl)
    }

    /// `helm ARGS` against the cluster, which must succeed; its stdout.
    pub fn helm(&self, args: &[&str]) -> String {
        let out = self.as_admin(HELM.as_ref()).args(args).output().unwrap();
        succeeded("helm", args, out)
    }

    /// `program` (kubectl, helm) as the cluster's admin, inside the node's
    /// network namespace.
    fn as_admin(&self, program: &std::path::Path) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.dir.join("ns/net").display()))
            .arg("--")
            .arg(program)
            .arg(format!(
                "--kubeconfig={}",
                self.dir.join("pki/admin.kubeconfig").display()
            ));
        c
    }

    /// `kubectl exec -it POD -- ARGS` at a real terminal (script(1) gives
    /// kubectl one), with `input` typed into it; returns what it printed.
    pub fn exec_tty(&self, namespace: &str, pod: &str, input: &str) -> String {
        let c = self.command();
        let mut line: Vec<String> = std::iter::once(c.get_program())
            .chain(c.get_args())
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        line.extend(
            ["-n", namespace, "exec", "-it", pod, "--", "sh"]
                .iter()
                .map(|s| (*s).to_owned()),
        );
        let mut child = Command::new("script")
            .args(["-qec", &line.join(" "), "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("script(1) runs");
        let mut stdin = child.stdin.take().unwrap();
        // Typed slowly enough for the remote shell to read it line by line.
        for l in input.lines() {
            std::thread::sleep(Duration::from_millis(300));
            writeln!(stdin, "{l}").unwrap();
        }
        std::thread::sleep(Duration::from_millis(500));
        writeln!(stdin, "exit").unwrap();
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// The stdout of `program args`, which must have succeeded.
fn succeeded(program: &str, args: &[&str], out: Output) -> String {
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Polls `f` until it gives a value or `secs` pass; then panics with `what`
/// and the last state `f` saw.
pub fn wait_for<T>(what: &str, secs: u64, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match f() {
            Ok(v) => return v,
            Err(last) if Instant::now() > deadline => {
                panic!("timed out after {secs} s waiting for {what}; last: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

/// Forwards TCP connections made to `listen` inside the node's network
/// namespace to `target` on the host, for as long as the test process
/// lives: how the node's pods reach the tests' Elasticsearch without the
/// cluster touching the host's network. The listening socket is made on a
/// thread moved into the node's namespace, then moved back; sockets keep
/// the namespace they were made in.
pub fn forward(cluster: &Cluster, listen: &str, target: &str) {
    use std::{fs::File, net::TcpListener, os::fd::AsRawFd};
    let host = File::open("/proc/self/ns/net").unwrap();
    let node = File::open(cluster.dir.join("ns/net")).unwrap();
    let (listen, target) = (listen.to_owned(), target.to_owned());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // SAFETY: namespace file descriptors held open; this thread only.
        let enter = |f: &File| unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(enter(&node), 0, "setns into the node");
        let listener = TcpListener::bind(&listen);
        assert_eq!(enter(&host), 0, "setns back to the host");
        let listener = listener.unwrap_or_else(|e| panic!("listen on {listen} in the node: {e}"));
        tx.send(()).unwrap();
        for client in listener.incoming().flatten() {
            let target = target.clone();
            std::thread::spawn(move || {
                let Ok(server) = std::net::TcpStream::connect(&target) else {
                    return;
                };
                let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let up = std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c2, &mut s2);
                    let _ = s2.shutdown(std::net::Shutdown::Write);
                });
                let (mut c, mut s) = (client, server);
                let _ = std::io::copy(&mut s, &mut c);
                let _ = c.shutdown(std::net::Shutdown::Write);
                let _ = up.join();
            });
        }
    });
    rx.recv().unwrap();
}
