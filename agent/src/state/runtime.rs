//! Container metadata from the runtimes' own state on disk: the OCI bundle
//! every runtime writes for runc (`config.json`: mounts, namespaces,
//! capabilities, annotations) and containers/storage's `containers.json`
//! (podman and CRI-O: name and image).
//!
//! Read from the host's root (`MAMORI_HOST_ROOT` in a pod), so no runtime
//! socket or API is needed. Kubernetes pod name, namespace and uid come
//! from the annotations containerd's and CRI-O's CRI plugins put on each
//! container.
//!
//! Pod labels under containerd live only in its CRI API: `cri.rs` asks
//! for them; CRI-O's come from the sandbox's annotations.

use std::{
    fs,
    path::{Path, PathBuf},
};

use serde_json::Value as Json;

/// What a runtime says about one container.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Metadata {
    pub name: String,
    /// As the container was created from: `repo:tag` or `repo@digest`.
    pub image: String,
    pub image_id: String,
    pub privileged: Option<bool>,
    /// Volumes and bind mounts (the runtime's own plumbing left out).
    pub mounts: Vec<Mount>,
    pub labels: Vec<(String, String)>,
    pub host_network: Option<bool>,
    pub host_pid: Option<bool>,
    pub host_ipc: Option<bool>,
    /// ns since the epoch.
    pub created_ns: Option<u64>,
    pub pod: Option<Pod>,
    /// Addresses from the CNI result cache (IPv4 first); a pod's are its
    /// sandbox's (see [`super::cni`]).
    pub ips: Vec<String>,
    /// The CNI result(s) as JSON, empty when unknown.
    pub cni_json: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Mount {
    pub source: String,
    pub dest: String,
    /// SELinux relabel mode (`z`, `Z`) when given.
    pub mode: String,
    pub rdwr: bool,
    pub propagation: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Pod {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub sandbox_id: String,
    pub labels: Vec<(String, String)>,
}

impl Metadata {
    /// Repository, tag and digest of `image`.
    pub fn image_parts(&self) -> (&str, &str, &str) {
        split_image(&self.image)
    }
}

/// `registry/repo:tag@digest` into its parts; a colon before the last `/`
/// is a registry port, not a tag.
pub fn split_image(image: &str) -> (&str, &str, &str) {
    let (rest, digest) = image.split_once('@').unwrap_or((image, ""));
    let slash = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[slash..].rfind(':') {
        Some(i) => (&rest[..slash + i], &rest[slash + i + 1..], digest),
        None => (rest, "", digest),
    }
}

/// Looks a container up under `root`; `None` when no runtime state for it
/// is found (it may be gone already).
pub fn lookup(root: &Path, full_id: &str) -> Option<Metadata> {
    if full_id.len() != 64 || !full_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let bundle = bundle_config(root, full_id);
    let storage = storage_entry(root, full_id);
    if bundle.is_none() && storage.is_none() {
        return None;
    }
    let mut m = Metadata::default();
    if let Some(spec) = &bundle {
        from_oci_spec(spec, &mut m);
        host_namespaces(root, spec, &mut m);
    }
    if let Some(entry) = &storage {
        from_storage(entry, &mut m);
    }
    if let Some(pod) = &mut m.pod
        && pod.labels.is_empty()
        && !pod.sandbox_id.is_empty()
        && pod.sandbox_id != full_id
        && let Some(sandbox) = bundle_config(root, &pod.sandbox_id)
    {
        pod.labels = crio_labels(&sandbox);
    }
    Some(m)
}

/// Where runtimes keep a container's OCI `config.json`.
fn bundle_config(root: &Path, id: &str) -> Option<Json> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    // runc's state names the bundle of whichever runtime created it.
    for state_dir in [
        "run/runc",
        "run/containerd/runc/k8s.io",
        "run/containerd/runc/default",
    ] {
        if let Some(b) = runc_bundle(&root.join(state_dir).join(id).join("state.json")) {
            candidates.push(root.join(b.trim_start_matches('/')).join("config.json"));
        }
    }
    for dir in [
        "var/lib/containers/storage/overlay-containers",
        "run/containers/storage/overlay-containers",
    ] {
        candidates.push(root.join(dir).join(id).join("userdata/config.json"));
    }
    for ns in ["k8s.io", "default", "moby"] {
        candidates.push(
            root.join("run/containerd/io.containerd.runtime.v2.task")
                .join(ns)
                .join(id)
                .join("config.json"),
        );
    }
    candidates.iter().find_map(|p| read_json(p))
}

