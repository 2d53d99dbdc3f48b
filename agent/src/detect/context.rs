//! The alert context: the Falco fields an alert's consumers map to their
//! own schema (ECS's `process.*`, `file.*`, `source.*`, `container.*`,
//! `orchestrator.*`), taken from the view when a rule matches. Only
//! alerting events pay for it.

use mamori_rules::{Extract, Field, FieldArg, Value, value::escape_bytes};

use super::View;
use crate::alert::{ARGV, FieldValue};

/// The fields taken, by Falco name. A test checks each name against the
/// field table.
pub const FIELDS: &[(&str, Field)] = &[
    ("evt.type", Field::EvtType),
    ("evt.rawres", Field::EvtRawRes),
    ("evt.is_open_create", Field::EvtIsOpenCreate),
    ("evt.io_uring.op", Field::EvtIoUringOp),
    ("proc.pid", Field::ProcPid),
    ("proc.vpid", Field::ProcVpid),
    ("thread.tid", Field::ThreadTid),
    ("proc.name", Field::ProcName),
    ("proc.exepath", Field::ProcExepath),
    ("proc.cmdline", Field::ProcCmdline),
    ("proc.cwd", Field::ProcCwd),
    ("proc.tty", Field::ProcTty),
    ("proc.pid.ts", Field::ProcPidTs),
    ("proc.sid", Field::ProcSid),
    ("proc.vpgid", Field::ProcVpgid),
    ("proc.ppid", Field::ProcPpid),
    ("proc.pname", Field::ProcPname),
    ("proc.pexepath", Field::ProcPexepath),
    ("proc.pcmdline", Field::ProcPcmdline),
    ("proc.ppid.ts", Field::ProcPpidTs),
    ("user.uid", Field::UserUid),
    ("user.name", Field::UserName),
    ("user.loginuid", Field::UserLoginuid),
    ("user.loginname", Field::UserLoginname),
    ("group.gid", Field::GroupGid),
    ("group.name", Field::GroupName),
    ("fd.typechar", Field::FdTypechar),
    ("fd.name", Field::FdName),
    ("fd.directory", Field::FdDirectory),
    ("fd.filename", Field::FdFilename),
    ("fd.ino", Field::FdIno),
    ("fd.l4proto", Field::FdL4proto),
    ("fd.sockfamily", Field::FdSockfamily),
    ("fd.is_server", Field::FdIsServer),
    ("fd.lip", Field::FdLip),
    ("fd.lport", Field::FdLport),
    ("fd.rip", Field::FdRip),
    ("fd.rport", Field::FdRport),
    ("fs.path.name", Field::FsPathName),
    ("fs.path.source", Field::FsPathSource),
    ("fs.path.target", Field::FsPathTarget),
    ("container.id", Field::ContainerId),
    ("container.name", Field::ContainerName),
    ("container.type", Field::ContainerType),
    (
        "container.image.repository",
        Field::ContainerImageRepository,
    ),
    ("container.image.tag", Field::ContainerImageTag),
    ("container.image.digest", Field::ContainerImageDigest),
    ("container.privileged", Field::ContainerPrivileged),
    ("k8s.ns.name", Field::K8sNsName),
    ("k8s.pod.name", Field::K8sPodName),
    ("k8s.pod.uid", Field::K8sPodUid),
    ("k8s.pod.labels", Field::K8sPodLabels),
];

/// Every field of [`FIELDS`] that has a value, plus [`ARGV`].
pub fn collect(view: &View<'_>) -> Vec<(&'static str, FieldValue)> {
    let mut out = Vec::with_capacity(FIELDS.len() + 1);
    for (name, field) in FIELDS {
        if let Some(v) = view.extract(*field, &FieldArg::None) {
            out.push((*name, field_value(&v)));
        }
    }
    if let Some(p) = view.process() {
        let argv = std::iter::once(&p.exe)
            .chain(&p.args)
            .map(|t| escape_bytes(&t.bytes).into_owned())
            .collect();
        out.push((ARGV, FieldValue::List(argv)));
    }
    out
}

fn field_value(v: &Value<'_>) -> FieldValue {
    match v {
        Value::Str(s) => FieldValue::Str(escape_bytes(s).into_owned()),
        Value::Int(i) => FieldValue::Int(*i),
        Value::Bool(b) => FieldValue::Bool(*b),
        Value::Ip(ip) => FieldValue::Str(ip.to_string()),
        Value::Many(vs) => FieldValue::List(vs.iter().map(Value::display).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mamori_rules::fields::FieldDef;

    #[test]
    fn names_match_the_field_table() {
        for (name, field) in FIELDS {
            assert_eq!(FieldDef::get(*field).name, *name);
        }
    }
}
