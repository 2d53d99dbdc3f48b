//! Runtime state laid out as podman 4, containerd 1.6 (CRI) and CRI-O
//! write it; the podman shapes were recorded from podman 4.3 on Debian.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::*;

const ID: &str = "b2d642a412a7b8c8f671332979259b57d111e29f35e925659e92fe7ae81cbb73";
const SANDBOX: &str = "5e1b0c0e7d2f4a3b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b";

struct Root(PathBuf);

impl Root {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("mamori-rt-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Self(p)
    }

    fn write(&self, rel: &str, v: &serde_json::Value) {
        let p = self.0.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, v.to_string()).unwrap();
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn podman_spec(privileged: bool) -> serde_json::Value {
    json!({
        "annotations": {
            "io.container.manager": "libpod",
            "io.podman.annotations.privileged": if privileged { "TRUE" } else { "FALSE" },
        },
        "mounts": [
            {"destination": "/hosttmp", "type": "bind", "source": "/tmp",
             "options": ["rw", "rprivate", "rbind"]},
            {"destination": "/data", "type": "bind", "source": "/srv/data",
             "options": ["ro", "rbind", "Z"]},
            {"destination": "/proc", "type": "proc", "source": "proc",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/etc/hosts", "type": "bind",
             "source": "/run/containers/storage/overlay-containers/x/userdata/hosts",
             "options": ["bind", "rprivate"]},
        ],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                           {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": if privileged { json!(null) } else { json!(["/proc/kcore"]) },
        },
    })
}

fn podman_storage() -> serde_json::Value {
    json!([{
        "id": ID,
        "names": ["probe2"],
        "image": "1dcc156bb52865cf2cfad7e2900820aaca828c9047c509b8a6a25764b3aeb159",
        "metadata": "{\"image-name\":\"localhost/mamori-test/busybox:1.0\",\"image-id\":\"1dcc156bb52865cf2cfad7e2900820aaca828c9047c509b8a6a25764b3aeb159\",\"name\":\"probe2\",\"created-at\":1795619137}",
        "created": "2026-11-25T15:05:37.46470101Z",
    }])
}

#[test]
fn podman_container_from_its_storage_and_bundle() {
    let root = Root::new("podman");
    root.write(
        &format!("var/lib/containers/storage/overlay-containers/{ID}/userdata/config.json"),
        &podman_spec(true),
    );
    root.write(
        "var/lib/containers/storage/overlay-containers/containers.json",
        &podman_storage(),
    );
    let m = lookup(root.path(), ID).unwrap();
    assert_eq!(m.name, "probe2");
    assert_eq!(m.image, "localhost/mamori-test/busybox:1.0");
    assert_eq!(
        m.image_parts(),
        ("localhost/mamori-test/busybox", "1.0", "")
    );
    assert!(m.image_id.starts_with("1dcc156bb528"));
    assert_eq!(m.privileged, Some(true));
    assert_eq!(m.host_network, Some(false));
    assert_eq!(m.created_ns, Some(1_795_619_137_464_701_010));
    assert_eq!(
        m.mounts,
        vec![
            Mount {
                source: "/tmp".into(),
                dest: "/hosttmp".into(),
                mode: String::new(),
                rdwr: true,
                propagation: "rprivate".into(),
            },
            Mount {
                source: "/srv/data".into(),
                dest: "/data".into(),
                mode: "Z".into(),
                rdwr: false,
                propagation: String::new(),
            },
        ],
        "proc and the runtime's /etc/hosts are not user mounts"
    );
    assert!(m.pod.is_none());
}

#[test]
fn privilege_without_an_annotation_is_read_from_the_spec() {
    let root = Root::new("heuristic");
    let caps: Vec<String> = (0..41).map(|i| format!("CAP_{i}")).collect();
    let mut spec = json!({"process": {"capabilities": {"bounding": caps}}, "linux": {}});
    root.write(
        &format!("var/lib/containers/storage/overlay-containers/{ID}/userdata/config.json"),
        &spec,
    );
    assert_eq!(lookup(root.path(), ID).unwrap().privileged, Some(true));
    spec["linux"]["maskedPaths"] = json!(["/proc/kcore"]);
    root.write(
        &format!("var/lib/containers/storage/overlay-containers/{ID}/userdata/config.json"),
        &spec,
    );
    assert_eq!(lookup(root.path(), ID).unwrap().privileged, Some(false));
}

#[test]
fn containerd_cri_container_through_runc_state() {
    let root = Root::new("containerd");
    let bundle = format!("/run/containerd/io.containerd.runtime.v2.task/k8s.io/{ID}");
    root.write(
        &format!("run/containerd/runc/k8s.io/{ID}/state.json"),
        &json!({"id": ID, "config": {"labels": [format!("bundle={bundle}")]}}),
    );
    root.write(
        &format!("{}/config.json", bundle.trim_start_matches('/')),
        &json!({
            "annotations": {
                "io.kubernetes.cri.container-type": "container",
                "io.kubernetes.cri.container-name": "web",
                "io.kubernetes.cri.image-name": "registry.local:5000/team/web:2.1",
                "io.kubernetes.cri.sandbox-id": SANDBOX,
                "io.kubernetes.cri.sandbox-name": "web-7d4b9",
                "io.kubernetes.cri.sandbox-namespace": "shop",
                "io.kubernetes.cri.sandbox-uid": "0b5d2c1e-6f1a-4f4e-9d7a-2c3b4a5d6e7f",
            },
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]},
        }),
    );
    let m = lookup(root.path(), ID).unwrap();
    assert_eq!(m.name, "web");
    assert_eq!(m.image_parts(), ("registry.local:5000/team/web", "2.1", ""));
    assert_eq!(m.host_network, Some(true), "no network namespace asked for");
    assert_eq!(m.host_pid, Some(false));
    assert_eq!(m.host_ipc, Some(true));
    let pod = m.pod.unwrap();
    assert_eq!(pod.name, "web-7d4b9");
    assert_eq!(pod.namespace, "shop");
    assert_eq!(pod.uid, "0b5d2c1e-6f1a-4f4e-9d7a-2c3b4a5d6e7f");
    assert_eq!(pod.sandbox_id, SANDBOX);
}