fn runc_bundle(state: &Path) -> Option<String> {
    let s = read_json(state)?;
    s["config"]["labels"]
        .as_array()?
        .iter()
        .filter_map(Json::as_str)
        .find_map(|l| l.strip_prefix("bundle=").map(str::to_owned))
}

/// containers/storage's record of the container (podman, CRI-O).
fn storage_entry(root: &Path, id: &str) -> Option<Json> {
    let list =
        read_json(&root.join("var/lib/containers/storage/overlay-containers/containers.json"))?;
    list.as_array()?
        .iter()
        .find(|c| c["id"].as_str() == Some(id))
        .cloned()
}

fn read_json(path: &Path) -> Option<Json> {
    // Runtime state files are small; a huge one is not what we think it is.
    let meta = fs::metadata(path).ok()?;
    if meta.len() > 64 << 20 {
        return None;
    }
    serde_json::from_slice(&fs::read(path).ok()?).ok()
}

fn annotation<'a>(spec: &'a Json, key: &str) -> Option<&'a str> {
    spec["annotations"][key].as_str().filter(|s| !s.is_empty())
}

fn from_oci_spec(spec: &Json, m: &mut Metadata) {
    let a = |k: &str| annotation(spec, k).map(str::to_owned);
    // containerd (CRI) and CRI-O name the container and image here.
    m.name = a("io.kubernetes.cri.container-name")
        .or_else(|| a("io.kubernetes.container.name"))
        .unwrap_or_default();
    m.image = a("io.kubernetes.cri.image-name")
        .or_else(|| a("io.kubernetes.cri-o.ImageName"))
        .unwrap_or_default();
    m.privileged = annotation(spec, "io.podman.annotations.privileged")
        .map(|v| v.eq_ignore_ascii_case("true"))
        .or_else(|| Some(looks_privileged(spec)));
    m.mounts = spec["mounts"]
        .as_array()
        .map(|v| v.iter().filter_map(user_mount).collect())
        .unwrap_or_default();
    m.created_ns = a("io.kubernetes.cri-o.Created")
        .or_else(|| a("org.opencontainers.container.created"))
        .and_then(|t| crate::time::parse_rfc3339(&t));

    let pod_name = a("io.kubernetes.cri.sandbox-name").or_else(|| a("io.kubernetes.pod.name"));
    if let Some(name) = pod_name {
        m.pod = Some(Pod {
            name,
            namespace: a("io.kubernetes.cri.sandbox-namespace")
                .or_else(|| a("io.kubernetes.pod.namespace"))
                .unwrap_or_default(),
            uid: a("io.kubernetes.cri.sandbox-uid")
                .or_else(|| a("io.kubernetes.pod.uid"))
                .unwrap_or_default(),
            sandbox_id: a("io.kubernetes.cri.sandbox-id")
                .or_else(|| a("io.kubernetes.cri-o.SandboxID"))
                .unwrap_or_default(),
            labels: Vec::new(),
        });
    }
}

