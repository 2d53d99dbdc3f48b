//! The field table: every field a condition or output may name, its type,
//! whether it takes an argument, and what it means. The agent implements
//! extraction by matching on [`Field`]; `mamori fields` prints this table.

use serde::Serialize;

/// Value type of a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    Str,
    Int,
    Bool,
    /// An IP address; compared with addresses.
    Ip,
    /// An IP address compared with networks (`10.0.0.0/8`).
    Net,
    /// Raw bytes (compared with hex literals by `bcontains`).
    Bytes,
}

/// What may follow the field name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ArgKind {
    None,
    /// `[N]`, optional: without it the field has many values (any matches).
    OptionalIndex,
    /// `[key]`, required.
    Key,
    /// `[key]`, optional.
    OptionalKey,
    /// `.name` or `[N]` (syscall arguments).
    EventArg,
}

/// The argument a use of the field gives.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FieldArg {
    None,
    Index(u32),
    Key(String),
}

macro_rules! field_table {
    ($( $id:ident = $name:literal, $ty:ident, $arg:ident, $desc:literal; )*) => {
        /// Every supported field.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Field { $( $id, )* }

        /// One row of the table.
        #[derive(Clone, Copy, Debug, Serialize)]
        pub struct FieldDef {
            pub name: &'static str,
            #[serde(skip)]
            pub id: Field,
            #[serde(rename = "type")]
            pub ty: FieldType,
            pub arg: ArgKind,
            #[serde(rename = "description")]
            pub desc: &'static str,
        }

        pub const FIELDS: &[FieldDef] = &[
            $( FieldDef { name: $name, id: Field::$id, ty: FieldType::$ty, arg: ArgKind::$arg, desc: $desc }, )*
        ];

        /// Each field's class, in enum order (worked out at compile time).
        const CLASSES: &[FieldClass] = &[ $( FieldClass::of($name), )* ];
    };
}

