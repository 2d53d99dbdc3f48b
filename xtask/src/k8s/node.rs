//! The node's daemons: containerd, etcd, the API server, the controller
//! manager, the scheduler and the kubelet, each a plain process inside the
//! node's namespace with its log in `NODE_DIR/log` and its pid in
//! `NODE_DIR/pids` (so `down` finds them from any shell). Their config
//! files are written by `config`; the pods' cgroups are `cgroups`'.

use std::{
    fs,
    os::unix::process::CommandExt,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use super::{NODE_DIR, NODE_IP, NODE_NAME, build::bin, cgroups, config, images, namespace, pki};

/// Start order; `down` stops them in reverse.
const DAEMONS: &[&str] = &[
    "containerd",
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
];

pub fn up() -> anyhow::Result<()> {
    down()?;
    let started = Instant::now();
    let host = HostView::now();
    let _ = fs::remove_dir_all(NODE_DIR);
    for d in ["log", "pids", "pki", "etc", "cni/conf", "cni/ipam"] {
        fs::create_dir_all(format!("{NODE_DIR}/{d}"))?;
    }
    let pki_dir = Path::new(NODE_DIR).join("pki");
    pki::make(&pki_dir)?;
    for (name, ..) in pki::CLIENTS {
        pki::kubeconfig(&pki_dir, name)?;
    }
    namespace::create()?;
    cgroups::create()?;
    config::write()?;
    spawn(
        "containerd",
        &bin_or("containerd"),
        &["--config", &config::etc("containerd.toml")],
    )?;
    wait("containerd's socket", 30, || {
        namespace::inside(&["test", "-S", "/run/containerd/containerd.sock"]).is_ok()
    })?;
    images::import()?;
    let p = |f: &str| format!("{NODE_DIR}/pki/{f}");
    spawn(
        "etcd",
        &bin("etcd"),
        &[
            "--data-dir",
            &format!("{NODE_DIR}/etcd"),
            "--listen-client-urls=http://127.0.0.1:2379",
            "--advertise-client-urls=http://127.0.0.1:2379",
            "--listen-peer-urls=http://127.0.0.1:2380",
            "--listen-metrics-urls=http://127.0.0.1:2381",
        ],
    )?;
    spawn(
        "kube-apiserver",
        &bin("kube-apiserver"),
        &[
            "--etcd-servers=http://127.0.0.1:2379",
            &format!("--advertise-address={NODE_IP}"),
            "--service-cluster-ip-range=10.96.0.0/16",
            // The chart's `privileged: true` option is tested too.
            "--allow-privileged=true",
            &format!("--client-ca-file={}", p("ca.crt")),
            &format!("--tls-cert-file={}", p("apiserver.crt")),
            &format!("--tls-private-key-file={}", p("apiserver.key")),
            &format!(
                "--kubelet-client-certificate={}",
                p("apiserver-kubelet.crt")
            ),
            &format!("--kubelet-client-key={}", p("apiserver-kubelet.key")),
            &format!("--kubelet-certificate-authority={}", p("ca.crt")),
            "--kubelet-preferred-address-types=InternalIP,Hostname",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            &format!("--service-account-key-file={}", p("sa.pub")),
            &format!("--service-account-signing-key-file={}", p("sa.key")),
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
        ],
    )?;
    wait("the API server", 60, || {
        kubectl(&["get", "--raw", "/readyz"]).is_ok_and(|s| s.trim() == "ok")
    })?;
    let cm = format!("{NODE_DIR}/pki/controller-manager.kubeconfig");
    spawn(
        "kube-controller-manager",
        &bin("kube-controller-manager"),
        &[
            &format!("--kubeconfig={cm}"),
            &format!("--authentication-kubeconfig={cm}"),
            &format!("--authorization-kubeconfig={cm}"),
            "--bind-address=127.0.0.1",
            "--leader-elect=false",
            "--use-service-account-credentials=true",
            &format!("--service-account-private-key-file={}", p("sa.key")),
            &format!("--root-ca-file={}", p("ca.crt")),
            &format!("--cluster-signing-cert-file={}", p("ca.crt")),
            &format!("--cluster-signing-key-file={}", p("ca.key")),
        ],
    )?;
    let sched = format!("{NODE_DIR}/pki/scheduler.kubeconfig");
    spawn(
        "kube-scheduler",
        &bin("kube-scheduler"),
        &[
            &format!("--kubeconfig={sched}"),
            &format!("--authentication-kubeconfig={sched}"),
            &format!("--authorization-kubeconfig={sched}"),
            "--bind-address=127.0.0.1",
            "--leader-elect=false",
        ],
    )?;
    spawn(
        "kubelet",
        &bin("kubelet"),
        &[
            &format!("--config={}", config::etc("kubelet.yaml")),
            &format!("--kubeconfig={NODE_DIR}/pki/kubelet.kubeconfig"),
            &format!("--root-dir={NODE_DIR}/kubelet"),
            &format!("--hostname-override={NODE_NAME}"),
            &format!("--node-ip={NODE_IP}"),
        ],
    )?;
    wait("the node to be Ready", 120, || {
        kubectl(&[
            "get",
            "node",
            NODE_NAME,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ])
        .is_ok_and(|s| s == "True")
    })?;
    // Pods cannot be made in a namespace before its service account is.
    wait("the default service account", 60, || {
        kubectl(&["get", "serviceaccount", "default", "-o", "name"]).is_ok()
    })?;
    host.unchanged()?;
    eprintln!(
        "k8s: node {NODE_NAME} Ready in {:.1} s (state in {NODE_DIR}; `cargo xtask k8s kubectl get pods -A`)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// What the cluster must not change on the host: the sysctls the kubelet
/// would set, and the node's own network links (other jobs on the host may
/// add theirs). Checked once the node is Ready.
struct HostView {
    sysctls: Vec<(&'static str, String)>,
    links: Vec<String>,
}

impl HostView {
    fn now() -> Self {
        let sysctls = namespace::SYSCTLS
            .iter()
            .map(|(name, _)| {
                let v = fs::read_to_string(format!("/proc/sys/{name}")).unwrap_or_default();
                (*name, v.trim().to_owned())
            })
            .collect();
        let mut links: Vec<String> = fs::read_dir("/sys/class/net")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|l| ["node0", "node0-peer", "cni0"].contains(&l.as_str()))
            .collect();
        links.sort();
        Self { sysctls, links }
    }

    fn unchanged(&self) -> anyhow::Result<()> {
        let now = Self::now();
        if now.sysctls != self.sysctls || now.links != self.links {
            bail!(
                "k8s: the cluster changed the host: sysctls {:?} -> {:?}, links {:?} -> {:?}",
                self.sysctls,
                now.sysctls,
                self.links,
                now.links
            );
        }
        Ok(())
    }
}

/// A system binary (containerd comes from Debian).
fn bin_or(name: &str) -> String {
    format!("/usr/bin/{name}")
}

fn kubectl(args: &[&str]) -> anyhow::Result<String> {
    let out = super::kubectl_command().args(args).output()?;
    if !out.status.success() {
        bail!("{}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn wait(what: &str, secs: u64, mut ready: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ready() {
        if let Some(dead) = DAEMONS.iter().find(|d| pid(d).is_some_and(|p| !alive(p))) {
            bail!(
                "k8s: {dead} exited while waiting for {what}; its log ({NODE_DIR}/log/{dead}.log) ends:\n{}",
                tail(dead)
            );
        }
        if Instant::now() > deadline {
            bail!("k8s: timed out after {secs} s waiting for {what} (logs in {NODE_DIR}/log)");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Ok(())
}

fn tail(daemon: &str) -> String {
    let log = fs::read_to_string(format!("{NODE_DIR}/log/{daemon}.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Starts a daemon inside the namespace, in its own process group so that
/// it outlives this command.
fn spawn(name: &str, program: &str, args: &[&str]) -> anyhow::Result<()> {
    let log = fs::File::create(format!("{NODE_DIR}/log/{name}.log"))?;
    let child = Command::new("nsenter")
        .arg(format!("--mount={}", namespace::mnt()))
        .arg(format!("--net={}", namespace::net()))
        .arg("--")
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start {program}"))?;
    fs::write(format!("{NODE_DIR}/pids/{name}"), child.id().to_string())?;
    Ok(())
}

fn pid(name: &str) -> Option<i32> {
    fs::read_to_string(format!("{NODE_DIR}/pids/{name}"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn alive(pid: i32) -> bool {
    // A zombie (our child not yet reaped) counts as dead.
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

pub fn signal(pid: i32, sig: i32) {
    // SAFETY: signalling a process this module started (or its leftovers).
    unsafe { libc::kill(pid, sig) };
}

/// Stops everything `up` started, whatever state it was left in.
pub fn down() -> anyhow::Result<()> {
    for name in DAEMONS.iter().rev() {
        if let Some(p) = pid(name).filter(|p| alive(*p)) {
            stop(p);
        }
    }
    // The containers' shims, in the node's mount namespace.
    if let Some(ns) = namespace::mnt_id() {
        for p in processes() {
            if fs::read_link(format!("/proc/{p}/ns/mnt")).is_ok_and(|l| l.to_string_lossy() == ns) {
                signal(p, libc::SIGKILL);
            }
        }
    }
    // The containers themselves, by their cgroups.
    cgroups::empty()?;
    namespace::remove()?;
    Ok(())
}

fn stop(pid: i32) {
    signal(pid, libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    signal(pid, libc::SIGKILL);
}

fn processes() -> Vec<i32> {
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse().ok())
        .collect()
}

/// What runs, how much memory each daemon holds, and whether the node is
/// Ready.
pub fn status() -> anyhow::Result<()> {
    let mut total = 0;
    for name in DAEMONS {
        match pid(name).filter(|p| alive(*p)) {
            Some(p) => {
                let rss = rss_kib(p);
                total += rss;
                println!("{name:<24} pid {p:<8} RSS {:>6} MiB", rss / 1024);
            }
            None => println!("{name:<24} not running"),
        }
    }
    if let Some(ns) = namespace::mnt_id() {
        let shims: Vec<i32> = processes()
            .into_iter()
            .filter(|p| {
                fs::read_to_string(format!("/proc/{p}/comm"))
                    .is_ok_and(|c| c.starts_with("containerd-shim"))
                    && fs::read_link(format!("/proc/{p}/ns/mnt"))
                        .is_ok_and(|l| l.to_string_lossy() == ns)
            })
            .collect();
        let rss: u64 = shims.iter().map(|p| rss_kib(*p)).sum();
        total += rss;
        println!(
            "{:<24} {:<12} RSS {:>6} MiB",
            "containerd shims",
            shims.len(),
            rss / 1024
        );
    }
    println!("{:<24} {:<12} RSS {:>6} MiB", "total", "", total / 1024);
    match kubectl(&["get", "nodes", "-o", "wide"]) {
        Ok(nodes) => print!("{nodes}"),
        Err(e) => println!("API server not answering: {e}"),
    }
    Ok(())
}

fn rss_kib(pid: i32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
