//! Resolves [`KernelOffsets`] from the running kernel's BTF.

use mamori_common::{KernelOffsets, offsets::MISSING};

use super::btf::Btf;

/// Offsets for this kernel, and the optional members it lacks.
#[derive(Debug)]
pub struct Resolved {
    pub offsets: KernelOffsets,
    pub missing_optional: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("the kernel's BTF lacks members mamori needs: {}", .0.join(", "))]
pub struct MissingMembers(pub Vec<String>);

/// Fills every member of [`KernelOffsets::MEMBERS`]. A member path may list
/// alternatives separated by `|` (renamed members), tried in order.
pub fn resolve(btf: &Btf) -> Result<Resolved, MissingMembers> {
    let mut offsets = KernelOffsets::missing();
    let mut missing_required = Vec::new();
    let mut missing_optional = Vec::new();
    for (i, (ty, path, required)) in KernelOffsets::MEMBERS.iter().enumerate() {
        let found = path
            .split('|')
            .find_map(|alt| btf.member_offset(ty, alt).ok());
        match found {
            Some(off) if off != MISSING => offsets.set(i, off),
            _ if *required => missing_required.push(format!("{ty}.{path}")),
            _ => missing_optional.push(format!("{ty}.{path}")),
        }
    }
    if !missing_required.is_empty() {
        return Err(MissingMembers(missing_required));
    }
    Ok(Resolved {
        offsets,
        missing_optional,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_running_kernel_has_every_required_member() {
        let data = std::fs::read("/sys/kernel/btf/vmlinux").unwrap();
        let btf = Btf::parse(&data).unwrap();
        let r = resolve(&btf).unwrap();
        assert_ne!(r.offsets.task_cred, MISSING);
        assert_ne!(r.offsets.dentry_name_ptr, MISSING);
        assert_eq!(r.offsets.path_mnt, 0, "struct path starts with mnt");
    }

    #[test]
    fn the_io_uring_numbers_are_the_running_kernels() {
        let data = std::fs::read("/sys/kernel/btf/vmlinux").unwrap();
        let btf = Btf::parse(&data).unwrap();
        for (op, name, _) in mamori_common::uring::OPS {
            assert_eq!(btf.enum_value(name).unwrap(), i64::from(*op), "{name}");
        }
        let bit = btf.enum_value("REQ_F_CQE_SKIP_BIT").unwrap();
        assert_eq!(mamori_common::uring::REQ_F_CQE_SKIP, 1 << bit);
        let r = resolve(&btf).unwrap();
        assert!(
            !r.missing_optional.iter().any(|m| m.starts_with("io_")),
            "{:?}",
            r.missing_optional
        );
    }
}