field_table! {
    EvtType = "evt.type", Str, None, "Event type: the syscall name (openat, execve...), or procexit.";
    SyscallType = "syscall.type", Str, None, "Syscall name; absent for non-syscall events.";
    EvtNum = "evt.num", Int, None, "Event sequence number.";
    EvtTime = "evt.time", Str, None, "Event time, HH:MM:SS.nnnnnnnnn (UTC).";
    EvtTimeIso = "evt.time.iso8601", Str, None, "Event time, ISO 8601 with nanoseconds.";
    EvtRawTime = "evt.rawtime", Int, None, "Event time, nanoseconds since the epoch.";
    EvtHostname = "evt.hostname", Str, None, "Host name of the machine.";
    EvtSource = "evt.source", Str, None, "Event source (syscall).";
    EvtDir = "evt.dir", Str, None, "Deprecated: always `<` (events are reported at syscall exit).";
    EvtCpu = "evt.cpu", Int, None, "CPU that produced the event (not tracked: absent).";
    EvtRes = "evt.res", Str, None, "Result: SUCCESS, or the errno name (ENOENT...).";
    EvtRawRes = "evt.rawres", Int, None, "Raw return value (negative errno on failure).";
    EvtFailed = "evt.failed", Bool, None, "True when the syscall returned an error.";
    EvtIsOpenRead = "evt.is_open_read", Bool, None, "An open for reading.";
    EvtIsOpenWrite = "evt.is_open_write", Bool, None, "An open for writing.";
    EvtIsOpenExec = "evt.is_open_exec", Bool, None, "An open of an executable file (O_EXEC or an exec).";
    EvtIsOpenCreate = "evt.is_open_create", Bool, None, "An open that may create the file (O_CREAT).";
    EvtIsArgTruncated = "evt.is_arg_truncated", Bool, None, "A string or list argument of the event was longer than its capture bound and was cut (mamori).";
    EvtIsArgChanged = "evt.is_arg_changed", Bool, None, "A path argument copied at syscall entry differs from the same argument read again at exit: another thread changed it during the call (a time-of-check/time-of-use race). Rules see the entry copy (mamori).";
    EvtArgAtExit = "evt.arg_at_exit", Str, None, "The first changed path argument as read at syscall exit (see evt.is_arg_changed); absent when none changed (mamori).";
    EvtTargetsAgent = "evt.targets_agent", Bool, None, "The event acts on the mamori agent itself: signals (kill, tkill, tgkill, pidfd_send_signal by pidfd or /proc/PID fd) or traces it, takes one of its descriptors (pidfd_getfd), reads or writes its memory (process_vm_*, /proc/PID/mem), takes or changes its bpf maps or links (bpf by id, element updates, link detach; the object behind the fd), or opens for writing, truncates, removes or renames its executable, configuration or rules files (mamori).";
    EvtIsIoUring = "evt.is_io_uring", Bool, None, "The act came through an io_uring request (no such syscall was made; evt.type is the syscall it stands for) (mamori).";
    EvtIoUringOp = "evt.io_uring.op", Str, None, "The io_uring operation (IORING_OP_OPENAT...); absent for real syscalls (mamori).";
    EvtArg = "evt.arg", Str, EventArg, "A syscall argument by name (evt.arg.flags) or index (evt.arg[0]), rendered as text.";
    EvtRawArg = "evt.rawarg", Int, EventArg, "A syscall argument's raw numeric value.";
    EvtArgs = "evt.args", Str, None, "All syscall arguments as name=value text.";
    EvtBuffer = "evt.buffer", Bytes, None, "The first bytes of the data of a socket send or receive (sendto, recvfrom, sendmsg, recvmsg: capture.buffer_bytes, default 80).";

    ProcPid = "proc.pid", Int, None, "Process id (host pid namespace).";
    ProcPpid = "proc.ppid", Int, None, "Parent process id.";
    ProcVpid = "proc.vpid", Int, None, "Process id inside its pid namespace.";
    ProcVpgid = "proc.vpgid", Int, None, "Process group id inside its pid namespace.";
    ProcVpgidName = "proc.vpgid.name", Str, None, "Name of the process group leader.";
    ProcVpgidExe = "proc.vpgid.exe", Str, None, "First argument of the process group leader.";
    ProcSid = "proc.sid", Int, None, "Session id.";
    ProcSname = "proc.sname", Str, None, "Name of the session leader.";
    ProcIsVpgidLeader = "proc.is_vpgid_leader", Bool, None, "The process leads its process group.";
    ProcIsSidLeader = "proc.is_sid_leader", Bool, None, "The process leads its session.";
    ProcName = "proc.name", Str, None, "Process name as the kernel set it at exec (comm, at most 15 bytes); a later rename (prctl PR_SET_NAME, /proc/PID/comm) does not change it.";
    ProcComm = "proc.comm", Str, None, "The thread's current name (comm), renames included (mamori).";
    ProcExe = "proc.exe", Str, None, "First command-line argument (argv[0]).";
    ProcExepath = "proc.exepath", Str, None, "Full path of the executable, as resolved by the kernel.";
    ProcProgram = "proc.program", Str, None, "The program the process runs, whatever started it: the executable, the script a #! line handed to an interpreter (proc.exepath is the interpreter), or the program a dynamic loader run by name loads (ld.so PROG; proc.exepath is the loader, proc.name the program). Relative names are resolved against the working directory at exec (mamori).";
    ProcArgs = "proc.args", Str, None, "Command-line arguments after argv[0], space-separated.";
    ProcCmdline = "proc.cmdline", Str, None, "Process name and arguments.";
    ProcArgsTruncated = "proc.args_truncated", Bool, None, "The command line was longer than the capture bound (capture.args_bytes) and was cut: what rules see of it is not all of it (mamori).";
    ProcEnvTruncated = "proc.env_truncated", Bool, None, "The environment was longer than the capture bound (capture.env_bytes) and was cut; its loader variables (LD_*) are still all read, see proc.loader_env_truncated (mamori).";
    ProcLoaderEnvTruncated = "proc.loader_env_truncated", Bool, None, "Not every loader variable (LD_*) of a cut environment is known: too many strings to scan, one longer than 255 bytes, or more than 1 KiB of them (mamori).";
    ProcCmdnargs = "proc.cmdnargs", Int, None, "Number of command-line arguments.";
    ProcCmdlenargs = "proc.cmdlenargs", Int, None, "Total length of the command-line arguments.";
    ProcPname = "proc.pname", Str, None, "Parent's name.";
    ProcPexe = "proc.pexe", Str, None, "Parent's argv[0].";
    ProcPexepath = "proc.pexepath", Str, None, "Parent's executable path.";
    ProcPcmdline = "proc.pcmdline", Str, None, "Parent's name and arguments.";
    ProcAname = "proc.aname", Str, OptionalIndex, "Name of the N-th ancestor (1 = parent); without index, any ancestor.";
    ProcAexe = "proc.aexe", Str, OptionalIndex, "argv[0] of the N-th ancestor; without index, any ancestor.";
    ProcAexepath = "proc.aexepath", Str, OptionalIndex, "Executable path of the N-th ancestor; without index, any ancestor.";
    ProcAcmdline = "proc.acmdline", Str, OptionalIndex, "Command line of the N-th ancestor; without index, any ancestor.";
    ProcApid = "proc.apid", Int, OptionalIndex, "Pid of the N-th ancestor; without index, any ancestor.";
    ProcTty = "proc.tty", Int, None, "Controlling terminal (0 when none).";
    ProcCwd = "proc.cwd", Str, None, "Current working directory.";
    ProcEnv = "proc.env", Str, OptionalKey, "Environment: one variable with [NAME], else all, space-separated.";
    ProcLoginshellid = "proc.loginshellid", Int, None, "Pid of the outermost shell ancestor.";
    ProcDuration = "proc.duration", Int, None, "Nanoseconds since the process started.";
    ProcPidTs = "proc.pid.ts", Int, None, "Process start time, nanoseconds since the epoch.";
    ProcPpidTs = "proc.ppid.ts", Int, None, "Parent start time, nanoseconds since the epoch.";
    ProcPpidDuration = "proc.ppid.duration", Int, None, "Nanoseconds since the parent started.";
    ProcIsExeWritable = "proc.is_exe_writable", Bool, None, "The executable is writable by the process's user.";
    ProcIsExeUpperLayer = "proc.is_exe_upper_layer", Bool, None, "The executable was written in the container (overlayfs upper layer).";
    ProcIsExeLowerLayer = "proc.is_exe_lower_layer", Bool, None, "The executable comes from the container image (overlayfs lower layer).";
    ProcIsExeFromMemfd = "proc.is_exe_from_memfd", Bool, None, "The executable is a memfd (fileless execution).";
    ProcExeIno = "proc.exe_ino", Int, None, "Inode number of the executable.";
    ProcExeInoCtime = "proc.exe_ino.ctime", Int, None, "Executable inode change time, ns since the epoch.";
    ProcExeInoMtime = "proc.exe_ino.mtime", Int, None, "Executable modification time, ns since the epoch.";
    ProcExeInoCtimeDurationProcStart = "proc.exe_ino.ctime_duration_proc_start", Int, None, "Nanoseconds between the executable's ctime and the process start.";
    ProcFdopencount = "proc.fdopencount", Int, None, "Open file descriptors of the process.";
    ProcStdinType = "proc.stdin.type", Str, None, "Type of fd 0 (file, ipv4, pipe...).";
    ProcStdinName = "proc.stdin.name", Str, None, "Name of fd 0.";
    ProcStdoutType = "proc.stdout.type", Str, None, "Type of fd 1.";
    ProcStdoutName = "proc.stdout.name", Str, None, "Name of fd 1.";
    ProcStderrType = "proc.stderr.type", Str, None, "Type of fd 2.";
    ProcStderrName = "proc.stderr.name", Str, None, "Name of fd 2.";

    ThreadTid = "thread.tid", Int, None, "Thread id.";
    ThreadVtid = "thread.vtid", Int, None, "Thread id inside its pid namespace.";
    ThreadCapEffective = "thread.cap_effective", Str, None, "Effective capabilities (CAP_SYS_ADMIN CAP_...).";
    ThreadCapPermitted = "thread.cap_permitted", Str, None, "Permitted capabilities.";
    ThreadCapInheritable = "thread.cap_inheritable", Str, None, "Inheritable capabilities (not tracked: absent).";

    UserUid = "user.uid", Int, None, "User id.";
    UserName = "user.name", Str, None, "User name, from the process's own root (the container's passwd).";
    UserLoginuid = "user.loginuid", Int, None, "Audit login uid; -1 when unset.";
    UserLoginname = "user.loginname", Str, None, "Name of the login uid.";
    UserHomedir = "user.homedir", Str, None, "Home directory of the user.";
    UserShell = "user.shell", Str, None, "Login shell of the user.";
    GroupGid = "group.gid", Int, None, "Group id.";
    GroupName = "group.name", Str, None, "Group name.";

    FdNum = "fd.num", Int, None, "File descriptor number (-1 when an open failed).";
    FdType = "fd.type", Str, None, "Descriptor type: file, directory, ipv4, ipv6, unix, pipe, memfd, event...";
    FdTypechar = "fd.typechar", Str, None, "Type as one character: f d 4 6 u p m e...";
    FdName = "fd.name", Str, None, "Full path, or the connection tuple (client:port->server:port) of a socket.";
    FdNameraw = "fd.nameraw", Str, None, "The path as the caller passed it.";
    FdPartialName = "fd.partial_name", Str, None, "The end of a path whose walk to the root ran out (too deep, too many mounts): fd.name and fd.directory are then unknown, not this shorter path (mamori).";
    FdAlias = "fd.alias", Str, None, "The name a file that rules name whole was reached by (a hard link, a bind mount) when it is not the file's own path; fd.name is then the file's own path (mamori).";
    FdDirectory = "fd.directory", Str, None, "Directory of fd.name.";
    FdFilename = "fd.filename", Str, None, "Last component of fd.name.";
    FdDev = "fd.dev", Int, None, "Device number of the file.";
    FdIno = "fd.ino", Int, None, "Inode number of the file.";
    FdIp = "fd.ip", Ip, None, "Either endpoint's IP address.";
    FdCip = "fd.cip", Ip, None, "Client IP address.";
    FdSip = "fd.sip", Ip, None, "Server IP address.";
    FdLip = "fd.lip", Ip, None, "Local IP address.";
    FdRip = "fd.rip", Ip, None, "Remote IP address.";
    FdPort = "fd.port", Int, None, "Either endpoint's port.";
    FdCport = "fd.cport", Int, None, "Client port.";
    FdSport = "fd.sport", Int, None, "Server port.";
    FdLport = "fd.lport", Int, None, "Local port.";
    FdRport = "fd.rport", Int, None, "Remote port.";
    FdL4proto = "fd.l4proto", Str, None, "Transport protocol: tcp, udp, icmp, raw.";
    FdSockfamily = "fd.sockfamily", Str, None, "Socket family: ip or unix.";
    FdIsServer = "fd.is_server", Bool, None, "This process is the server end.";
    FdNet = "fd.net", Net, None, "Either endpoint's address, compared with networks.";
    FdCnet = "fd.cnet", Net, None, "Client address, compared with networks.";
    FdSnet = "fd.snet", Net, None, "Server address, compared with networks.";
    FdLnet = "fd.lnet", Net, None, "Local address, compared with networks.";
    FdRnet = "fd.rnet", Net, None, "Remote address, compared with networks.";
    FdConnected = "fd.connected", Bool, None, "The socket is connected.";
    FdNameChanged = "fd.name_changed", Bool, None, "The fd name changed (connect on a datagram socket).";
    FdCipName = "fd.cip.name", Str, None, "A domain name of the client IP: one the rules compare this field with, when the IP is one of its current addresses (as Falco: names are looked up, never reverse-resolved).";
    FdSipName = "fd.sip.name", Str, None, "A domain name of the server IP: one the rules compare this field with, when the IP is one of its current addresses (as Falco: names are looked up, never reverse-resolved).";
    FdLipName = "fd.lip.name", Str, None, "A domain name of the local IP: one the rules compare this field with, when the IP is one of its current addresses (as Falco: names are looked up, never reverse-resolved).";
    FdRipName = "fd.rip.name", Str, None, "A domain name of the remote IP: one the rules compare this field with, when the IP is one of its current addresses (as Falco: names are looked up, never reverse-resolved).";
    FdIsUpperLayer = "fd.is_upper_layer", Bool, None, "The file is on an overlayfs upper layer.";

    FsPathName = "fs.path.name", Str, None, "Path of a path-taking syscall (mkdir, unlink...), resolved.";
    FsPathNameraw = "fs.path.nameraw", Str, None, "That path as passed.";
    FsPathSource = "fs.path.source", Str, None, "Source path of rename/link/symlink, resolved.";
    FsPathSourceraw = "fs.path.sourceraw", Str, None, "That source as passed.";
    FsPathTarget = "fs.path.target", Str, None, "Target path of rename/link/symlink, resolved.";
    FsPathTargetraw = "fs.path.targetraw", Str, None, "That target as passed.";

    ContainerId = "container.id", Str, None, "Container id (12 characters), or `host`.";
    ContainerFullId = "container.full_id", Str, None, "Full container id, or `host`.";
    ContainerUnconfirmedId = "container.unconfirmed_id", Str, None, "The container id the process's cgroup is named after when neither the runtime knows it nor the process's mount namespace differs from the host's (then container.id is `host`) (mamori).";
    ContainerName = "container.name", Str, None, "Container name, or `host`.";
    ContainerImage = "container.image", Str, None, "Image name with tag.";
    ContainerImageId = "container.image.id", Str, None, "Image id.";
    ContainerImageRepository = "container.image.repository", Str, None, "Image repository.";
    ContainerImageTag = "container.image.tag", Str, None, "Image tag.";
    ContainerImageDigest = "container.image.digest", Str, None, "Image digest.";
    ContainerType = "container.type", Str, None, "Runtime: podman, containerd, cri-o, docker, host.";
    ContainerPrivileged = "container.privileged", Bool, None, "The container runs privileged.";
    ContainerMounts = "container.mounts", Str, None, "Mounts: source:dest:mode:rdwr:propagation, comma-separated.";
    ContainerMount = "container.mount", Str, Key, "The mount at index N or with source glob [path].";
    ContainerMountSource = "container.mount.source", Str, Key, "Source of the mount whose destination matches [glob] (or index).";
    ContainerMountDest = "container.mount.dest", Str, Key, "Destination of the mount whose source matches [glob] (or index).";
    ContainerMountMode = "container.mount.mode", Str, Key, "Mode of the mount with source [glob].";
    ContainerMountRdwr = "container.mount.rdwr", Str, Key, "Read-write flag of the mount with source [glob].";
    ContainerMountPropagation = "container.mount.propagation", Str, Key, "Propagation of the mount with source [glob].";
    ContainerStartTs = "container.start_ts", Int, None, "Container start time, ns since the epoch.";
    ContainerDuration = "container.duration", Int, None, "Nanoseconds since the container started.";
    ContainerIp = "container.ip", Str, None, "Container IP address.";
    ContainerCniJson = "container.cni.json", Str, None, "CNI result as JSON.";
    ContainerHostPid = "container.host_pid", Bool, None, "The container shares the host pid namespace.";
    ContainerHostNetwork = "container.host_network", Bool, None, "The container shares the host network.";
    ContainerHostIpc = "container.host_ipc", Bool, None, "The container shares the host IPC namespace.";
    ContainerLabel = "container.label", Str, Key, "A container label.";
    ContainerLabels = "container.labels", Str, None, "All labels, key:value comma-separated.";

    K8sNsName = "k8s.ns.name", Str, None, "Kubernetes namespace.";
    K8sPodName = "k8s.pod.name", Str, None, "Pod name.";
    K8sPodId = "k8s.pod.id", Str, None, "Pod UID (legacy name).";
    K8sPodUid = "k8s.pod.uid", Str, None, "Pod UID.";
    K8sPodSandboxId = "k8s.pod.sandbox_id", Str, None, "Pod sandbox id (12 characters).";
    K8sPodFullSandboxId = "k8s.pod.full_sandbox_id", Str, None, "Full pod sandbox id.";
    K8sPodLabel = "k8s.pod.label", Str, Key, "A pod label.";
    K8sPodLabels = "k8s.pod.labels", Str, None, "All pod labels, key:value comma-separated.";
    K8sPodIp = "k8s.pod.ip", Str, None, "Pod IP address.";
    K8sPodCniJson = "k8s.pod.cni.json", Str, None, "Pod CNI result as JSON.";
    K8sRcName = "k8s.rc.name", Str, None, "Deprecated: replication controller (needs an API server: absent).";
    K8sRsName = "k8s.rs.name", Str, None, "Deprecated: replica set (needs an API server: absent).";
    K8sSvcName = "k8s.svc.name", Str, None, "Deprecated: service (needs an API server: absent).";
    K8sDeploymentName = "k8s.deployment.name", Str, None, "Deprecated: deployment (needs an API server: absent).";
}

