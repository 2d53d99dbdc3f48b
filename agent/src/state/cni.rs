//! Container and pod addresses from the CNI plugins' result cache
//! (`/var/lib/cni/results/<network>-<id>-<ifname>`, written by libcni for
//! containerd's and CRI-O's pods and podman's CNI networks): the runtimes'
//! own state files do not carry them. Falco's `container.ip`,
//! `container.cni.json`, `k8s.pod.ip` and `k8s.pod.cni.json`.

use std::{fs, io::Read, path::Path};

use serde_json::Value as Json;

use super::runtime::Metadata;

const RESULTS: &str = "var/lib/cni/results";
/// Cache entries looked at, at most (one per network interface).
const MAX_ENTRIES: usize = 4096;
/// Bytes read of one entry, at most.
const MAX_BYTES: u64 = 64 * 1024;

/// Fills the addresses of container `id` (or of its pod's sandbox, whose
/// network a pod's containers share) into `m`.
pub fn attach(root: &Path, id: &str, m: &mut Metadata) {
    let sandbox = m.pod.as_ref().map(|p| p.sandbox_id.clone());
    let found = results(root, id).or_else(|| {
        sandbox
            .filter(|s| !s.is_empty() && s != id)
            .and_then(|s| results(root, &s))
    });
    if let Some((ips, json)) = found {
        m.ips = ips;
        m.cni_json = json;
    }
}

/// The addresses (IPv4 first) and the result JSON of the cache entries of
/// `id`, when there are any.
fn results(root: &Path, id: &str) -> Option<(Vec<String>, String)> {
    let needle = format!("-{id}-");
    let mut ips = Vec::new();
    let mut json = Vec::new();
    for entry in fs::read_dir(root.join(RESULTS))
        .ok()?
        .flatten()
        .take(MAX_ENTRIES)
    {
        let name = entry.file_name();
        if !name.to_string_lossy().contains(&needle) {
            continue;
        }
        let mut text = String::new();
        let Ok(file) = fs::File::open(entry.path()) else {
            continue;
        };
        if file.take(MAX_BYTES).read_to_string(&mut text).is_err() {
            continue;
        }
        let Ok(cached) = serde_json::from_str::<Json>(&text) else {
            continue;
        };
        let result = &cached["result"];
        for ip in result["ips"].as_array().into_iter().flatten() {
            if let Some(addr) = ip["address"].as_str() {
                ips.push(addr.split('/').next().unwrap_or(addr).to_owned());
            }
        }
        json.push(result.clone());
    }
    if json.is_empty() {
        return None;
    }
    ips.sort_by_key(|ip| ip.contains(':'));
    let json = match json.len() {
        1 => json.remove(0).to_string(),
        _ => Json::Array(json).to_string(),
    };
    Some((ips, json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_come_from_the_container_or_its_sandbox() {
        let root = std::env::temp_dir().join(format!("mamori-cni-{}", std::process::id()));
        let dir = root.join(RESULTS);
        fs::create_dir_all(&dir).unwrap();
        let (ctr, sandbox) = ("c".repeat(64), "s".repeat(64));
        let entry = |ip: &str| {
            format!(
                r#"{{"kind":"cniCacheV1","result":{{"cniVersion":"1.0.0","ips":[{{"address":"{ip}","gateway":"10.88.0.1"}}]}}}}"#
            )
        };
        fs::write(
            dir.join(format!("podman-{sandbox}-eth0")),
            entry("10.88.0.7/16"),
        )
        .unwrap();
        fs::write(
            dir.join(format!("podman-{sandbox}-eth1")),
            entry("fd00::7/64"),
        )
        .unwrap();
        let mut m = Metadata {
            pod: Some(super::super::runtime::Pod {
                sandbox_id: sandbox.clone(),
                ..Default::default()
            }),
            ..Default::default()
        };
        attach(&root, &ctr, &mut m);
        assert_eq!(m.ips, ["10.88.0.7", "fd00::7"]);
        assert!(
            m.cni_json.starts_with('[') && m.cni_json.contains("10.88.0.7/16"),
            "{}",
            m.cni_json
        );
        let mut alone = Metadata::default();
        attach(&root, &ctr, &mut alone);
        assert!(alone.ips.is_empty() && alone.cni_json.is_empty());
        let _ = fs::remove_dir_all(&root);
    }
}
