//! Who reports: the host (ECS `host.*`) and this agent (`agent.*`), read
//! once at start.

use std::path::Path;

/// The host and agent facts every ECS document carries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// The node name in Kubernetes (`MAMORI_HOSTNAME`), else the kernel's.
    pub host_name: String,
    /// `/etc/machine-id`; empty when unreadable.
    pub host_id: String,
    pub boot_id: String,
    pub architecture: String,
    pub kernel: String,
    /// From os-release: `debian`, `Debian GNU/Linux`, `12`.
    pub os_id: String,
    pub os_name: String,
    pub os_version: String,
    /// Stable per host: derived from the machine id.
    pub agent_id: String,
    /// New at every start, so restarts show in the data.
    pub agent_ephemeral_id: String,
    pub agent_version: String,
}

impl Identity {
    /// Reads the host's files. `root` is where the host's `/etc` is seen
    /// (`/` on a host, `/host` in a DaemonSet pod that mounts it).
    pub fn detect(host_name: &str, root: &Path) -> Self {
        let read = |p: &Path| {
            std::fs::read_to_string(p)
                .map(|s| s.trim().to_owned())
                .unwrap_or_default()
        };
        let mut host_id = read(&root.join("etc/machine-id"));
        if host_id.is_empty() {
            host_id = read(&root.join("var/lib/dbus/machine-id"));
        }
        let os = read(&root.join("etc/os-release"));
        let os_field = |key: &str| {
            os.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .map(|v| v.trim_matches('"').to_owned())
                .unwrap_or_default()
        };
        let uts = uname();
        Self {
            host_name: host_name.to_owned(),
            agent_id: if host_id.is_empty() {
                String::new()
            } else {
                super::ids::hex_digest(&[b"mamori-agent", host_id.as_bytes()], 16)
            },
            host_id,
            boot_id: read(Path::new("/proc/sys/kernel/random/boot_id")),
            architecture: uts.1,
            kernel: uts.0,
            os_id: os_field("ID"),
            os_name: os_field("NAME"),
            os_version: os_field("VERSION_ID"),
            agent_ephemeral_id: super::ids::random_hex(16),
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// (release, machine) from uname(2).
fn uname() -> (String, String) {
    // SAFETY: utsname is plain bytes; uname fills it or fails.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return Default::default();
    }
    let field = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    (field(&u.release), field(&u.machine))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_host() {
        let id = Identity::detect("node-1", Path::new("/"));
        assert_eq!(id.host_name, "node-1");
        assert_eq!(id.architecture, std::env::consts::ARCH);
        assert!(!id.kernel.is_empty());
        assert_eq!(id.boot_id.len(), 36, "{}", id.boot_id);
        assert_ne!(
            id.agent_ephemeral_id,
            Identity::detect("node-1", Path::new("/")).agent_ephemeral_id
        );
    }

    #[test]
    fn agent_id_is_stable_for_a_machine_id() {
        let dir = std::env::temp_dir().join(format!("mamori-id-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::write(
            dir.join("etc/machine-id"),
            "0123456789abcdef0123456789abcdef\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("etc/os-release"),
            "NAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n",
        )
        .unwrap();
        let a = Identity::detect("n", &dir);
        let b = Identity::detect("n", &dir);
        assert_eq!(a.host_id, "0123456789abcdef0123456789abcdef");
        assert_eq!(a.agent_id, b.agent_id);
        assert_eq!(a.agent_id.len(), 32);
        assert_eq!(
            (a.os_id.as_str(), a.os_name.as_str(), a.os_version.as_str()),
            ("debian", "Debian GNU/Linux", "12")
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