/// Whether the container shares the host's network, pid and IPC
/// namespaces: one the spec does not list is the host's; one it joins by
/// path (a pod's containers join the sandbox's) is the host's when that
/// path is the same namespace as the agent's own.
fn host_namespaces(root: &Path, spec: &Json, m: &mut Metadata) {
    let Some(list) = spec["linux"]["namespaces"].as_array() else {
        return;
    };
    let shares = |kind: &str, file: &str| -> Option<bool> {
        let Some(entry) = list.iter().find(|n| n["type"].as_str() == Some(kind)) else {
            return Some(true);
        };
        let Some(path) = entry["path"].as_str().filter(|p| !p.is_empty()) else {
            return Some(false);
        };
        let ns = fs::read_link(root.join(path.trim_start_matches('/'))).ok()?;
        // The agent runs in the host's namespaces (hostNetwork/hostPID in
        // the DaemonSet); pid 1's may not be readable.
        let host = fs::read_link(Path::new("/proc/self/ns").join(file)).ok()?;
        Some(ns == host)
    };
    m.host_network = shares("network", "net");
    m.host_pid = shares("pid", "pid");
    m.host_ipc = shares("ipc", "ipc");
}

/// Pod labels as CRI-O records them on the sandbox.
fn crio_labels(sandbox: &Json) -> Vec<(String, String)> {
    let Some(text) = annotation(sandbox, "io.kubernetes.cri-o.Labels") else {
        return Vec::new();
    };
    let Ok(Json::Object(map)) = serde_json::from_str::<Json>(text) else {
        return Vec::new();
    };
    let mut labels: Vec<(String, String)> = map
        .into_iter()
        .filter(|(k, _)| !k.starts_with("io.kubernetes."))
        .filter_map(|(k, v)| Some((k, v.as_str()?.to_owned())))
        .collect();
    labels.sort();
    labels
}

/// Without a runtime's word for it: privileged containers keep every
/// capability and have no masked paths.
fn looks_privileged(spec: &Json) -> bool {
    let caps = spec["process"]["capabilities"]["bounding"]
        .as_array()
        .map_or(0, Vec::len);
    let masked = spec["linux"]["maskedPaths"]
        .as_array()
        .is_some_and(|v| !v.is_empty());
    caps >= 38 && !masked
}

/// Destinations the runtime mounts for its own plumbing.
const PLUMBING: &[&str] = &[
    "/etc/hosts",
    "/etc/hostname",
    "/etc/resolv.conf",
    "/run/.containerenv",
    "/dev/shm",
    "/dev/termination-log",
    "/run/secrets",
];

fn user_mount(m: &Json) -> Option<Mount> {
    let options: Vec<&str> = m["options"]
        .as_array()
        .map(|v| v.iter().filter_map(Json::as_str).collect())
        .unwrap_or_default();
    let is_bind =
        m["type"].as_str() == Some("bind") || options.iter().any(|o| *o == "bind" || *o == "rbind");
    let dest = m["destination"].as_str()?;
    if !is_bind || PLUMBING.contains(&dest) {
        return None;
    }
    let propagation = options
        .iter()
        .find(|o| {
            matches!(
                **o,
                "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave"
            )
        })
        .copied()
        .unwrap_or("");
    Some(Mount {
        source: m["source"].as_str().unwrap_or("").to_owned(),
        dest: dest.to_owned(),
        mode: options
            .iter()
            .find(|o| **o == "z" || **o == "Z")
            .copied()
            .unwrap_or("")
            .to_owned(),
        rdwr: !options.contains(&"ro"),
        propagation: propagation.to_owned(),
    })
}

fn from_storage(entry: &Json, m: &mut Metadata) {
    let meta: Json = entry["metadata"]
        .as_str()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Json::Null);
    if m.name.is_empty() {
        m.name = meta["name"]
            .as_str()
            .or_else(|| entry["names"][0].as_str())
            .unwrap_or_default()
            .to_owned();
    }
    if m.image.is_empty() {
        m.image = meta["image-name"].as_str().unwrap_or_default().to_owned();
    }
    m.image_id = meta["image-id"]
        .as_str()
        .or_else(|| entry["image"].as_str())
        .unwrap_or_default()
        .to_owned();
    if m.created_ns.is_none() {
        m.created_ns = entry["created"]
            .as_str()
            .and_then(crate::time::parse_rfc3339);
    }
}

#[cfg(test)]
#[path = "runtime_tests.rs"]
mod tests;
