//! The recorded shape of a process in the state's table.

use serde::{Deserialize, Serialize};

use super::{TextRec, texts, untexts};
use crate::{
    event::ExeFacts,
    state::{Process, container::Container, fds::Fds, process::Origin},
};

/// A process as the state knows it (descriptors are rebuilt from events).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct ProcessRec {
    pub pid: u32,
    pub ppid: u32,
    /// The name at exec; absent in recordings made before it was kept
    /// (the comm stands in).
    pub name: Option<TextRec>,
    pub comm: TextRec,
    pub exe: TextRec,
    pub args: Vec<TextRec>,
    pub exepath: TextRec,
    /// `proc.program` (absent in recordings made before it existed).
    pub program: Option<TextRec>,
    pub cwd: TextRec,
    pub env: Vec<TextRec>,
    pub env_truncated: bool,
    pub loader_env_truncated: bool,
    pub tty: u32,
    pub sid: u32,
    pub pgid: u32,
    pub start_ns: u64,
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub loginuid: u32,
    pub exe_ino: u64,
    pub exe_nlink: u32,
    pub exe_facts: Option<ExeFacts>,
    pub from_memfd: bool,
    /// Full container id and runtime, when in a container.
    pub container: Option<(String, String)>,
    pub cgroup_id: u64,
}

impl From<&Process> for ProcessRec {
    fn from(p: &Process) -> Self {
        Self {
            pid: p.pid,
            ppid: p.ppid,
            name: Some((&p.name).into()),
            comm: (&p.comm).into(),
            exe: (&p.exe).into(),
            args: texts(&p.args),
            exepath: (&p.exepath).into(),
            program: Some((&p.program).into()),
            cwd: (&p.cwd).into(),
            env: texts(&p.env),
            env_truncated: p.env_truncated,
            loader_env_truncated: p.loader_env_truncated,
            tty: p.tty,
            sid: p.sid,
            pgid: p.pgid,
            start_ns: p.start_ns,
            uid: p.uid,
            euid: p.euid,
            gid: p.gid,
            loginuid: p.loginuid,
            exe_ino: p.exe_ino,
            exe_nlink: p.exe_nlink,
            exe_facts: p.exe_facts,
            from_memfd: p.from_memfd,
            container: p
                .container
                .as_ref()
                .map(|c| (c.full_id.to_string(), c.runtime.to_owned())),
            cgroup_id: p.cgroup_id,
        }
    }
}

impl ProcessRec {
    pub fn to_process(&self) -> Process {
        Process {
            pid: self.pid,
            ppid: self.ppid,
            name: self.name.as_ref().unwrap_or(&self.comm).to_text(),
            comm: self.comm.to_text(),
            exe: self.exe.to_text(),
            args: untexts(&self.args),
            args_joined: Vec::new(),
            cmdline: Vec::new(),
            exepath: self.exepath.to_text(),
            program: self
                .program
                .as_ref()
                .map(TextRec::to_text)
                .unwrap_or_default(),
            cwd: self.cwd.to_text(),
            env: untexts(&self.env),
            env_truncated: self.env_truncated,
            loader_env_truncated: self.loader_env_truncated,
            tty: self.tty,
            sid: self.sid,
            pgid: self.pgid,
            start_ns: self.start_ns,
            uid: self.uid,
            euid: self.euid,
            gid: self.gid,
            loginuid: self.loginuid,
            exe_ino: self.exe_ino,
            exe_nlink: self.exe_nlink,
            exe_facts: self.exe_facts,
            from_memfd: self.from_memfd,
            container: self.container.as_ref().map(|(id, runtime)| Container {
                full_id: id.as_str().into(),
                runtime: runtime_name(runtime),
            }),
            cgroup_id: self.cgroup_id,
            origin: Origin::ProcFs,
            fds: Fds::default(),
        }
    }
}

/// The runtime names mamori knows, as static strings.
pub fn runtime_name(s: &str) -> &'static str {
    ["podman", "docker", "containerd", "cri-o"]
        .into_iter()
        .find(|r| *r == s)
        .unwrap_or("containerd")
}
