//! `fs.path.*`: the paths of path-taking syscalls, as passed and resolved
//! against the working directory (lexically; a path relative to a
//! directory fd other than the cwd stays as passed).

use mamori_rules::{Field as F, Value};

use crate::event::text::resolve;
use crate::{
    event::{Event, Param},
    state::Process,
};

const AT_FDCWD: i32 = -100;

/// Which parameters hold the paths, and which register the directory fd.
struct Layout {
    name: Option<usize>,
    source: Option<usize>,
    target: Option<usize>,
    dirfd: Option<usize>,
}

fn layout(ty: &str) -> Option<Layout> {
    let l = |name, source, target, dirfd| Layout {
        name,
        source,
        target,
        dirfd,
    };
    Some(match ty {
        "unlink" | "rmdir" | "mkdir" | "chmod" | "chdir" | "truncate" | "chroot" => {
            l(Some(0), None, None, None)
        }
        "unlinkat" | "mkdirat" | "fchmodat" | "fchmodat2" | "open_tree" | "mount_setattr" => {
            l(Some(0), None, None, Some(0))
        }
        "pivot_root" => l(Some(0), None, None, None),
        "move_mount" => l(None, Some(0), Some(1), Some(0)),
        "rename" | "link" | "symlink" => l(None, Some(0), Some(1), None),
        "renameat" | "renameat2" | "linkat" => l(None, Some(0), Some(1), Some(0)),
        "symlinkat" => l(None, Some(0), Some(1), Some(1)),
        _ => return None,
    })
}

pub fn field<'a>(ev: &'a Event, proc: Option<&'a Process>, f: F) -> Option<Value<'a>> {
    let Layout {
        name,
        source,
        target,
        dirfd: dirfd_reg,
    } = layout(ev.ty.name())?;
    let at_cwd = dirfd_reg.is_none_or(|r| ev.args().is_some_and(|a| a[r] as i32 == AT_FDCWD));
    let cwd = proc.map_or(&[][..], |p| p.cwd.bytes.as_slice());
    let raw = |i: Option<usize>| -> Option<&'a [u8]> {
        ev.params()
            .get(i?)
            .and_then(Param::text)
            .map(|t| t.bytes.as_slice())
    };
    let resolved = |i: Option<usize>| -> Option<Value<'a>> {
        let r = raw(i)?;
        Some(Value::Str(if r.starts_with(b"/") || at_cwd {
            resolve(cwd, r)
        } else {
            r.into()
        }))
    };
    match f {
        F::FsPathName => resolved(name),
        F::FsPathNameraw => raw(name).map(Value::str),
        F::FsPathSource => resolved(source),
        F::FsPathSourceraw => raw(source).map(Value::str),
        F::FsPathTarget => resolved(target),
        F::FsPathTargetraw => raw(target).map(Value::str),
        _ => None,
    }
}
