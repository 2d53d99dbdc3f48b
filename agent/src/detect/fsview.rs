//! `fs.path.*`: the paths of path-taking syscalls, as passed and resolved.
//! A relative path is resolved against the directory the kernel resolved
//! it against, which the kernel sends from its own objects (the directory
//! fd's `struct file`, or the task's working directory): never from the
//! agent's own tables. A symlink's relative target resolves against the
//! link's directory. Records without that directory (io_uring requests,
//! recordings made before it was sent) fall back to the working directory
//! the agent tracks, for `AT_FDCWD` only.

use std::borrow::Cow;

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
    /// The source is a symlink's target (relative to the link's directory).
    link_target: bool,
}

fn layout(ty: &str) -> Option<Layout> {
    let l = |name, source, target, dirfd| Layout {
        name,
        source,
        target,
        dirfd,
        link_target: false,
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
        "rename" | "link" => l(None, Some(0), Some(1), None),
        "renameat" | "renameat2" | "linkat" => l(None, Some(0), Some(1), Some(0)),
        "symlink" => Layout {
            link_target: true,
            ..l(None, Some(0), Some(1), None)
        },
        "symlinkat" => Layout {
            link_target: true,
            ..l(None, Some(0), Some(1), Some(1))
        },
        _ => return None,
    })
}

pub fn field<'a>(ev: &'a Event, proc: Option<&'a Process>, f: F) -> Option<Value<'a>> {
    let lay = layout(ev.ty.name())?;
    let params = ev.params();
    let raw = |i: Option<usize>| -> Option<&'a [u8]> {
        params
            .get(i?)
            .and_then(Param::text)
            .map(|t| t.bytes.as_slice())
    };
    let resolved = |i: Option<usize>| resolved(ev, proc, &lay, i?, raw(i)?);
    let source = || {
        let r = raw(lay.source)?;
        if !lay.link_target || r.starts_with(b"/") {
            return resolved(lay.source);
        }
        // A symlink's relative target is relative to the link's directory.
        let link = resolved(lay.target)?;
        let dir = match link.iter().rposition(|&c| c == b'/') {
            Some(0) | None => &b"/"[..],
            Some(at) => &link[..at],
        };
        Some(Cow::Owned(resolve(dir, r).into_owned()))
    };
    let value = |c: Option<Cow<'a, [u8]>>| c.map(Value::Str);
    match f {
        F::FsPathName => value(resolved(lay.name)),
        F::FsPathNameraw => raw(lay.name).map(Value::str),
        F::FsPathSource => value(source()),
        F::FsPathSourceraw => raw(lay.source).map(Value::str),
        F::FsPathTarget => value(resolved(lay.target)),
        F::FsPathTargetraw => raw(lay.target).map(Value::str),
        _ => None,
    }
}

/// The path string at parameter `i` (`raw`), resolved. `None` when the
/// directory it is relative to could not be walked to the root: a rule
/// must not compare the rest as if it were whole.
fn resolved<'a>(
    ev: &'a Event,
    proc: Option<&'a Process>,
    lay: &Layout,
    i: usize,
    raw: &'a [u8],
) -> Option<Cow<'a, [u8]>> {
    if raw.starts_with(b"/") {
        return Some(resolve(b"/", raw));
    }
    // The path strings come first, so string `i` has the `i`-th base.
    let base = ev
        .params()
        .iter()
        .filter(|p| matches!(p, Param::BaseDir { .. }))
        .nth(i);
    match base {
        Some(Param::BaseDir {
            path: Some(dir),
            partial,
        }) => {
            if *partial && dir.truncated {
                return None;
            }
            Some(Cow::Owned(resolve(&dir.bytes, raw).into_owned()))
        }
        // The kernel could not say (a dirfd that is no directory).
        Some(_) if ev.ret >= 0 => Some(Cow::Borrowed(raw)),
        // None walked (a failed call is not; older records): the cwd
        // the agent knows, for calls relative to it.
        _ => {
            let at_cwd = lay
                .dirfd
                .is_none_or(|r| ev.args().is_some_and(|a| a[r] as i32 == AT_FDCWD));
            let cwd = proc.map_or(&[][..], |p| p.cwd.bytes.as_slice());
            Some(if at_cwd {
                resolve(cwd, raw)
            } else {
                raw.into()
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use mamori_common::syscalls;

    use super::*;
    use crate::event::{Detail, EventType, Task, Text};

    fn event(ty: &str, args: [u64; 6], params: Vec<Param>) -> Event {
        Event {
            ty: EventType::Syscall(syscalls::by_name(ty).unwrap()),
            time_ns: 1,
            task: Task::default(),
            ret: 0,
            detail: Detail::Syscall {
                args,
                params,
                uring: None,
            },
        }
    }

    fn base(path: &str, cut: bool) -> Param {
        Param::BaseDir {
            path: Some(Text {
                bytes: path.into(),
                truncated: cut,
            }),
            partial: cut,
        }
    }

    fn get(ev: &Event, f: F) -> Option<String> {
        match field(ev, None, f)? {
            Value::Str(s) => Some(String::from_utf8_lossy(&s).into_owned()),
            _ => None,
        }
    }

    #[test]
    fn a_relative_name_joins_the_directory_the_kernel_sent() {
        let ev = event(
            "unlinkat",
            [5, 0, 0, 0, 0, 0],
            vec![Param::Str("../x/./y".into()), base("/srv/a/b", false)],
        );
        assert_eq!(get(&ev, F::FsPathName).as_deref(), Some("/srv/a/x/y"));
        assert_eq!(get(&ev, F::FsPathNameraw).as_deref(), Some("../x/./y"));
    }

    #[test]
    fn a_directory_cut_by_the_walk_leaves_the_path_unknown() {
        let ev = event(
            "unlinkat",
            [5, 0, 0, 0, 0, 0],
            vec![Param::Str("y".into()), base("/d/d/d", true)],
        );
        assert_eq!(get(&ev, F::FsPathName), None);
    }

    #[test]
    fn a_symlink_target_is_relative_to_the_link_directory() {
        // symlinkat("../etc/shadow", dirfd, "l"): the link is /srv/a/l.
        let ev = event(
            "symlinkat",
            [0, 5, 0, 0, 0, 0],
            vec![
                Param::Str("../etc/shadow".into()),
                Param::Str("l".into()),
                Param::BaseDir {
                    path: None,
                    partial: false,
                },
                base("/srv/a", false),
            ],
        );
        assert_eq!(get(&ev, F::FsPathTarget).as_deref(), Some("/srv/a/l"));
        assert_eq!(
            get(&ev, F::FsPathSource).as_deref(),
            Some("/srv/etc/shadow")
        );
    }

    #[test]
    fn a_changed_argument_pairs_with_the_string_in_its_place() {
        let strings = || vec![Param::Str("/a".into()), Param::Str("/b".into())];
        let mut same = strings();
        same.extend([
            Param::AtExit(Some("/a".into())),
            Param::AtExit(Some("/b".into())),
        ]);
        assert_eq!(event("rename", [0; 6], same).changed_path_arg(), None);
        let mut changed = strings();
        changed.extend([
            Param::AtExit(Some("/a".into())),
            Param::AtExit(Some("/etc/passwd".into())),
        ]);
        let ev = event("rename", [0; 6], changed);
        assert_eq!(ev.changed_path_arg(), Some(Some(&"/etc/passwd".into())));
        // Unreadable at exit (unmapped by then): changed too.
        let mut gone = strings();
        gone.push(Param::AtExit(None));
        assert_eq!(event("rename", [0; 6], gone).changed_path_arg(), Some(None));
    }
}
