//! Which cgroup hierarchy names containers on this host.
//!
//! On a pure v2 host every process sits in the unified hierarchy and the
//! kernel's own `bpf_get_current_cgroup_id` is right. On v1 and hybrid
//! hosts (these machines: v1 controllers, an empty v2 tree) container
//! runtimes create their cgroups under the v1 controllers, so the kernel
//! side reads the cgroup of one v1 subsystem instead.

use std::fs;

use super::btf::Btf;

/// `Settings::cgroup_subsys` value meaning "use the v2 hierarchy".
pub const UNIFIED: u32 = u32::MAX;

/// v1 subsystems to use, best first: every container runtime puts its
/// containers in these.
const PREFERRED: &[&str] = &["pids", "memory", "cpu", "cpuset", "devices"];

/// The chosen hierarchy: [`UNIFIED`] or a v1 subsystem id, with its name.
pub fn choose(btf: &Btf) -> (u32, &'static str) {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let v1 = v1_controllers(&mountinfo);
    for &name in PREFERRED {
        if v1.iter().any(|c| c == name)
            && let Ok(id) = btf.enum_value(&format!("{name}_cgrp_id"))
        {
            return (id as u32, name);
        }
    }
    (UNIFIED, "unified")
}

/// Controllers mounted as cgroup v1 hierarchies.
fn v1_controllers(mountinfo: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((_, right)) = line.split_once(" - ") else {
            continue;
        };
        let mut fields = right.split(' ');
        if fields.next() != Some("cgroup") {
            continue;
        }
        let opts = fields.nth(1).unwrap_or_default();
        out.extend(opts.split(',').map(str::to_owned));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::v1_controllers;

    #[test]
    fn lists_v1_controllers_only() {
        let info = "30 25 0:26 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
                    31 25 0:27 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n\
                    32 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";
        let c = v1_controllers(info);
        assert!(c.contains(&"pids".to_owned()));
        assert!(c.contains(&"cpuacct".to_owned()));
        assert!(!c.contains(&"cgroup2".to_owned()));
    }
}
