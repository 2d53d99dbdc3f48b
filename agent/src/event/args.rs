//! Syscall arguments by Falco's names (`evt.arg.flags`, `evt.arg.request`)
//! and positions (`evt.arg[1]`), rendered as Falco renders them.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::names;
use crate::event::{Detail, Event, Param, SockTuple};

/// Where an argument's value comes from.
#[derive(Clone, Copy)]
enum Src {
    /// The return value.
    Ret,
    /// Argument register N.
    Reg(usize),
    /// Record parameter N (strings, paths, sockets).
    Rec(usize),
    /// A u64 at `offset` of the bytes of parameter N (`struct open_how`).
    Bytes(usize, usize),
    /// The clone flags of a fork event.
    CloneFlags,
    /// The exit status of a procexit event.
    ExitStatus,
}

/// How to render it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    /// A 32-bit signed int in a register (fds, pids).
    I32,
    Hex,
    Open,
    Mode,
    Ptrace,
    Prctl,
    Fcntl,
    Domain,
    SockType,
    Bpf,
    Clone,
    Signal,
    /// A 32-bit (ia32) syscall number, by name.
    Ia32,
    Text,
    Sockaddr,
    Tuple,
}

struct Arg {
    name: &'static str,
    src: Src,
    kind: Kind,
}

macro_rules! args {
    ($( $name:literal: $src:expr => $kind:ident ),* $(,)?) => {
        &[ $( Arg { name: $name, src: $src, kind: Kind::$kind } ),* ]
    };
}

use Src::*;

