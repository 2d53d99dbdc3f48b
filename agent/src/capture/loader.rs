//! Loading the kernel object and attaching its programs.
//!
//! Attach table: every captured syscall's exit goes to its family's
//! tracepoint program on `syscalls/sys_exit_<name>`. A syscall without
//! such a tracepoint is one this kernel does not implement (`init_module`
//! on kernels built without modules): calls fail with ENOSYS. Attempts are
//! watched only on request (`capture.watch_unimplemented`), by
//! `raw_sys_exit`, a BTF tracepoint on the raw `sys_exit`, because it runs
//! on every syscall of the host. The `sched_*` BTF
//! tracepoints are always attached: process state depends on them.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

use aya::{
    Btf, Ebpf, EbpfLoader,
    maps::{Array, HashMap, MapData, ProgramArray},
    programs::{BtfTracePoint, TracePoint},
};
use mamori_common::{
    MAX_SYSCALLS, NameKey, OpenFilter, Settings,
    syscalls::{self, Program},
};
use tracing::{debug, info, warn};

use super::{CaptureError, KernelFilter, Options, btf, cgroups, offsets};

/// The compiled kernel object, built by `build.rs`.
pub(crate) static OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/mamori-ebpf"));

/// `ENABLED` values.
const ENABLED_TRACEPOINT: u8 = 1;
const ENABLED_VIA_RAW: u8 = 2;

const TRACEFS: &str = "/sys/kernel/tracing";

/// What got attached, for logs, metrics and tests.
#[derive(Debug, Default, Clone)]
pub struct AttachReport {
    /// Syscalls captured through their own exit tracepoint.
    pub tracepoints: BTreeSet<&'static str>,
    /// Of those, the ones whose path strings are also copied at entry
    /// (`sys_enter_paths` on their enter tracepoint).
    pub entry_copies: BTreeSet<&'static str>,
    /// Syscalls captured through the raw `sys_exit` fallback.
    pub raw: BTreeSet<&'static str>,
    /// Requested syscalls this kernel does not implement (no exit
    /// tracepoint: compiled out, so every call fails with ENOSYS) and that
    /// are not watched (see [`AttachReport::watch_unimplemented`]).
    pub unavailable: BTreeSet<&'static str>,
    /// Watch calls of unimplemented syscalls anyway, through `raw_sys_exit`
    /// on every syscall of the host (`capture.watch_unimplemented`).
    pub watch_unimplemented: bool,
    /// Bytes of socket data sends and receives carry (`evt.buffer`; 0:
    /// none). Fixed at load.
    pub buffer_bytes: u32,
    /// Whether the kernel runs 32-bit syscalls (watched by `raw_sys_exit`
    /// when a rule asks for `compat_syscall`).
    pub ia32: super::ia32::Ia32,
    /// Why io_uring operations are not watched; `None` when they are.
    pub uring_unwatched: Option<String>,
    /// Optional kernel members missing on this kernel (fields left empty).
    pub missing_members: Vec<String>,
    /// The cgroup hierarchy used for container ids.
    pub cgroup_hierarchy: &'static str,
    /// Syscalls the kernel sends now (attached and enabled).
    pub enabled: BTreeSet<String>,
}

/// A loaded, attached object.
pub struct Loaded {
    pub ebpf: Ebpf,
    pub report: AttachReport,
}

