//! The pseudo file system eBPF tracing needs: tracefs, where tracepoints
//! are named. Some hosts (these machines included) boot without it; the
//! agent mounts it then. Nothing else is mounted: the agent pins nothing
//! (no bpffs) and reads nothing from debugfs, so where the host has tracefs
//! the agent needs no CAP_SYS_ADMIN.

use std::{ffi::CString, fs, io, path::Path};

/// `(file system type, mount point)` the agent needs.
const NEEDED: &[(&str, &str)] = &[("tracefs", "/sys/kernel/tracing")];
/// tracefs where older setups have it (debugfs mounted, tracefs below it);
/// aya looks there too.
const ALSO: &[(&str, &str)] = &[("tracefs", "/sys/kernel/debug/tracing")];

#[derive(Debug, thiserror::Error)]
#[error("cannot mount {fstype} on {target}: {source}")]
pub struct MountError {
    fstype: &'static str,
    target: &'static str,
    #[source]
    source: io::Error,
}

/// Mounts tracefs where it is missing. Returns what it mounted.
pub fn ensure() -> Result<Vec<&'static str>, MountError> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut mounted = Vec::new();
    for &(fstype, target) in NEEDED {
        if is_mounted(&mountinfo, fstype, target)
            || ALSO
                .iter()
                .any(|&(t, at)| t == fstype && is_mounted(&mountinfo, t, at))
        {
            continue;
        }
        mount(fstype, target).map_err(|source| MountError {
            fstype,
            target,
            source,
        })?;
        mounted.push(target);
    }
    Ok(mounted)
}

/// True when `mountinfo` lists `fstype` mounted at `target`.
fn is_mounted(mountinfo: &str, fstype: &str, target: &str) -> bool {
    mountinfo.lines().any(|line| {
        let mut halves = line.splitn(2, " - ");
        let (Some(left), Some(right)) = (halves.next(), halves.next()) else {
            return false;
        };
        left.split(' ').nth(4) == Some(target) && right.split(' ').next() == Some(fstype)
    })
}

fn mount(fstype: &str, target: &str) -> io::Result<()> {
    if !Path::new(target).exists() {
        fs::create_dir_all(target)?;
    }
    let src = CString::new(fstype).map_err(io::Error::other)?;
    let dst = CString::new(target).map_err(io::Error::other)?;
    // SAFETY: valid NUL-terminated strings; no data argument.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            dst.as_ptr(),
            src.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::is_mounted;

    #[test]
    fn parses_mountinfo_lines() {
        let info = "36 25 0:12 / /sys/kernel/tracing rw,nosuid - tracefs tracefs rw\n\
                    37 25 0:13 / /sys/kernel/debug rw - debugfs debugfs rw\n";
        assert!(is_mounted(info, "tracefs", "/sys/kernel/tracing"));
        assert!(is_mounted(info, "debugfs", "/sys/kernel/debug"));
        assert!(!is_mounted(info, "bpf", "/sys/fs/bpf"));
        assert!(!is_mounted(info, "tracefs", "/sys/kernel/debug"));
    }
}