fn spec(ev: &Event) -> &'static [Arg] {
    match ev.ty.name() {
        "open" => {
            args!["fd": Ret => Int, "name": Rec(0) => Text, "flags": Reg(1) => Open, "mode": Reg(2) => Mode]
        }
        "openat" => {
            args!["fd": Ret => Int, "dirfd": Reg(0) => I32, "name": Rec(0) => Text, "flags": Reg(2) => Open, "mode": Reg(3) => Mode]
        }
        "openat2" => {
            args!["fd": Ret => Int, "dirfd": Reg(0) => I32, "name": Rec(0) => Text, "flags": Bytes(3, 0) => Open, "mode": Bytes(3, 8) => Mode, "resolve": Bytes(3, 16) => Hex]
        }
        "creat" => args!["fd": Ret => Int, "name": Rec(0) => Text, "mode": Reg(1) => Mode],
        "memfd_create" => args!["fd": Ret => Int, "name": Rec(0) => Text, "flags": Reg(1) => Hex],
        "close" => args!["res": Ret => Int, "fd": Reg(0) => I32],
        "dup" => args!["res": Ret => Int, "oldfd": Reg(0) => I32],
        "dup2" => args!["res": Ret => Int, "oldfd": Reg(0) => I32, "newfd": Reg(1) => I32],
        "dup3" => {
            args!["res": Ret => Int, "oldfd": Reg(0) => I32, "newfd": Reg(1) => I32, "flags": Reg(2) => Hex]
        }
        "socket" => {
            args!["fd": Ret => Int, "domain": Reg(0) => Domain, "type": Reg(1) => SockType, "proto": Reg(2) => Int]
        }
        "connect" => {
            args!["res": Ret => Int, "fd": Reg(0) => I32, "addr": Rec(0) => Sockaddr, "tuple": Rec(1) => Tuple]
        }
        "bind" => args!["res": Ret => Int, "fd": Reg(0) => I32, "addr": Rec(0) => Sockaddr],
        "listen" => args!["res": Ret => Int, "fd": Reg(0) => I32, "backlog": Reg(1) => Int],
        "accept" | "accept4" => {
            args!["fd": Ret => Int, "tuple": Rec(0) => Tuple, "flags": Reg(3) => Hex]
        }
        "sendto" => {
            args!["res": Ret => Int, "fd": Reg(0) => I32, "size": Reg(2) => Int, "addr": Rec(0) => Sockaddr, "tuple": Rec(1) => Tuple]
        }
        "recvfrom" | "sendmsg" | "recvmsg" => {
            args!["res": Ret => Int, "fd": Reg(0) => I32, "tuple": Rec(0) => Tuple]
        }
        "execve" => args!["res": Ret => Int, "filename": Rec(0) => Text],
        "execveat" => {
            args!["res": Ret => Int, "dirfd": Reg(0) => I32, "pathname": Rec(0) => Text, "flags": Reg(4) => Hex]
        }
        "fcntl" => {
            args!["res": Ret => Int, "fd": Reg(0) => I32, "cmd": Reg(1) => Fcntl, "arg": Reg(2) => Int]
        }
        "truncate" => args!["res": Ret => Int, "path": Rec(0) => Text, "length": Reg(1) => Int],
        "ftruncate" => args!["res": Ret => Int, "fd": Reg(0) => I32, "length": Reg(1) => Int],
        "chroot" => args!["res": Ret => Int, "path": Rec(0) => Text],
        "pivot_root" => {
            args!["res": Ret => Int, "new_root": Rec(0) => Text, "put_old": Rec(1) => Text]
        }
        "setreuid" => args!["res": Ret => Int, "ruid": Reg(0) => I32, "euid": Reg(1) => I32],
        "setregid" => args!["res": Ret => Int, "rgid": Reg(0) => I32, "egid": Reg(1) => I32],
        "process_vm_readv" | "process_vm_writev" => {
            args!["res": Ret => Int, "pid": Reg(0) => I32, "liovcnt": Reg(2) => Int, "riovcnt": Reg(4) => Int]
        }
        "open_by_handle_at" => {
            args!["fd": Ret => Int, "mountfd": Reg(0) => I32, "flags": Reg(2) => Open, "path": Rec(0) => Text]
        }
        "fchmodat2" => {
            args!["res": Ret => Int, "dirfd": Reg(0) => I32, "filename": Rec(0) => Text, "mode": Reg(2) => Mode, "flags": Reg(3) => Hex]
        }
        "fsopen" => args!["fd": Ret => Int, "fs_name": Rec(0) => Text, "flags": Reg(1) => Hex],
        "fsconfig" => {
            args!["res": Ret => Int, "fd": Reg(0) => I32, "cmd": Reg(1) => Int, "key": Rec(0) => Text, "value": Rec(1) => Text]
        }
        "fsmount" => {
            args!["fd": Ret => Int, "fs_fd": Reg(0) => I32, "flags": Reg(1) => Hex, "attr_flags": Reg(2) => Hex]
        }
        "move_mount" => {
            args!["res": Ret => Int, "from_dirfd": Reg(0) => I32, "from_path": Rec(0) => Text, "to_dirfd": Reg(2) => I32, "to_path": Rec(1) => Text, "flags": Reg(4) => Hex]
        }
        "open_tree" => {
            args!["fd": Ret => Int, "dirfd": Reg(0) => I32, "path": Rec(0) => Text, "flags": Reg(2) => Hex]
        }
        "mount_setattr" => {
            args!["res": Ret => Int, "dirfd": Reg(0) => I32, "path": Rec(0) => Text, "flags": Reg(2) => Hex]
        }
        "prctl" => {
            args!["res": Ret => Int, "option": Reg(0) => Prctl, "arg2_str": Rec(0) => Text, "arg2_int": Reg(1) => Int]
        }
        "compat_syscall" => {
            args!["res": Ret => Int, "syscall": Reg(0) => Ia32, "nr": Reg(0) => Int, "arg0": Reg(1) => Hex, "arg1": Reg(2) => Hex, "arg2": Reg(3) => Hex]
        }
        "kill" => args!["res": Ret => Int, "pid": Reg(0) => I32, "sig": Reg(1) => Signal],
        "tkill" => args!["res": Ret => Int, "tid": Reg(0) => I32, "sig": Reg(1) => Signal],
        "tgkill" => {
            args!["res": Ret => Int, "pid": Reg(0) => I32, "tid": Reg(1) => I32, "sig": Reg(2) => Signal]
        }
        "chdir" => args!["res": Ret => Int, "path": Rec(0) => Text],
        "fchdir" => args!["res": Ret => Int, "fd": Reg(0) => I32],
        "rename" => args!["res": Ret => Int, "oldpath": Rec(0) => Text, "newpath": Rec(1) => Text],
        "renameat" => {
            args!["res": Ret => Int, "olddirfd": Reg(0) => I32, "oldpath": Rec(0) => Text, "newdirfd": Reg(2) => I32, "newpath": Rec(1) => Text]
        }
        "renameat2" => {
            args!["res": Ret => Int, "olddirfd": Reg(0) => I32, "oldpath": Rec(0) => Text, "newdirfd": Reg(2) => I32, "newpath": Rec(1) => Text, "flags": Reg(4) => Hex]
        }
        "mkdir" => args!["res": Ret => Int, "path": Rec(0) => Text, "mode": Reg(1) => Mode],
        "mkdirat" => {
            args!["res": Ret => Int, "dirfd": Reg(0) => I32, "path": Rec(0) => Text, "mode": Reg(2) => Mode]
        }
        "rmdir" => args!["res": Ret => Int, "path": Rec(0) => Text],
        "link" => args!["res": Ret => Int, "oldpath": Rec(0) => Text, "newpath": Rec(1) => Text],
        "linkat" => {
            args!["res": Ret => Int, "olddir": Reg(0) => I32, "oldpath": Rec(0) => Text, "newdir": Reg(2) => I32, "newpath": Rec(1) => Text, "flags": Reg(4) => Hex]
        }
        "unlink" => args!["res": Ret => Int, "path": Rec(0) => Text],
        "unlinkat" => {
            args!["res": Ret => Int, "dirfd": Reg(0) => I32, "name": Rec(0) => Text, "flags": Reg(2) => Hex]
        }
        "symlink" => args!["res": Ret => Int, "target": Rec(0) => Text, "linkpath": Rec(1) => Text],
        "symlinkat" => {
            args!["res": Ret => Int, "target": Rec(0) => Text, "linkdirfd": Reg(1) => I32, "linkpath": Rec(1) => Text]
        }
        "chmod" => args!["res": Ret => Int, "filename": Rec(0) => Text, "mode": Reg(1) => Mode],
        "fchmod" => {
            args!["res": Ret => Int, "fd": Reg(0) => I32, "mode": Reg(1) => Mode, "filename": Rec(0) => Text]
        }
        "fchmodat" => {
            args!["res": Ret => Int, "dirfd": Reg(0) => I32, "filename": Rec(0) => Text, "mode": Reg(2) => Mode]
        }
        "ptrace" => {
            args!["res": Ret => Int, "request": Reg(0) => Ptrace, "pid": Reg(1) => I32, "addr": Reg(2) => Hex, "data": Reg(3) => Hex]
        }
        "setuid" => args!["res": Ret => Int, "uid": Reg(0) => I32],
        "setgid" => args!["res": Ret => Int, "gid": Reg(0) => I32],
        "setresuid" => {
            args!["res": Ret => Int, "ruid": Reg(0) => I32, "euid": Reg(1) => I32, "suid": Reg(2) => I32]
        }
        "setresgid" => {
            args!["res": Ret => Int, "rgid": Reg(0) => I32, "egid": Reg(1) => I32, "sgid": Reg(2) => I32]
        }
        "capset" => args!["res": Ret => Int],
        "mount" => {
            args!["res": Ret => Int, "dev": Rec(0) => Text, "dir": Rec(1) => Text, "type": Rec(2) => Text, "flags": Reg(3) => Hex]
        }
        "umount2" => args!["res": Ret => Int, "name": Rec(0) => Text, "flags": Reg(1) => Hex],
        "init_module" => args!["res": Ret => Int, "length": Reg(1) => Int, "uargs": Rec(0) => Text],
        "finit_module" => {
            args!["res": Ret => Int, "fd": Reg(0) => I32, "uargs": Rec(0) => Text, "flags": Reg(2) => Hex]
        }
        "bpf" => args!["res_or_fd": Ret => Int, "cmd": Reg(0) => Bpf, "id": Rec(0) => Int],
        "pidfd_send_signal" => {
            args!["res": Ret => Int, "pidfd": Reg(0) => I32, "pid": Rec(0) => Int, "sig": Reg(1) => Signal, "flags": Reg(3) => Hex]
        }
        "pidfd_getfd" => {
            args!["res": Ret => Int, "pidfd": Reg(0) => I32, "pid": Rec(0) => Int, "targetfd": Reg(1) => I32]
        }
        "unshare" => args!["res": Ret => Int, "flags": Reg(0) => Clone],
        "setns" => args!["res": Ret => Int, "fd": Reg(0) => I32, "nstype": Reg(1) => Clone],
        "userfaultfd" => args!["res": Ret => Int, "flags": Reg(0) => Hex],
        "clone" | "clone3" | "fork" | "vfork" => {
            args!["res": Ret => Int, "flags": CloneFlags => Clone]
        }
        "procexit" => args!["status": ExitStatus => Int],
        _ => &[],
    }
}

