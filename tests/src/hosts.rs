//! Names in the host's resolver files, for the duration of a test.

use std::process::Command;

/// Mounts a copy of `/etc/hosts` with extra lines over it; unmounted on
/// drop, even when the test fails.
pub struct Hosts(std::path::PathBuf);

impl Hosts {
    pub fn with(extra: &str) -> Self {
        // A copy left mounted by a test that was killed is taken off first.
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        for _ in mounts
            .lines()
            .filter(|l| l.contains("/mamori-hosts-") && l.contains(" /etc/hosts "))
        {
            let _ = Command::new("umount").arg("/etc/hosts").status();
        }
        let copy = std::env::temp_dir().join(format!("mamori-hosts-{}", std::process::id()));
        let mut text = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
        text.push_str(extra);
        std::fs::write(&copy, text).unwrap();
        let ok = Command::new("mount")
            .args(["--bind", copy.to_str().unwrap(), "/etc/hosts"])
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount --bind over /etc/hosts");
        Hosts(copy)
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("/etc/hosts").status();
        let _ = std::fs::remove_file(&self.0);
    }
}
