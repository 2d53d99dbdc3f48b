//! `fd.*` fields of the descriptor an event is about, as the state sees it
//! ([`FdView`]).

use mamori_rules::{Field as F, Value};

use crate::{event::text::ip, state::fdview::FdView};

impl FdView<'_> {
    /// The value of an `fd.*` field, borrowed from the view where it can be.
    #[inline]
    pub fn field(&self, f: F) -> Option<Value<'_>> {
        let fam = self.sock.map_or(0, |s| s.family);
        let addr = |a: &[u8; 16]| ip(fam, a).map(Value::Ip);
        Some(match f {
            F::FdNum => Value::Int(self.num),
            F::FdType => Value::str(self.kind()?.0.as_bytes()),
            F::FdTypechar => Value::str(self.kind()?.1.as_bytes()),
            F::FdName => match (self.sock, &self.name) {
                (Some(_), _) if self.is_ip() => {
                    let ((c, cp), (s, sp)) = self.ends()?;
                    let r = |a: &[u8; 16]| ip(fam, a).map_or_else(String::new, |i| i.to_string());
                    Value::owned(format!("{}:{cp}->{}:{sp}", r(c), r(s)))
                }
                (_, Some(_)) if self.partial => return None,
                (_, Some(n)) => Value::str(n),
                _ => return None,
            },
            F::FdPartialName if self.partial => Value::str(self.name.as_deref()?),
            F::FdNameraw => Value::str(self.raw?),
            F::FdAlias => Value::str(self.alias.as_deref()?),
            F::FdDirectory if self.partial => return None,
            F::FdDirectory | F::FdFilename => {
                let n = self.name.as_deref().filter(|_| self.sock.is_none())?;
                let i = n.iter().rposition(|&c| c == b'/')?;
                if f == F::FdDirectory {
                    Value::str(if i == 0 { b"/" } else { &n[..i] })
                } else {
                    Value::str(&n[i + 1..])
                }
            }
            F::FdDev => Value::Int(i64::from(self.file?.dev)),
            F::FdIno => Value::Int(self.file?.ino as i64),
            F::FdIp | F::FdNet if self.is_ip() => {
                let ((c, _), (s, _)) = self.ends()?;
                Value::Many([addr(c), addr(s)].into_iter().flatten().collect())
            }
            F::FdCip | F::FdCnet if self.is_ip() => addr(self.ends()?.0.0)?,
            F::FdSip | F::FdSnet if self.is_ip() => addr(self.ends()?.1.0)?,
            F::FdLip | F::FdLnet if self.is_ip() => addr(&self.sock?.laddr)?,
            F::FdRip | F::FdRnet if self.is_ip() => addr(&self.sock?.raddr)?,
            F::FdPort if self.is_ip() => {
                let ((_, c), (_, s)) = self.ends()?;
                Value::Many(vec![Value::Int(i64::from(c)), Value::Int(i64::from(s))])
            }
            F::FdCport if self.is_ip() => Value::Int(i64::from(self.ends()?.0.1)),
            F::FdSport if self.is_ip() => Value::Int(i64::from(self.ends()?.1.1)),
            F::FdLport if self.is_ip() => Value::Int(i64::from(self.sock?.lport)),
            F::FdRport if self.is_ip() => Value::Int(i64::from(self.sock?.rport)),
            F::FdL4proto if self.is_ip() => Value::str(match self.sock?.protocol {
                6 => b"tcp".as_slice(),
                17 => b"udp",
                1 | 58 => b"icmp",
                _ => b"raw",
            }),
            F::FdSockfamily => Value::str(match fam {
                2 | 10 => b"ip".as_slice(),
                1 => b"unix",
                _ => return None,
            }),
            F::FdIsServer if self.sock.is_some() => Value::Bool(self.server),
            F::FdConnected => Value::Bool(self.connected?),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use mamori_common::syscalls;
    use mamori_rules::{Field as F, Value};

    use crate::{
        event::{Detail, Event, EventType, FileInfo, Param, SockTuple, Task},
        state::{Process, fdview::FdView},
    };

    fn sock_event(ty: &str, ret: i64) -> Event {
        let mut t = SockTuple {
            family: 2,
            sock_type: 1,
            protocol: 6,
            lport: 40000,
            rport: 443,
            ..SockTuple::default()
        };
        t.laddr[..4].copy_from_slice(&[10, 0, 0, 5]);
        t.raddr[..4].copy_from_slice(&[93, 184, 216, 34]);
        let params = match ty {
            "connect" => vec![
                Param::Bytes(vec![2, 0, 1, 187, 93, 184, 216, 34]),
                Param::Sock(t),
            ],
            _ => vec![Param::Sock(t)],
        };
        Event {
            ty: EventType::Syscall(syscalls::by_name(ty).unwrap()),
            time_ns: 1,
            task: Task::default(),
            ret,
            detail: Detail::Syscall {
                args: [3, 0, 16, 0, 0, 0],
                params,
                uring: None,
            },
        }
    }

    fn s(v: Option<Value>) -> String {
        v.map(|v| v.render()).unwrap_or_else(|| "<NA>".into())
    }

    #[test]
    fn connect_is_the_client_end() {
        let ev = sock_event("connect", 0);
        let fd = FdView::of(&ev, None).unwrap();
        assert_eq!(s(fd.field(F::FdName)), "10.0.0.5:40000->93.184.216.34:443");
        assert_eq!(s(fd.field(F::FdSip)), "93.184.216.34");
        assert_eq!(s(fd.field(F::FdCip)), "10.0.0.5");
        assert_eq!(s(fd.field(F::FdSport)), "443");
        assert_eq!(s(fd.field(F::FdLport)), "40000");
        assert_eq!(s(fd.field(F::FdTypechar)), "4");
        assert_eq!(s(fd.field(F::FdL4proto)), "tcp");
        assert_eq!(s(fd.field(F::FdSockfamily)), "ip");
        assert_eq!(s(fd.field(F::FdConnected)), "true");
        assert_eq!(s(fd.field(F::FdNum)), "3");
        assert_eq!(s(fd.field(F::FdIsServer)), "false");
        assert_eq!(
            s(fd.field(F::FdDirectory)),
            "<NA>",
            "sockets have no directory"
        );
    }

    #[test]
    fn accept_is_the_server_end() {
        let ev = sock_event("accept4", 7);
        let fd = FdView::of(&ev, None).unwrap();
        // Local is the server here: the client is the remote address.
        assert_eq!(s(fd.field(F::FdName)), "93.184.216.34:443->10.0.0.5:40000");
        assert_eq!(s(fd.field(F::FdCip)), "93.184.216.34");
        assert_eq!(s(fd.field(F::FdSport)), "40000");
        assert_eq!(s(fd.field(F::FdNum)), "7");
        assert_eq!(s(fd.field(F::FdIsServer)), "true");
    }

    /// A dup2 onto stdout as the kernel describes it: the new descriptor's
    /// file (a socket) and its addresses.
    fn dup_of_socket(t: SockTuple) -> Event {
        Event {
            ty: EventType::Syscall(syscalls::by_name("dup2").unwrap()),
            time_ns: 2,
            task: Task::default(),
            ret: 1,
            detail: Detail::Syscall {
                args: [7, 1, 0, 0, 0, 0],
                params: vec![
                    Param::Path {
                        path: "/".into(),
                        partial: true,
                    },
                    Param::File(FileInfo {
                        mode: 0o140777,
                        ..FileInfo::default()
                    }),
                    Param::Sock(t),
                ],
                uring: None,
            },
        }
    }

    #[test]
    fn dup_is_described_by_the_kernel_and_keeps_the_role_the_table_knows() {
        let accept = sock_event("accept4", 7);
        let Detail::Syscall { params, .. } = &accept.detail else {
            unreachable!()
        };
        let Param::Sock(t) = params[0] else {
            unreachable!()
        };
        let dup = dup_of_socket(t);

        // No table: the kernel's description alone, the client end assumed.
        let fd = FdView::of(&dup, None).unwrap();
        assert_eq!(s(fd.field(F::FdNum)), "1");
        assert_eq!(s(fd.field(F::FdTypechar)), "4");
        assert_eq!(s(fd.field(F::FdIsServer)), "false");
        assert_eq!(s(fd.field(F::FdName)), "10.0.0.5:40000->93.184.216.34:443");

        // The accept made fd 7 the server end; the dup of that same socket
        // keeps it.
        let mut p = Process::stub(&accept);
        let seen = FdView::of(&accept, None).unwrap().entry();
        p.fds.apply(&accept, Some(seen));
        let fd = FdView::of(&dup, Some(&p)).unwrap();
        assert_eq!(s(fd.field(F::FdIsServer)), "true");
        assert_eq!(s(fd.field(F::FdName)), "93.184.216.34:443->10.0.0.5:40000");

        // A table entry for another socket under that number is not trusted.
        let mut other = t;
        other.rport = 8443;
        let dup = dup_of_socket(other);
        let fd = FdView::of(&dup, Some(&p)).unwrap();
        assert_eq!(s(fd.field(F::FdIsServer)), "false");
    }

    #[test]
    fn dup_of_a_file_is_named_by_the_kernel_without_a_table() {
        let dup = Event {
            ty: EventType::Syscall(syscalls::by_name("dup3").unwrap()),
            time_ns: 3,
            task: Task::default(),
            ret: 2,
            detail: Detail::Syscall {
                args: [9, 2, 0, 0, 0, 0],
                params: vec![
                    Param::Path {
                        path: "/var/log/app.log".into(),
                        partial: false,
                    },
                    Param::File(FileInfo {
                        mode: 0o100644,
                        ino: 42,
                        ..FileInfo::default()
                    }),
                    Param::Absent,
                ],
                uring: None,
            },
        };
        let fd = FdView::of(&dup, None).unwrap();
        assert_eq!(s(fd.field(F::FdName)), "/var/log/app.log");
        assert_eq!(s(fd.field(F::FdDirectory)), "/var/log");
        assert_eq!(s(fd.field(F::FdTypechar)), "f");
        assert_eq!(s(fd.field(F::FdNum)), "2");
        assert_eq!(s(fd.field(F::FdIno)), "42");
    }
}
