//! `fd.*` for events that carry their descriptor: opens (kernel-resolved
//! path and inode), sockets (the kernel's addresses), fd-taking calls and
//! dups (what the new descriptor refers to, read by the kernel at exit);
//! close, which carries only a number, takes it from the process's
//! descriptor table. What the state keeps of it is [`FdView::entry`];
//! detection renders its `fd.*` fields.

use std::{borrow::Cow, sync::Arc};

use super::{Process, fds::FdEntry};
use crate::event::{Event, FileInfo, Param, SockTuple, text::resolve};

/// The descriptor an event is about.
pub struct FdView<'a> {
    pub num: i64,
    /// The descriptor's path (kernel-resolved where the event carries it).
    pub name: Option<Cow<'a, [u8]>>,
    /// The path as the program passed it.
    pub raw: Option<&'a [u8]>,
    /// The name the file was reached by, when `name` is a watched file's
    /// own path instead (see [`super::watched`]).
    pub alias: Option<Cow<'a, [u8]>>,
    /// The kernel's path walk ran out (too deep, too many mounts) before
    /// the root: `name` lacks its start, and `fd.name` is unknown rather
    /// than a shorter path.
    pub partial: bool,
    pub file: Option<FileInfo>,
    pub sock: Option<&'a SockTuple>,
    /// This process is the server end (accept, bind, listen).
    pub server: bool,
    pub connected: Option<bool>,
}

/// An endpoint: address and port.
pub type End<'a> = (&'a [u8; 16], u16);

const AT_FDCWD: i32 = -100;
const S_IFMT: u32 = 0o170000;

impl<'a> FdView<'a> {
    pub fn of(ev: &'a Event, proc: Option<&'a Process>) -> Option<Self> {
        let p = ev.params();
        let a = ev.args()?;
        let text = |i: usize| p.get(i).and_then(Param::text).map(|t| t.bytes.as_slice());
        let path = |i: usize| match p.get(i) {
            Some(Param::Path { path, .. }) => Some(Cow::Borrowed(path.bytes.as_slice())),
            _ => None,
        };
        let file = |i: usize| match p.get(i) {
            Some(Param::File(f)) => Some(*f),
            _ => None,
        };
        let sock = |i: usize| match p.get(i) {
            Some(Param::Sock(s)) => Some(s),
            _ => None,
        };
        let cwd = proc.map_or(&[][..], |p| p.cwd.bytes.as_slice());
        let mut v = FdView {
            num: a[0] as i32 as i64,
            name: None,
            raw: None,
            alias: None,
            partial: p.iter().any(Param::is_cut_path),
            file: None,
            sock: None,
            server: false,
            connected: None,
        };
        use mamori_common::syscalls::*;
        let nr = ev.syscall_nr()?;
        match nr {
            OPEN | OPENAT | OPENAT2 | CREAT | MEMFD_CREATE => {
                v.num = ev.ret;
                v.raw = text(0);
                v.file = file(2);
                let dirfd = if matches!(nr, OPENAT | OPENAT2) {
                    a[0] as i32
                } else {
                    AT_FDCWD
                };
                v.name = path(1).or_else(|| {
                    let raw = v.raw?;
                    // A failed open keeps the path it tried, made absolute when it can be.
                    (raw.starts_with(b"/") || dirfd == AT_FDCWD).then(|| resolve(cwd, raw))
                });
                if nr == MEMFD_CREATE {
                    v.name = v.raw.map(|r| Cow::Owned([b"memfd:", r].concat()));
                }
            }
            OPEN_BY_HANDLE_AT => {
                v.num = ev.ret;
                v.name = path(0);
                v.file = file(1);
            }
            FCHMOD | FCHDIR | SETNS | FTRUNCATE => {
                v.name = path(0);
                v.file = file(1);
            }
            FINIT_MODULE => {
                v.name = path(1);
                v.file = file(2);
            }
            SOCKET | ACCEPT | ACCEPT4 => {
                v.num = ev.ret;
                v.sock = sock(0);
                v.server = nr != SOCKET;
                v.connected = Some(nr != SOCKET && ev.ret >= 0);
            }
            CONNECT | SENDTO => {
                v.sock = sock(1);
                // EINPROGRESS: connecting in the background.
                v.connected = Some(ev.ret == 0);
            }
            BIND => {
                v.sock = sock(1);
                v.server = true;
            }
            LISTEN => {
                v.sock = sock(0);
                v.server = true;
            }
            RECVFROM | SENDMSG | RECVMSG => v.sock = sock(0),
            CLOSE => {
                if let Some(e) = proc.and_then(|p| p.fds.get(a[0] as i32 as i64)) {
                    v.fill_from(e);
                }
            }
            DUP | DUP2 | DUP3 | FCNTL => {
                // The new descriptor, as the kernel describes it at exit.
                v.num = ev.ret;
                let kept = proc.and_then(|p| p.fds.get(a[0] as i32 as i64));
                let (file, sock) = (file(1), sock(2));
                if file.is_none() && sock.is_none() {
                    // A failed dup, or a recording from before the kernel
                    // described it: what the table knows of the old one.
                    if let Some(e) = kept {
                        v.fill_from(e);
                    }
                } else {
                    v.file = file;
                    v.sock = sock;
                    // A socket is named by its addresses, not its inode's path.
                    v.name = if sock.is_some() { None } else { path(0) };
                    if let Some(e) = kept.filter(|e| e.sock.is_some() && e.sock.as_ref() == sock) {
                        // Which end this process is, only the call that
                        // made the socket tells: the table has it when it
                        // is this same connection.
                        v.server = e.server;
                        v.raw = e.raw.as_deref();
                    } else if let Some(e) = kept.filter(|e| {
                        e.file
                            .is_some_and(|f| file.is_some_and(|k| k.ino == f.ino && k.dev == f.dev))
                    }) {
                        // The same file: the path the program passed.
                        v.raw = e.raw.as_deref().or(e.name.as_deref());
                    }
                }
            }
            _ => return None,
        }
        Some(v)
    }