/// What a field reads, by the first part of its name: an extractor
/// dispatches on it before matching the field itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldClass {
    /// `evt.*`, `syscall.*`: the event itself.
    Event,
    /// `proc.*`, `thread.*`: the process and its ancestors.
    Process,
    /// `user.*`, `group.*`.
    User,
    /// `fd.*`: the descriptor the event is about.
    Fd,
    /// `fs.path.*`: the paths a file-system call names.
    FsPath,
    /// `container.*`, `k8s.*`.
    Container,
}

impl FieldClass {
    const fn of(name: &str) -> Self {
        let b = name.as_bytes();
        match (b[0], b[1]) {
            (b'e', _) | (b's', _) => Self::Event,
            (b'p', _) | (b't', _) => Self::Process,
            (b'u', _) | (b'g', _) => Self::User,
            (b'f', b'd') => Self::Fd,
            (b'f', _) => Self::FsPath,
            (b'c', _) | (b'k', _) => Self::Container,
            // A field of a new kind must be given a class: a build error.
            _ => panic!("a field name of no known class"),
        }
    }
}

impl Field {
    #[inline]
    pub fn class(self) -> FieldClass {
        CLASSES[self as usize]
    }
}

impl FieldDef {
    pub fn get(id: Field) -> &'static FieldDef {
        // The table is declared in enum order.
        &FIELDS[id as usize]
    }
}