/// The raw number behind an argument.
fn raw(ev: &Event, src: Src) -> Option<u64> {
    match src {
        Ret => Some(ev.ret as u64),
        Reg(i) => ev.args().map(|a| a[i]),
        Bytes(p, off) => match ev.params().get(p)? {
            Param::Bytes(b) => b
                .get(off..off + 8)
                .map(|s| u64::from_le_bytes(s.try_into().unwrap_or([0; 8]))),
            _ => None,
        },
        CloneFlags => match ev.detail {
            Detail::Fork { clone_flags, .. } => Some(clone_flags),
            _ => None,
        },
        ExitStatus => match ev.detail {
            Detail::Exit { code, .. } => Some(u64::from(code)),
            _ => None,
        },
        Rec(_) => None,
    }
}

fn render(ev: &Event, a: &Arg) -> Option<String> {
    if let Rec(i) = a.src {
        let p = ev.params().get(i)?;
        return match (a.kind, p) {
            (Kind::Sockaddr, Param::Bytes(b)) => sockaddr(b),
            (Kind::Tuple, Param::Sock(t)) => Some(tuple(t)),
            (_, Param::Absent | Param::Fault) => None,
            (_, Param::Id(id)) => Some(id.to_string()),
            (_, p) => p.text().map(|t| t.to_str_lossy().into_owned()),
        };
    }
    let v = raw(ev, a.src)?;
    Some(match a.kind {
        Kind::Int => (v as i64).to_string(),
        Kind::I32 => (v as i32).to_string(),
        Kind::Hex => format!("{v:#x}"),
        Kind::Open => names::open_flags(v),
        Kind::Mode => names::flags(v & 0o7777, names::MODE),
        Kind::Ptrace => names::one(v, names::PTRACE),
        Kind::Prctl => names::one(v, names::PRCTL),
        Kind::Fcntl => names::one(v, names::FCNTL),
        Kind::Domain => names::one(v, names::DOMAINS),
        Kind::SockType => names::sock_type(v),
        Kind::Bpf => names::one(v, names::BPF_CMDS),
        Kind::Clone => names::flags(v, names::CLONE_FLAGS),
        Kind::Signal => names::one(v, names::SIGNALS),
        Kind::Ia32 => names::one(v, names::IA32_SYSCALLS),
        Kind::Text | Kind::Sockaddr | Kind::Tuple => v.to_string(),
    })
}