pub fn load(opts: &Options) -> Result<Loaded, CaptureError> {
    let vmlinux = std::fs::read("/sys/kernel/btf/vmlinux").map_err(CaptureError::NoBtf)?;
    let kernel_btf = btf::Btf::parse(&vmlinux)?;
    let resolved = offsets::resolve(&kernel_btf)?;
    let (cgroup_subsys, cgroup_hierarchy) = cgroups::choose(&kernel_btf);
    let settings = Settings {
        agent_tgid: std::process::id(),
        wakeup_bytes: opts.wakeup_bytes,
        cgroup_subsys,
        env_bytes: opts.env_bytes,
        args_bytes: opts.args_bytes,
        buffer_bytes: opts.buffer_bytes,
    };
    let cpus = aya::util::nr_cpus()
        .map_err(|(path, e)| CaptureError::Cpus(format!("{path}: {e}")))?
        .get();
    let mut ebpf = EbpfLoader::new()
        .override_global("OFFSETS", &resolved.offsets, true)
        .override_global("SETTINGS", &settings, true)
        .map_max_entries("SCRATCH", cpus)
        .map_max_entries("EVENTS", opts.ring_bytes)
        .load(OBJECT)
        .map_err(CaptureError::Load)?;

    let mut report = AttachReport {
        missing_members: resolved.missing_optional,
        cgroup_hierarchy,
        watch_unimplemented: opts.watch_unimplemented,
        buffer_bytes: opts.buffer_bytes,
        ia32: super::ia32::detect(),
        ..Default::default()
    };
    let aya_btf = Btf::from_sys_fs().map_err(|e| CaptureError::Attach {
        program: "btf",
        source: Box::new(e),
    })?;
    for name in [
        "sched_process_exec",
        "sched_process_fork",
        "sched_process_exit",
    ] {
        attach_btf(&mut ebpf, name, &aya_btf)?;
    }
    report.uring_unwatched = attach_uring(&mut ebpf, &aya_btf, &resolved.offsets)?;
    load_path_walk(&mut ebpf)?;
    write_prefilter(&mut ebpf, &opts.prefilter)?;
    attach_syscalls(&mut ebpf, &opts.syscalls, &mut report)?;
    info!(
        tracepoints = report.tracepoints.len(),
        raw = report.raw.len(),
        cgroups = report.cgroup_hierarchy,
        "capture attached"
    );
    match &report.ia32 {
        super::ia32::Ia32::Enabled if report.raw.contains("compat_syscall") => info!(
            "32-bit (ia32) syscalls are enabled on this kernel: watched, each process using \
             them is reported once (compat_syscall)"
        ),
        super::ia32::Ia32::Enabled => warn!(
            "32-bit (ia32) syscalls are enabled on this kernel and no loaded rule watches them \
             (evt.type = compat_syscall): they bypass every syscall rule"
        ),
        super::ia32::Ia32::Disabled(why) => {
            info!(reason = %why, "32-bit (ia32) syscalls are disabled on this kernel")
        }
    }
    match (&report.uring_unwatched, uring_sysctl()) {
        (None, Some(2)) => info!(
            "io_uring operations are watched (io_uring is disabled on this node: \
             kernel.io_uring_disabled = 2)"
        ),
        (None, _) => {
            info!("io_uring operations are watched, reported as the syscalls they stand for")
        }
        (Some(why), Some(2)) => {
            info!(reason = %why, "io_uring operations are not watched; io_uring is disabled on this node")
        }
        (Some(why), _) => warn!(
            reason = %why,
            "io_uring operations are NOT watched: files opened, paths changed and connections \
             made through a ring bypass the rules"
        ),
    }
    if !report.unavailable.is_empty() {
        warn!(
            syscalls = ?report.unavailable,
            "this kernel does not implement these syscalls (every call fails with ENOSYS); \
             attempts are not watched: capture.watch_unimplemented: true watches them at the \
             cost of a BPF program on every syscall of the host"
        );
    }
    if !report.missing_members.is_empty() {
        debug!(members = ?report.missing_members, "optional kernel members missing");
    }
    Ok(Loaded { ebpf, report })
}

