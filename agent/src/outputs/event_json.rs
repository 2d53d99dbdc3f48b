//! Raw events as JSON lines (`mamori run --events`): what the kernel saw,
//! before any rule. For debugging rules and for seeing what is captured.

use serde_json::{Map, Value, json};

use crate::event::{Detail, Event, Param, Text};
use crate::time::rfc3339_nanos;

fn text(t: &Text) -> Value {
    Value::from(mamori_rules::value::escape_bytes(&t.bytes).into_owned())
}

fn param(p: &Param) -> Value {
    match p {
        Param::Absent => Value::Null,
        Param::Fault => json!({"fault": true}),
        Param::Str(t) | Param::KernelStr(t) => text(t),
        Param::Path { path, partial } => json!({"path": text(path), "partial": partial}),
        Param::BaseDir { path, partial } => {
            json!({"base_dir": path.as_ref().map(text), "partial": partial})
        }
        Param::AtExit(t) => json!({"at_exit": t.as_ref().map(text)}),
        Param::Id(id) => json!({"id": id}),
        Param::Bytes(b) => Value::from(b.iter().map(|x| format!("{x:02x}")).collect::<String>()),
        Param::List(l, truncated) => {
            json!({"items": l.iter().map(text).collect::<Vec<_>>(), "truncated": truncated})
        }
        Param::Sock(s) => json!({
            "family": s.family, "type": s.sock_type, "protocol": s.protocol, "state": s.state,
            "lport": s.lport, "rport": s.rport,
            "laddr": hex(&s.laddr), "raddr": hex(&s.raddr),
        }),
        Param::File(f) => json!({
            "ino": f.ino, "dev": f.dev, "mode": format!("{:o}", f.mode), "flags": f.flags,
            "fs_magic": format!("{:#x}", f.fs_magic),
        }),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// One event as a JSON line.
pub fn event_json(ev: &Event) -> String {
    let t = &ev.task;
    let mut doc = Map::new();
    doc.insert("time".into(), rfc3339_nanos(ev.time_ns).into());
    doc.insert("type".into(), ev.ty.name().into());
    doc.insert("ret".into(), ev.ret.into());
    doc.insert(
        "task".into(),
        json!({
            "pid": t.tgid, "tid": t.tid, "ppid": t.ppid, "vpid": t.ns_tgid, "vtid": t.ns_tid,
            "uid": t.uid, "gid": t.gid, "euid": t.euid, "egid": t.egid,
            "loginuid": t.loginuid as i32, "sessionid": t.sessionid,
            "pidns": t.pidns, "mntns": t.mntns, "cgroup_id": t.cgroup_id,
            "cap_effective": format!("{:#x}", t.cap_effective),
            "comm": text(&t.comm),
        }),
    );
    match &ev.detail {
        Detail::Syscall {
            args,
            params,
            uring,
        } => {
            doc.insert("args".into(), Value::from(args.to_vec()));
            doc.insert("params".into(), params.iter().map(param).collect());
            if let Some(op) = uring {
                doc.insert("io_uring_op".into(), Value::from(*op));
            }
        }
        Detail::Exec(x) => {
            let opt = |t: &Option<Text>| t.as_ref().map_or(Value::Null, text);
            doc.insert(
                "exec".into(),
                json!({
                    "exe": opt(&x.exe_path), "filename": opt(&x.filename), "interp": opt(&x.interp),
                    "args": x.args.iter().map(text).collect::<Vec<_>>(),
                    "cwd": opt(&x.cwd), "cgroup": opt(&x.cgroup_leaf), "cgroup_parent": opt(&x.cgroup_parent),
                    "sid": x.sid, "pgid": x.pgid, "tty": x.tty, "exe_nlink": x.exe_nlink,
                }),
            );
        }
        Detail::Fork {
            child_tgid,
            child_tid,
            clone_flags,
            ..
        } => {
            doc.insert(
                "fork".into(),
                json!({"child_pid": child_tgid, "child_tid": child_tid, "flags": format!("{clone_flags:#x}")}),
            );
        }
        Detail::Exit { code, group_dead } => {
            doc.insert(
                "exit".into(),
                json!({"code": code, "group_dead": group_dead}),
            );
        }
    }
    Value::Object(doc).to_string()
}