    fn fill_from(&mut self, e: &'a FdEntry) {
        self.name = e.name.as_deref().map(Cow::Borrowed);
        self.raw = e.raw.as_deref().or(e.name.as_deref());
        self.file = e.file;
        self.sock = e.sock.as_ref();
        self.server = e.server;
    }

    /// The socket's addresses, when the event has them.
    pub fn sock(&self) -> Option<&SockTuple> {
        self.sock
    }

    /// What the descriptor table keeps of this descriptor, ready to share.
    /// When the file is one rules name whole, reached by another name (a
    /// hard link, a bind mount): its own path as `name`, the other name as
    /// `alias`.
    pub fn with_identity(mut self, watched: &'a super::watched::WatchedFiles) -> Self {
        if self.sock.is_some() {
            return self;
        }
        if let Some(own) = self.file.as_ref().and_then(|f| watched.path_of(f))
            && self.name.as_deref() != Some(own)
        {
            self.alias = self.name.replace(Cow::Borrowed(own));
            self.partial = false;
        }
        self
    }

    pub fn entry(&self) -> Arc<FdEntry> {
        Arc::new(FdEntry {
            name: self.name.as_deref().map(<[u8]>::to_vec),
            // Kept only when it differs: most paths are passed absolute.
            raw: self
                .raw
                .filter(|r| Some(*r) != self.name.as_deref())
                .map(<[u8]>::to_vec),
            file: self.file,
            sock: self.sock.copied(),
            server: self.server,
            cloexec: false,
        })
    }

    /// `(type, typechar)` of the descriptor.
    pub fn kind(&self) -> Option<(&'static str, &'static str)> {
        if let Some(s) = self.sock {
            return Some(match s.family {
                2 => ("ipv4", "4"),
                10 => ("ipv6", "6"),
                1 => ("unix", "u"),
                16 => ("netlink", "n"),
                _ => ("socket", "s"),
            });
        }
        if self
            .name
            .as_deref()
            .is_some_and(|n| n.starts_with(b"memfd:") || n.starts_with(b"/memfd:"))
        {
            return Some(("memfd", "m"));
        }
        let f = self.file?;
        Some(match f.mode & S_IFMT {
            0o040000 => ("directory", "d"),
            0o010000 => ("pipe", "p"),
            0o140000 => ("unix", "u"),
            _ => ("file", "f"),
        })
    }

    pub fn is_ip(&self) -> bool {
        self.sock.is_some_and(|s| s.family == 2 || s.family == 10)
    }

    /// (client, server) as (addr, port) pairs.
    pub fn ends(&self) -> Option<(End<'a>, End<'a>)> {
        let s = self.sock?;
        let local = (&s.laddr, s.lport);
        let remote = (&s.raddr, s.rport);
        Some(if self.server {
            (remote, local)
        } else {
            (local, remote)
        })
    }
}