/// Attaches the io_uring programs when this kernel has io_uring and the
/// members they read. `Err` says why not (nothing attached); a load or
/// attach failure is an error of the capture.
fn attach_uring(
    ebpf: &mut Ebpf,
    btf: &Btf,
    offsets: &mamori_common::KernelOffsets,
) -> Result<Option<String>, CaptureError> {
    if !Path::new(TRACEFS).join("events/io_uring").exists() {
        return Ok(Some("the kernel has no io_uring tracepoints".into()));
    }
    let missing: Vec<_> = mamori_common::KernelOffsets::MEMBERS
        .iter()
        .zip(offsets.values())
        .filter(|((ty, _, _), off)| {
            (ty.starts_with("io_") || *ty == "filename") && *off == mamori_common::offsets::MISSING
        })
        .map(|((ty, m, _), _)| format!("{ty}.{m}"))
        .collect();
    if !missing.is_empty() {
        return Ok(Some(format!(
            "the kernel's BTF lacks {}",
            missing.join(", ")
        )));
    }
    attach_btf(ebpf, "io_uring_submit_req", btf)?;
    attach_btf(ebpf, "io_uring_complete", btf)?;
    Ok(None)
}

/// `kernel.io_uring_disabled` (0 allowed, 1 only for `io_uring_group`, 2
/// disabled), when the kernel has it.
fn uring_sysctl() -> Option<u8> {
    std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn attach_btf(ebpf: &mut Ebpf, name: &'static str, btf: &Btf) -> Result<(), CaptureError> {
    let err = |e: aya::programs::ProgramError| CaptureError::attach(name, e);
    let prog: &mut BtfTracePoint = program(ebpf, name)?;
    prog.load(name, btf).map_err(err)?;
    prog.attach().map_err(err)?;
    Ok(())
}

fn program<'a, T>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut T, CaptureError>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    let prog = ebpf
        .program_mut(name)
        .ok_or(CaptureError::MissingProgram(name))?;
    prog.try_into().map_err(|e| CaptureError::attach(name, e))
}

fn family_program(family: Program) -> Option<&'static str> {
    match family {
        Program::File => Some("sys_exit_file"),
        Program::Fs => Some("sys_exit_fs"),
        Program::Path => Some("sys_exit_path"),
        Program::Net => Some("sys_exit_net"),
        Program::Proc => Some("sys_exit_proc"),
        Program::Sched | Program::Raw => None,
    }
}

fn has_exit_tracepoint(name: &str) -> bool {
    Path::new(TRACEFS)
        .join(format!("events/syscalls/sys_exit_{name}"))
        .exists()
}

/// Makes the kernel send exactly `wanted`: attaches what is not attached
/// yet (first start, or a reload that needs more), then rewrites the
/// `ENABLED` map. Nothing is detached: a syscall no longer wanted stays
/// attached with `ENABLED` 0, which the program checks first, so a reload
/// never opens a gap in capture.
pub(crate) fn attach_syscalls(
    ebpf: &mut Ebpf,
    wanted: &BTreeSet<String>,
    report: &mut AttachReport,
) -> Result<(), CaptureError> {
    // Group the syscalls to attach by the program that serves them.
    let mut by_program: BTreeMap<&'static str, Vec<&'static syscalls::Syscall>> = BTreeMap::new();
    let mut enabled = vec![0u8; MAX_SYSCALLS as usize];
    let raw_attached = !report.raw.is_empty();
    report.unavailable.clear();
    for sc in syscalls::ALL.iter().filter(|s| wanted.contains(s.name)) {
        if sc.program == Program::Raw {
            if report.ia32.enabled() {
                enabled[sc.nr as usize] = ENABLED_VIA_RAW;
                report.raw.insert(sc.name);
            } else {
                report.unavailable.insert(sc.name);
            }
            continue;
        }
        let Some(prog) = family_program(sc.program) else {
            continue; // reported by sched_process_fork
        };
        if report.tracepoints.contains(sc.name) {
            enabled[sc.nr as usize] = ENABLED_TRACEPOINT;
        } else if report.raw.contains(sc.name) {
            enabled[sc.nr as usize] = ENABLED_VIA_RAW;
        } else if has_exit_tracepoint(sc.tracepoint()) {
            by_program.entry(prog).or_default().push(sc);
            enabled[sc.nr as usize] = ENABLED_TRACEPOINT;
        } else if sc.program == Program::Proc && report.watch_unimplemented {
            enabled[sc.nr as usize] = ENABLED_VIA_RAW;
            report.raw.insert(sc.name);
        } else {
            report.unavailable.insert(sc.name);
        }
    }
    for (name, list) in by_program {
        let prog: &mut TracePoint = program(ebpf, name)?;
        if prog.fd().is_err() {
            prog.load().map_err(|e| CaptureError::attach(name, e))?;
        }
        for sc in &list {
            prog.attach("syscalls", &format!("sys_exit_{}", sc.tracepoint()))
                .map_err(|e| CaptureError::attach(name, e))?;
            report.tracepoints.insert(sc.name);
        }
        attach_entry_copies(ebpf, &list, report)?;
    }
    if !report.raw.is_empty() && !raw_attached {
        let btf = Btf::from_sys_fs().map_err(|e| CaptureError::Attach {
            program: "btf",
            source: Box::new(e),
        })?;
        let prog: &mut BtfTracePoint = program(ebpf, "raw_sys_exit")?;
        prog.load("sys_exit", &btf)
            .map_err(|e| CaptureError::attach("raw_sys_exit", e))?;
        prog.attach()
            .map_err(|e| CaptureError::attach("raw_sys_exit", e))?;
    }
    // Enable only once everything wanted is attached.
    write_enabled(ebpf, &enabled)?;
    report.enabled = syscalls::ALL
        .iter()
        .filter(|sc| enabled[sc.nr as usize] != 0)
        .map(|sc| sc.name.to_owned())
        .collect();
    Ok(())
}