/// `evt.arg.<name>`.
pub fn by_name(ev: &Event, name: &str) -> Option<String> {
    let a = spec(ev).iter().find(|a| a.name == name)?;
    render(ev, a)
}

/// `evt.arg[<index>]`.
pub fn by_index(ev: &Event, i: u32) -> Option<String> {
    render(ev, spec(ev).get(i as usize)?)
}

/// `evt.rawarg.<name>`: the number, for numeric arguments.
pub fn raw_by_name(ev: &Event, name: &str) -> Option<i64> {
    let a = spec(ev).iter().find(|a| a.name == name)?;
    let v = raw(ev, a.src)?;
    Some(match a.kind {
        Kind::I32 => i64::from(v as i32),
        _ => v as i64,
    })
}

/// `evt.args`: every argument as `name=value`.
pub fn all(ev: &Event) -> String {
    spec(ev)
        .iter()
        .filter_map(|a| render(ev, a).map(|v| format!("{}={v}", a.name)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Sets argument `name` of `ev` from the form `evt.arg.<name>` renders
/// (`O_WRONLY|O_CREAT`, `04755`, `PTRACE_ATTACH`, `10.0.0.1:4444`): how a
/// rules test describes an event.
pub fn set(ev: &mut Event, name: &str, value: &str) -> Result<(), String> {
    let Some(a) = spec(ev).iter().find(|a| a.name == name) else {
        let known: Vec<&str> = spec(ev).iter().map(|a| a.name).collect();
        return Err(format!(
            "{} has no argument `{name}` (it has: {})",
            ev.ty.name(),
            known.join(", ")
        ));
    };
    let bad = || format!("`{value}` is not a valid {name}");
    if let Rec(i) = a.src {
        let param = match a.kind {
            Kind::Sockaddr => Param::Bytes(parse_sockaddr(value).ok_or_else(bad)?),
            Kind::Tuple => Param::Sock(parse_tuple(value).ok_or_else(bad)?),
            _ => Param::Str(value.into()),
        };
        let Detail::Syscall { params, .. } = &mut ev.detail else {
            return Err(bad());
        };
        if params.len() <= i {
            params.resize(i + 1, Param::Absent);
        }
        params[i] = param;
        return Ok(());
    }
    let v = parse_number(a.kind, value).ok_or_else(bad)?;
    match (a.src, &mut ev.detail) {
        (Ret, _) => ev.ret = v as i64,
        (Reg(i), Detail::Syscall { args, .. }) => args[i] = v,
        (Bytes(p, off), Detail::Syscall { params, .. }) => {
            if params.len() <= p {
                params.resize(p + 1, Param::Absent);
            }
            if !matches!(params[p], Param::Bytes(_)) {
                params[p] = Param::Bytes(vec![0; 24]);
            }
            if let Param::Bytes(b) = &mut params[p] {
                b[off..off + 8].copy_from_slice(&v.to_le_bytes());
            }
        }
        (CloneFlags, Detail::Fork { clone_flags, .. }) => *clone_flags = v,
        (ExitStatus, Detail::Exit { code, .. }) => *code = v as u32,
        _ => return Err(bad()),
    }
    Ok(())
}

/// A number from a name in `kind`'s table, names joined by `|`, or digits
/// (`0x` hex, leading-zero octal for modes).
fn parse_number(kind: Kind, s: &str) -> Option<u64> {
    let table: &[(u64, &str)] = match kind {
        Kind::Open => &[(0, "O_RDONLY"), (1, "O_WRONLY"), (2, "O_RDWR")],
        Kind::Mode => names::MODE,
        Kind::Ptrace => names::PTRACE,
        Kind::Prctl => names::PRCTL,
        Kind::Fcntl => names::FCNTL,
        Kind::Domain => names::DOMAINS,
        Kind::SockType => names::SOCK_TYPES,
        Kind::Bpf => names::BPF_CMDS,
        Kind::Clone => names::CLONE_FLAGS,
        Kind::Signal => names::SIGNALS,
        Kind::Ia32 => names::IA32_SYSCALLS,
        _ => &[],
    };
    let extra: &[(u64, &str)] = match kind {
        Kind::Open => names::OPEN_FLAGS,
        Kind::I32 => &[(-100_i64 as u64, "AT_FDCWD")],
        _ => &[],
    };
    let mut total = 0;
    for part in s.split('|').map(str::trim) {
        let named = table.iter().chain(extra).find(|(_, n)| *n == part);
        total |= match named {
            Some((v, _)) => *v,
            None if kind == Kind::Mode => u64::from_str_radix(part, 8).ok()?,
            None => match part.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16).ok()?,
                None => part.parse::<i64>().ok()? as u64,
            },
        };
    }
    Some(total)
}

/// `1.2.3.4:80`, `[::1]:80` or a unix socket path, as a `struct sockaddr`.
fn parse_sockaddr(s: &str) -> Option<Vec<u8>> {
    if s.starts_with('/') {
        let mut b = vec![1, 0];
        b.extend_from_slice(s.as_bytes());
        b.push(0);
        return Some(b);
    }
    let addr: std::net::SocketAddr = s.parse().ok()?;
    let mut b = Vec::new();
    match addr {
        std::net::SocketAddr::V4(a) => {
            b.extend_from_slice(&2_u16.to_le_bytes());
            b.extend_from_slice(&a.port().to_be_bytes());
            b.extend_from_slice(&a.ip().octets());
            b.extend_from_slice(&[0; 8]);
        }
        std::net::SocketAddr::V6(a) => {
            b.extend_from_slice(&10_u16.to_le_bytes());
            b.extend_from_slice(&a.port().to_be_bytes());
            b.extend_from_slice(&[0; 4]);
            b.extend_from_slice(&a.ip().octets());
            b.extend_from_slice(&[0; 4]);
        }
    }
    Some(b)
}

/// `laddr:lport->raddr:rport`, a TCP socket's tuple.
fn parse_tuple(s: &str) -> Option<SockTuple> {
    let (l, r) = s.split_once("->")?;
    let (l, r): (std::net::SocketAddr, std::net::SocketAddr) = (l.parse().ok()?, r.parse().ok()?);
    let octets = |a: &std::net::SocketAddr| -> [u8; 16] {
        match a.ip() {
            std::net::IpAddr::V4(ip) => {
                let mut o = [0; 16];
                o[..4].copy_from_slice(&ip.octets());
                o
            }
            std::net::IpAddr::V6(ip) => ip.octets(),
        }
    };
    Some(SockTuple {
        family: if l.is_ipv4() { 2 } else { 10 },
        sock_type: 1,
        protocol: 6,
        state: 1,
        lport: l.port(),
        rport: r.port(),
        _pad: 0,
        laddr: octets(&l),
        raddr: octets(&r),
    })
}

/// A user `struct sockaddr`: `1.2.3.4:80`, `[::1]:80`, or a unix path.
pub fn sockaddr(b: &[u8]) -> Option<String> {
    let family = u16::from_le_bytes([*b.first()?, *b.get(1)?]);
    let port = |b: &[u8]| b.get(2..4).map(|p| u16::from_be_bytes([p[0], p[1]]));
    match family {
        2 => {
            let a = b.get(4..8)?;
            Some(format!(
                "{}:{}",
                Ipv4Addr::new(a[0], a[1], a[2], a[3]),
                port(b)?
            ))
        }
        10 => {
            let a: [u8; 16] = b.get(8..24)?.try_into().ok()?;
            Some(format!("[{}]:{}", Ipv6Addr::from(a), port(b)?))
        }
        1 => {
            let path = b.get(2..)?;
            let end = path.iter().position(|&c| c == 0).unwrap_or(path.len());
            Some(String::from_utf8_lossy(&path[..end]).into_owned())
        }
        _ => None,
    }
}

/// A socket tuple: `laddr:lport->raddr:rport`.
pub fn tuple(t: &SockTuple) -> String {
    let ip = |a: &[u8; 16]| -> String {
        if t.family == 10 {
            format!("[{}]", Ipv6Addr::from(*a))
        } else {
            Ipv4Addr::new(a[0], a[1], a[2], a[3]).to_string()
        }
    };
    format!("{}:{}->{}:{}", ip(&t.laddr), t.lport, ip(&t.raddr), t.rport)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddrs() {
        assert_eq!(
            sockaddr(&[2, 0, 0x1f, 0x90, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap(),
            "127.0.0.1:8080"
        );
        let mut v6 = vec![10, 0, 0, 80, 0, 0, 0, 0];
        v6.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        assert_eq!(sockaddr(&v6).unwrap(), "[::1]:80");
        assert_eq!(
            sockaddr(b"\x01\x00/run/x.sock\x00junk").unwrap(),
            "/run/x.sock"
        );
        assert!(sockaddr(&[2]).is_none());
    }
}