#[test]
fn crio_pod_labels_come_from_the_sandbox() {
    let root = Root::new("crio");
    let dir = "run/containers/storage/overlay-containers";
    root.write(
        &format!("{dir}/{ID}/userdata/config.json"),
        &json!({"annotations": {
            "io.kubernetes.container.name": "api",
            "io.kubernetes.cri-o.ImageName": "quay.io/team/api@sha256:abcd",
            "io.kubernetes.pod.name": "api-0",
            "io.kubernetes.pod.namespace": "prod",
            "io.kubernetes.pod.uid": "u-1",
            "io.kubernetes.cri-o.SandboxID": SANDBOX,
        }}),
    );
    root.write(
        &format!("{dir}/{SANDBOX}/userdata/config.json"),
        &json!({"annotations": {
            "io.kubernetes.cri-o.Labels":
                "{\"app\":\"api\",\"tier\":\"back\",\"io.kubernetes.pod.name\":\"api-0\"}",
        }}),
    );
    let m = lookup(root.path(), ID).unwrap();
    assert_eq!(m.name, "api");
    assert_eq!(m.image_parts(), ("quay.io/team/api", "", "sha256:abcd"));
    let pod = m.pod.unwrap();
    assert_eq!(
        (pod.name.as_str(), pod.namespace.as_str()),
        ("api-0", "prod")
    );
    assert_eq!(
        pod.labels,
        vec![("app".into(), "api".into()), ("tier".into(), "back".into())]
    );
}

#[test]
fn unknown_or_malformed_ids_find_nothing() {
    let root = Root::new("none");
    assert_eq!(lookup(root.path(), ID), None);
    assert_eq!(lookup(root.path(), "../../etc"), None);
    root.write(
        &format!("var/lib/containers/storage/overlay-containers/{ID}/userdata/config.json"),
        &json!("not a spec"),
    );
    let m = lookup(root.path(), ID).unwrap();
    assert_eq!(m.name, "", "a broken spec gives empty fields, not a crash");
}

#[test]
fn image_references_split_into_parts() {
    for (image, parts) in [
        ("busybox", ("busybox", "", "")),
        ("busybox:1.36", ("busybox", "1.36", "")),
        ("localhost:5000/a/b", ("localhost:5000/a/b", "", "")),
        ("localhost:5000/a/b:v1", ("localhost:5000/a/b", "v1", "")),
        ("a/b:v1@sha256:ff", ("a/b", "v1", "sha256:ff")),
        ("", ("", "", "")),
    ] {
        assert_eq!(split_image(image), parts, "{image}");
    }
}

#[test]
fn namespaces_joined_by_path_are_compared_with_the_hosts() {
    // The pod's containers join the sandbox's namespaces by path; here
    // the "sandbox" is this very process: the same namespace as the
    // agent's, so the host's.
    let root = Root::new("nspath");
    let me = std::process::id();
    root.write(
        &format!("var/lib/containers/storage/overlay-containers/{ID}/userdata/config.json"),
        &json!({"linux": {"namespaces": [
            {"type": "network", "path": format!("/proc/{me}/ns/net")},
            {"type": "pid"},
        ]}}),
    );
    // The real /proc, seen through the scratch root.
    std::os::unix::fs::symlink("/proc", root.path().join("proc")).unwrap();
    let m = lookup(root.path(), ID).unwrap();
    assert_eq!(m.host_network, Some(true));
    assert_eq!(m.host_pid, Some(false), "a namespace of its own");
    assert_eq!(m.host_ipc, Some(true), "not listed: the host's");
}
