//! Container identity from cgroup names.
//!
//! Runtimes name a container's cgroup after its id: `libpod-<id>.scope`
//! (podman), `docker-<id>.scope` or `/docker/<id>` (docker),
//! `cri-containerd-<id>.scope` or `.../<id>` (containerd), `crio-<id>.scope`
//! (CRI-O). The kernel reports the cgroup's leaf name and its parent's at
//! exec; the id is the 64-hex-digit run in either.
//!
//! Unfinished: runtime metadata (name, image, privileged, mounts) and
//! Kubernetes pod data are not looked up yet; those fields are absent.

use std::sync::Arc;

use rustc_hash::FxHashMap as HashMap;

use crate::event::Text;

/// A container a process runs in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Container {
    /// The full 64-hex id.
    pub full_id: Arc<str>,
    /// podman, docker, containerd, cri-o.
    pub runtime: &'static str,
}

impl Container {
    /// The 12-character id Falco shows.
    pub fn id(&self) -> &str {
        &self.full_id[..12.min(self.full_id.len())]
    }
}

/// Parses a container from the cgroup leaf and parent names.
pub fn from_cgroup(leaf: Option<&Text>, parent: Option<&Text>) -> Option<Container> {
    for name in [leaf, parent].into_iter().flatten() {
        let s = name.to_str_lossy();
        if s.contains("conmon") {
            return None; // podman's monitor process, not the container
        }
        if let Some(id) = hex_run(&s) {
            let runtime = if s.starts_with("libpod") {
                "podman"
            } else if s.starts_with("docker") {
                "docker"
            } else if s.starts_with("crio") {
                "cri-o"
            } else {
                "containerd"
            };
            return Some(Container {
                full_id: Arc::from(id),
                runtime,
            });
        }
    }
    None
}

/// The first run of exactly 64 lowercase hex digits.
fn hex_run(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && (b[i].is_ascii_digit() || (b'a'..=b'f').contains(&b[i])) {
            i += 1;
        }
        if i - start == 64 {
            return Some(&s[start..i]);
        }
        i += 1;
    }
    None
}

/// Containers learnt so far, by the kernel's cgroup id (so events of
/// processes the table does not know still find their container).
#[derive(Default)]
pub struct Containers {
    by_cgroup: HashMap<u64, Container>,
}

impl Containers {
    pub fn learn(&mut self, cgroup_id: u64, c: Container) {
        if cgroup_id != 0 {
            self.by_cgroup.insert(cgroup_id, c);
        }
    }

    pub fn by_cgroup(&self, cgroup_id: u64) -> Option<&Container> {
        self.by_cgroup.get(&cgroup_id)
    }

    pub fn len(&self) -> usize {
        self.by_cgroup.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_cgroup.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f1c8a2be7d9c0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071829";

    #[test]
    fn runtime_naming_schemes() {
        for (leaf, parent, runtime) in [
            (format!("libpod-{ID}.scope"), "machine.slice", "podman"),
            (format!("libpod-{ID}"), "libpod_parent", "podman"),
            (format!("docker-{ID}.scope"), "system.slice", "docker"),
            (ID.to_owned(), "docker", "containerd"),
            (
                format!("cri-containerd-{ID}.scope"),
                "kubepods-besteffort-pod1.slice",
                "containerd",
            ),
            (format!("crio-{ID}.scope"), "kubepods.slice", "cri-o"),
        ] {
            let c =
                from_cgroup(Some(&Text::from(leaf.as_str())), Some(&Text::from(parent))).unwrap();
            assert_eq!(&*c.full_id, ID);
            assert_eq!(c.id(), &ID[..12]);
            assert_eq!(c.runtime, runtime, "{leaf}");
        }
        // A sub-cgroup made inside the container: the id is in the parent.
        let c = from_cgroup(
            Some(&Text::from("container")),
            Some(&Text::from(format!("libpod-{ID}").as_str())),
        )
        .unwrap();
        assert_eq!(&*c.full_id, ID);
    }

    #[test]
    fn host_and_conmon_cgroups_are_not_containers() {
        assert!(
            from_cgroup(
                Some(&Text::from("session-3.scope")),
                Some(&Text::from("user-0.slice"))
            )
            .is_none()
        );
        assert!(
            from_cgroup(
                Some(&Text::from(format!("libpod-conmon-{ID}.scope").as_str())),
                None
            )
            .is_none()
        );
        assert!(from_cgroup(None, None).is_none());
    }
}