/// Loads `path_bases`, the second half of `sys_exit_path` (which
/// tail-calls it to walk the base directories of path strings), into the
/// `PATH_WALK` program array. Never attached itself.
fn load_path_walk(ebpf: &mut Ebpf) -> Result<(), CaptureError> {
    const NAME: &str = "path_bases";
    let prog: &mut TracePoint = program(ebpf, NAME)?;
    prog.load().map_err(|e| CaptureError::attach(NAME, e))?;
    let fd = prog
        .fd()
        .map_err(|e| CaptureError::attach(NAME, e))?
        .try_clone()
        .map_err(|e| CaptureError::attach(NAME, aya::programs::ProgramError::IOError(e)))?;
    let map = ebpf
        .map_mut("PATH_WALK")
        .ok_or(CaptureError::MissingMap("PATH_WALK"))?;
    let mut walks = ProgramArray::try_from(map).map_err(|e| CaptureError::Map("PATH_WALK", e))?;
    walks
        .set(0, &fd, 0)
        .map_err(|e| CaptureError::Map("PATH_WALK", e))?;
    Ok(())
}

/// Attaches `sys_enter_paths` to the enter tracepoints of the syscalls in
/// `list` that pass path strings, so their strings are copied at entry as
/// well as read at exit (a racing thread's swap shows as a difference).
fn attach_entry_copies(
    ebpf: &mut Ebpf,
    list: &[&'static syscalls::Syscall],
    report: &mut AttachReport,
) -> Result<(), CaptureError> {
    const NAME: &str = "sys_enter_paths";
    let wanted: Vec<_> = list
        .iter()
        .filter(|sc| mamori_common::path_args::has_path_args(sc.nr))
        .filter(|sc| !report.entry_copies.contains(sc.name))
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let prog: &mut TracePoint = program(ebpf, NAME)?;
    if prog.fd().is_err() {
        prog.load().map_err(|e| CaptureError::attach(NAME, e))?;
    }
    for sc in wanted {
        prog.attach("syscalls", &format!("sys_enter_{}", sc.tracepoint()))
            .map_err(|e| CaptureError::attach(NAME, e))?;
        report.entry_copies.insert(sc.name);
    }
    Ok(())
}

/// Installs an open prefilter. The filter is switched off first and the new
/// one switched on last, so while the names change every open is sent:
/// a reload never drops what some rule, old or new, could match.
pub(crate) fn write_prefilter(ebpf: &mut Ebpf, f: &KernelFilter) -> Result<(), CaptureError> {
    set_filter(ebpf, &OpenFilter::default())?;
    write_syscall_flags(ebpf, "FAILURES_DROPPED", &[])?;
    {
        let map = ebpf
            .map_mut("NAME_MASKS")
            .ok_or(CaptureError::MissingMap("NAME_MASKS"))?;
        let mut names: HashMap<&mut MapData, NameKey, u64> =
            HashMap::try_from(map).map_err(|e| CaptureError::Map("NAME_MASKS", e))?;
        let old: Vec<NameKey> = names.keys().filter_map(Result::ok).collect();
        for k in old {
            let _ = names.remove(&k);
        }
        for (k, m) in &f.names {
            names
                .insert(k, m, 0)
                .map_err(|e| CaptureError::Map("NAME_MASKS", e))?;
        }
    }
    set_filter(ebpf, &f.filter)?;
    write_syscall_flags(ebpf, "FAILURES_DROPPED", &f.failures_dropped)
}

/// Sets a per-syscall flag map: 1 at each of `set`, 0 elsewhere.
fn write_syscall_flags(
    ebpf: &mut Ebpf,
    name: &'static str,
    set: &[u32],
) -> Result<(), CaptureError> {
    let mut flags = vec![0u8; MAX_SYSCALLS as usize];
    for nr in set {
        if let Some(f) = flags.get_mut(*nr as usize) {
            *f = 1;
        }
    }
    write_bytes(ebpf, name, &flags)
}

/// Replaces the identities of the files rules name (`WATCHED_INODES`):
/// new ones are added before old ones go, so no watched file is missed
/// while the map changes.
pub(crate) fn write_watched(ebpf: &mut Ebpf, ids: &[(u32, u64)]) -> Result<(), CaptureError> {
    let map = ebpf
        .map_mut("WATCHED_INODES")
        .ok_or(CaptureError::MissingMap("WATCHED_INODES"))?;
    let mut inodes: HashMap<&mut MapData, u64, u32> =
        HashMap::try_from(map).map_err(|e| CaptureError::Map("WATCHED_INODES", e))?;
    for (dev, ino) in ids {
        inodes
            .insert(ino, dev, 0)
            .map_err(|e| CaptureError::Map("WATCHED_INODES", e))?;
    }
    let stale: Vec<u64> = inodes
        .keys()
        .filter_map(Result::ok)
        .filter(|k| !ids.iter().any(|(_, ino)| ino == k))
        .collect();
    for k in stale {
        let _ = inodes.remove(&k);
    }
    Ok(())
}

fn set_filter(ebpf: &mut Ebpf, f: &OpenFilter) -> Result<(), CaptureError> {
    let map = ebpf
        .map_mut("OPEN_FILTER")
        .ok_or(CaptureError::MissingMap("OPEN_FILTER"))?;
    let mut arr: Array<&mut MapData, OpenFilter> =
        Array::try_from(map).map_err(|e| CaptureError::Map("OPEN_FILTER", e))?;
    arr.set(0, f, 0)
        .map_err(|e| CaptureError::Map("OPEN_FILTER", e))
}

fn write_enabled(ebpf: &mut Ebpf, enabled: &[u8]) -> Result<(), CaptureError> {
    write_bytes(ebpf, "ENABLED", enabled)
}

/// Writes a byte array map indexed by syscall number.
fn write_bytes(ebpf: &mut Ebpf, name: &'static str, values: &[u8]) -> Result<(), CaptureError> {
    let map = ebpf.map_mut(name).ok_or(CaptureError::MissingMap(name))?;
    let mut arr: Array<&mut MapData, u8> =
        Array::try_from(map).map_err(|e| CaptureError::Map(name, e))?;
    for (nr, v) in values.iter().enumerate() {
        arr.set(nr as u32, v, 0)
            .map_err(|e| CaptureError::Map(name, e))?;
    }
    Ok(())
}