/// Looks up a field as written, splitting `evt.arg.flags` into
/// (`evt.arg`, `flags`). Returns the definition and the argument text.
pub fn lookup<'a>(
    name: &'a str,
    arg: Option<&'a str>,
) -> Option<(&'static FieldDef, Option<&'a str>)> {
    if let Some(def) = FIELDS.iter().find(|f| f.name == name) {
        return Some((def, arg));
    }
    for prefix in ["evt.arg.", "evt.rawarg."] {
        if let Some(rest) = name.strip_prefix(prefix)
            && arg.is_none()
            && !rest.is_empty()
        {
            let base = &prefix[..prefix.len() - 1];
            let def = FIELDS.iter().find(|f| f.name == base)?;
            return Some((def, Some(rest)));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_field_class_is_its_name_prefix() {
        for f in FIELDS {
            let prefix = f.name.split('.').next().unwrap_or_default();
            let want = match prefix {
                "evt" | "syscall" => FieldClass::Event,
                "proc" | "thread" => FieldClass::Process,
                "user" | "group" => FieldClass::User,
                "fd" => FieldClass::Fd,
                "fs" => FieldClass::FsPath,
                "container" | "k8s" => FieldClass::Container,
                other => panic!("{}: prefix {other} has no class", f.name),
            };
            assert_eq!(f.id.class(), want, "{}", f.name);
        }
    }

    #[test]
    fn table_is_in_enum_order_and_names_are_unique() {
        for (i, f) in FIELDS.iter().enumerate() {
            assert_eq!(f.id as usize, i, "{}", f.name);
        }
        let mut names: Vec<_> = FIELDS.iter().map(|f| f.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FIELDS.len());
    }

    #[test]
    fn event_args_split_by_name() {
        let (def, arg) = lookup("evt.arg.flags", None).unwrap();
        assert_eq!((def.id, arg), (Field::EvtArg, Some("flags")));
        let (def, arg) = lookup("evt.arg", Some("0")).unwrap();
        assert_eq!((def.id, arg), (Field::EvtArg, Some("0")));
        assert!(lookup("proc.nope", None).is_none());
    }
}
