//! The node's configuration files: containerd's (its own root; state and
//! socket on the namespace's private /run), the CNI bridge for pods, and
//! the kubelet's (what these machines need, see the comments).

use std::fs;

use super::{NODE_DIR, cgroups::CGROUP, images};

const POD_CIDR: &str = "10.244.0.0/24";

pub fn etc(f: &str) -> String {
    format!("{NODE_DIR}/etc/{f}")
}

pub fn write() -> anyhow::Result<()> {
    let p = |f: &str| format!("{NODE_DIR}/pki/{f}");
    fs::write(
        etc("containerd.toml"),
        format!(
            r#"version = 2
root = "{NODE_DIR}/containerd"
state = "/run/containerd"
[grpc]
  address = "/run/containerd/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause}"
  # root here may not lower oom_score_adj (no CAP_SYS_RESOURCE).
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "/usr/sbin/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{NODE_DIR}/cni/conf"
"#,
            pause = images::PAUSE,
        ),
    )?;
    fs::write(
        format!("{NODE_DIR}/cni/conf/10-bridge.conflist"),
        format!(
            r#"{{"cniVersion": "0.4.0", "name": "pods", "plugins": [
  {{"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {{"type": "host-local", "subnet": "{POD_CIDR}", "dataDir": "{NODE_DIR}/cni/ipam",
            "routes": [{{"dst": "0.0.0.0/0"}}]}}}}]}}
"#
        ),
    )?;
    fs::write(etc("resolv.conf"), "nameserver 127.0.0.1\n")?;
    fs::write(
        etc("kubelet.yaml"),
        format!(
            r#"apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
cgroupRoot: /{CGROUP}
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
authentication:
  anonymous: {{enabled: false}}
  webhook: {{enabled: true}}
  x509: {{clientCAFile: {ca}}}
authorization: {{mode: Webhook}}
tlsCertFile: {crt}
tlsPrivateKeyFile: {key}
readOnlyPort: 0
resolvConf: {resolv}
clusterDomain: cluster.local
# These machines: no CAP_SYS_RESOURCE (no negative oom_score_adj), no
# swap accounting, cgroups v1.
oomScoreAdj: 0
failSwapOn: false
failCgroupV1: false
# The imported images can never be pulled again: never collect them. Other
# jobs fill this disk: evict only when it is really full.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {{memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}}
"#,
            ca = p("ca.crt"),
            crt = p("kubelet-serving.crt"),
            key = p("kubelet-serving.key"),
            resolv = etc("resolv.conf"),
        ),
    )?;
    Ok(())
}
