//! A private containerd with its CRI plugin, as a kubelet would talk to
//! it: its own config, root, state and socket under a scratch directory,
//! host-network pods (no CNI), images imported from podman (nothing is
//! pulled). Pods are made through the CRI API by [`Cri`].

use std::{
    collections::HashMap,
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use mamori::state::cri::{Client, ContainerMetadata, ImageSpec, PodSandboxMetadata};

use crate::podman;

/// The pod sandbox ("pause") image: busybox idling.
pub const PAUSE_IMAGE: &str = "localhost/mamori-test/pause:1.0";

pub struct Containerd {
    pub dir: PathBuf,
    pub socket: PathBuf,
    child: Child,
}

impl Containerd {
    pub fn start(dir: &Path) -> Self {
        let _ = fs::remove_dir_all(dir);
        fs::create_dir_all(dir).unwrap();
        let socket = dir.join("containerd.sock");
        let config = dir.join("config.toml");
        fs::write(
            &config,
            format!(
                r#"version = 2
root = "{root}"
state = "{state}"
[grpc]
  address = "{socket}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  # These machines refuse a lower oom_score_adj (the sandbox asks -998).
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "/usr/sbin/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{dir}/cni-bin"
    conf_dir = "{dir}/cni-conf"
"#,
                root = dir.join("root").display(),
                state = dir.join("state").display(),
                socket = socket.display(),
                dir = dir.display(),
            ),
        )
        .unwrap();
        let log = fs::File::create(dir.join("containerd.log")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("containerd is installed by cargo xtask setup");
        let mut c = Self {
            dir: dir.to_owned(),
            socket,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !c.socket.exists() {
            if let Some(s) = c.child.try_wait().unwrap() {
                panic!("containerd exited ({s}): {}", c.log());
            }
            assert!(
                Instant::now() < deadline,
                "containerd did not start: {}",
                c.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        c.import(&pause_image());
        c.import(podman::image());
        c
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    /// Copies a podman image into containerd's `k8s.io` namespace.
    fn import(&self, image: &str) {
        let tar = self.dir.join("image.tar");
        let _ = fs::remove_file(&tar);
        run(Command::new("podman")
            .args(["save", "--format", "docker-archive", "-o"])
            .arg(&tar)
            .arg(image));
        run(Command::new("ctr")
            .arg("--address")
            .arg(&self.socket)
            .args(["-n", "k8s.io", "images", "import"])
            .arg(&tar));
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Shims outlive containerd: stop those of this instance, with
        // their containers.
        let socket = self.socket.to_string_lossy().into_owned();
        for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
            let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            if cmdline.starts_with("/usr/bin/containerd-shim")
                && cmdline.contains(&socket)
                && let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>()
            {
                // SAFETY: signalling a process this test started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        // Then what they left mounted, and the directory.
        let mounts = fs::read_to_string("/proc/mounts").unwrap_or_default();
        let dir = self.dir.to_string_lossy().into_owned();
        for point in mounts.lines().filter_map(|l| l.split(' ').nth(1)) {
            if point.starts_with(&dir) {
                let c = std::ffi::CString::new(point).unwrap();
                // SAFETY: a valid C string; detaching our own mounts.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Builds the sandbox image once (`podman build` of a FROM-scratch file).
fn pause_image() -> String {
    static DONE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("mamori-pause-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        podman::busybox_rootfs(&dir.join("rootfs"));
        fs::write(
            dir.join("Containerfile"),
            "FROM scratch\nCOPY rootfs/ /\n\
             CMD [\"/bin/sh\", \"-c\", \"trap 'exit 0' TERM; while true; do sleep 1; done\"]\n",
        )
        .unwrap();
        run(Command::new("podman")
            .args([
                "--runtime",
                "/usr/sbin/runc",
                "--cgroup-manager",
                "cgroupfs",
                "build",
                "-q",
                "-t",
                PAUSE_IMAGE,
            ])
            .arg(&dir));
        let _ = fs::remove_dir_all(&dir);
    });
    PAUSE_IMAGE.to_owned()
}

/// What a test asks of the CRI API, as a kubelet would.
pub struct Cri {
    rt: tokio::runtime::Runtime,
    client: Client,
}

/// `NamespaceMode::NODE`: the host's namespace (no CNI needed).
const NODE: i32 = 2;

impl Cri {
    pub fn connect(socket: &Path) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = rt.block_on(Client::connect(socket)).unwrap();
        Self { rt, client }
    }

    fn call<Req, Resp>(&self, method: &'static str, req: Req) -> Resp
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        self.rt
            .block_on(self.client.call(method, req))
            .unwrap_or_else(|e| panic!("CRI {method}: {e}"))
    }

    /// Runs a host-network pod; returns its sandbox id and config.
    pub fn run_pod(
        &self,
        name: &str,
        namespace: &str,
        uid: &str,
        labels: &[(&str, &str)],
    ) -> (String, PodSandboxConfig) {
        let config = PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: name.into(),
                uid: uid.into(),
                namespace: namespace.into(),
                attempt: 0,
            }),
            // Host-network pods share the host's UTS namespace: no hostname.
            hostname: String::new(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            linux: Some(LinuxPodSandboxConfig {
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(NamespaceOption {
                        network: NODE,
                        ..NamespaceOption::default()
                    }),
                    privileged: false,
                }),
            }),
        };
        let r: RunPodSandboxResponse = self.call(
            "RunPodSandbox",
            RunPodSandboxRequest {
                config: Some(config.clone()),
            },
        );
        (r.pod_sandbox_id, config)
    }

    /// Creates and starts a container in the pod; returns its id.
    pub fn run_container(
        &self,
        pod: &(String, PodSandboxConfig),
        name: &str,
        image: &str,
        command: &[&str],
    ) -> String {
        let r: CreateContainerResponse = self.call(
            "CreateContainer",
            CreateContainerRequest {
                pod_sandbox_id: pod.0.clone(),
                config: Some(ContainerConfig {
                    metadata: Some(ContainerMetadata {
                        name: name.into(),
                        attempt: 0,
                    }),
                    image: Some(ImageSpec {
                        image: image.into(),
                    }),
                    command: command.iter().map(|s| (*s).to_owned()).collect(),
                    // A container label, as a kubelet sets its own.
                    labels: HashMap::from([("team".to_owned(), "payments".to_owned())]),
                }),
                sandbox_config: Some(pod.1.clone()),
            },
        );
        let _: Empty = self.call(
            "StartContainer",
            StartContainerRequest {
                container_id: r.container_id.clone(),
            },
        );
        r.container_id
    }

    /// Stops and removes the pod and its containers (best effort: what
    /// is left is killed when containerd stops).
    pub fn remove_pod(&self, id: &str) {
        for method in ["StopPodSandbox", "RemovePodSandbox"] {
            let req = PodSandboxIdRequest {
                pod_sandbox_id: id.into(),
            };
            if let Err(e) = self.rt.block_on(self.client.call::<_, Empty>(method, req)) {
                eprintln!("cleanup: CRI {method}: {e}");
            }
        }
    }
}

// The CRI messages a test sends (field numbers from cri-api's api.proto);
// the agent's own client has those it reads.

#[derive(Clone, PartialEq, prost::Message)]
pub struct PodSandboxConfig {
    #[prost(message, optional, tag = "1")]
    pub metadata: Option<PodSandboxMetadata>,
    #[prost(string, tag = "2")]
    pub hostname: String,
    #[prost(map = "string, string", tag = "6")]
    pub labels: HashMap<String, String>,
    #[prost(message, optional, tag = "8")]
    pub linux: Option<LinuxPodSandboxConfig>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LinuxPodSandboxConfig {
    #[prost(message, optional, tag = "2")]
    pub security_context: Option<LinuxSandboxSecurityContext>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LinuxSandboxSecurityContext {
    #[prost(message, optional, tag = "1")]
    pub namespace_options: Option<NamespaceOption>,
    #[prost(bool, tag = "6")]
    pub privileged: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct NamespaceOption {
    #[prost(int32, tag = "1")]
    pub network: i32,
    #[prost(int32, tag = "2")]
    pub pid: i32,
    #[prost(int32, tag = "3")]
    pub ipc: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RunPodSandboxRequest {
    #[prost(message, optional, tag = "1")]
    pub config: Option<PodSandboxConfig>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RunPodSandboxResponse {
    #[prost(string, tag = "1")]
    pub pod_sandbox_id: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ContainerConfig {
    #[prost(message, optional, tag = "1")]
    pub metadata: Option<ContainerMetadata>,
    #[prost(message, optional, tag = "2")]
    pub image: Option<ImageSpec>,
    #[prost(string, repeated, tag = "3")]
    pub command: Vec<String>,
    #[prost(map = "string, string", tag = "9")]
    pub labels: HashMap<String, String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CreateContainerRequest {
    #[prost(string, tag = "1")]
    pub pod_sandbox_id: String,
    #[prost(message, optional, tag = "2")]
    pub config: Option<ContainerConfig>,
    #[prost(message, optional, tag = "3")]
    pub sandbox_config: Option<PodSandboxConfig>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CreateContainerResponse {
    #[prost(string, tag = "1")]
    pub container_id: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StartContainerRequest {
    #[prost(string, tag = "1")]
    pub container_id: String,
}

/// StopPodSandboxRequest and RemovePodSandboxRequest.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PodSandboxIdRequest {
    #[prost(string, tag = "1")]
    pub pod_sandbox_id: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Empty {}
