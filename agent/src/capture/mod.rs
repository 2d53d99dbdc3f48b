//! Capture: load the kernel programs, read their ring buffer, decode
//! records into [`Event`]s.
//!
//! Invariants:
//! - The reader drains the ring on a short timer and when the kernel wakes
//!   it (only past a fill threshold): no wake-up per event.
//! - Nothing is dropped silently: ring-full losses are counted per CPU in
//!   the kernel, decode failures here; both are exposed by [`Counters`].
//! - The reader applies back-pressure (it waits for the next stage) rather
//!   than dropping; the ring absorbs bursts and counts what it cannot hold.

pub mod btf;
pub mod cgroups;
pub mod decode;
pub mod ia32;
pub mod loader;
pub mod metrics;
pub mod mounts;
pub mod offsets;
pub mod uring;

#[cfg(test)]
mod layout_tests;

use std::{
    collections::BTreeSet,
    os::fd::AsRawFd,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use aya::maps::{MapData, PerCpuArray, RingBuf};
use mamori_common::{COUNTERS, Counter, NameKey, OpenFilter};
use tokio::{io::unix::AsyncFd, sync::mpsc};
use tracing::warn;

pub use loader::AttachReport;

use crate::event::Event;

/// How to capture.
#[derive(Clone, Debug)]
pub struct Options {
    /// Syscall names (Falco `evt.type`) to capture. Process life (exec,
    /// fork, exit) is always captured.
    pub syscalls: BTreeSet<String>,
    /// Ring buffer size in bytes (a power of two, multiple of the page size).
    pub ring_bytes: u32,
    /// The kernel wakes the reader only past this many waiting bytes.
    pub wakeup_bytes: u32,
    /// The reader drains the ring at least this often.
    pub poll_interval: Duration,
    /// Environment bytes captured at exec (0: none).
    pub env_bytes: u32,
    /// Command-line bytes captured at exec.
    pub args_bytes: u32,
    /// Bytes of socket data captured per send or receive (`evt.buffer`;
    /// 0: none).
    pub buffer_bytes: u32,
    /// Which opens the kernel may drop before building a record.
    pub prefilter: KernelFilter,
    /// Turn on the kernel's BPF run-time statistics while capturing.
    pub bpf_stats: bool,
    /// Watch calls of syscalls this kernel does not implement, at the cost
    /// of a program on every syscall of the host.
    pub watch_unimplemented: bool,
}

/// Bytes of socket data kept for `evt.buffer` unless configured: Falco's
/// default snap length.
pub const DEFAULT_BUFFER_BYTES: u32 = 80;

/// The open prefilter in the kernel's form (built by `app::prefilter`):
/// the masks and the names they look up. The default filters nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelFilter {
    pub filter: OpenFilter,
    pub names: Vec<(NameKey, u64)>,
    /// Path syscalls (numbers) whose failed calls no rule reads.
    pub failures_dropped: Vec<u32>,
}

impl KernelFilter {
    /// No filter: every open is sent.
    pub fn none() -> Self {
        Self::default()
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            syscalls: mamori_common::syscalls::ALL
                .iter()
                .map(|s| s.name.to_owned())
                .collect(),
            ring_bytes: 8 << 20,
            wakeup_bytes: 256 << 10,
            poll_interval: Duration::from_millis(10),
            env_bytes: 4096,
            args_bytes: mamori_common::MAX_STR as u32,
            buffer_bytes: 0,
            prefilter: KernelFilter::none(),
            bpf_stats: false,
            watch_unimplemented: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error(
        "cannot read the kernel's BTF at /sys/kernel/btf/vmlinux (mamori needs a kernel built with CONFIG_DEBUG_INFO_BTF): {0}"
    )]
    NoBtf(#[source] std::io::Error),
    #[error("cannot parse the kernel's BTF: {0}")]
    Btf(#[from] btf::Error),
    #[error(transparent)]
    Members(#[from] offsets::MissingMembers),
    #[error(transparent)]
    Mount(#[from] mounts::MountError),
    #[error("cannot count CPUs: {0}")]
    Cpus(String),
    #[error(
        "cannot load the eBPF object (are you root, or do you have CAP_BPF and CAP_PERFMON?): {0}"
    )]
    Load(#[source] aya::EbpfError),
    #[error("the eBPF object has no program `{0}`")]
    MissingProgram(&'static str),
    #[error("the eBPF object has no map `{0}`")]
    MissingMap(&'static str),
    #[error("map `{0}`: {1}")]
    Map(&'static str, #[source] aya::maps::MapError),
    #[error("cannot load or attach `{program}`: {source}")]
    Attach {
        program: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("ring buffer: {0}")]
    Ring(#[source] std::io::Error),
}

impl CaptureError {
    fn attach(program: &'static str, e: aya::programs::ProgramError) -> Self {
        // Keep the verifier log: it is the only useful part of a load failure.
        let source: Box<dyn std::error::Error + Send + Sync> = match e {
            aya::programs::ProgramError::LoadError {
                io_error,
                verifier_log,
            } => format!("{io_error}\nverifier log:\n{verifier_log}").into(),
            other => Box::new(other),
        };
        Self::Attach { program, source }
    }
}

/// Loss and volume counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Records sent by the kernel, per CPU.
    pub sent: Vec<u64>,
    /// Records lost because the ring was full, per CPU.
    pub lost_ring_full: Vec<u64>,
    /// Records lost for lack of scratch space, per CPU.
    pub lost_no_scratch: Vec<u64>,
    /// The agent's own syscalls, skipped in the kernel.
    pub skipped_self: u64,
    /// Calls no rule could match, dropped in the kernel: opens by the
    /// prefilter, failed path calls no rule reads.
    pub filtered: u64,
    /// 32-bit (ia32) syscalls seen (while a rule watches them).
    pub compat_syscalls: u64,
    /// Path strings read at exit only: the table of entry copies was full.
    pub entry_copy_full: u64,
    /// Records read from the ring.
    pub received: u64,
    /// Records that failed to decode.
    pub decode_errors: u64,
    /// io_uring submissions reported without their completion (result
    /// unknown), and completions without their submission.
    pub uring_unanswered: u64,
    pub uring_unmatched: u64,
}

/// One kernel program's runs, from the kernel's BPF statistics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProgramRuns {
    pub name: String,
    pub runs: u64,
    pub run_ns: u64,
}

impl Counters {
    /// Everything lost, kernel and user side.
    pub fn lost(&self) -> u64 {
        self.lost_ring_full.iter().sum::<u64>()
            + self.lost_no_scratch.iter().sum::<u64>()
            + self.decode_errors
    }
}

/// Counters the reader updates, shared with metrics.
#[derive(Debug, Default)]
struct UserCounters {
    received: AtomicU64,
    decode_errors: AtomicU64,
    uring_unanswered: AtomicU64,
    uring_unmatched: AtomicU64,
}

/// A running capture: programs attached, ring ready to read.
pub struct Capture {
    ebpf: aya::Ebpf,
    report: AttachReport,
    user: Arc<UserCounters>,
    /// Keeps the kernel's BPF statistics on while it lives.
    _stats: Option<std::os::fd::OwnedFd>,
}

impl Capture {
    /// Mounts what tracing needs, loads and attaches the programs.
    pub fn start(opts: &Options) -> Result<Self, CaptureError> {
        mounts::ensure()?;
        let loaded = loader::load(opts)?;
        let stats = if opts.bpf_stats {
            match aya::sys::enable_stats(aya::sys::Stats::RunTime) {
                Ok(fd) => Some(fd),
                Err(e) => {
                    warn!(error = %e, "cannot turn on the kernel's BPF statistics");
                    None
                }
            }
        } else {
            None
        };
        Ok(Self {
            ebpf: loaded.ebpf,
            report: loaded.report,
            user: Arc::default(),
            _stats: stats,
        })
    }

    pub fn report(&self) -> &AttachReport {
        &self.report
    }

    /// Follows a new ruleset: the kernel sends `wanted` from now on
    /// (attaching programs it needs and has not attached yet).
    pub fn set_syscalls(&mut self, wanted: &BTreeSet<String>) -> Result<(), CaptureError> {
        loader::attach_syscalls(&mut self.ebpf, wanted, &mut self.report)
    }

    /// Follows a new ruleset's prefilter (the kernel keeps sending every
    /// open while the maps change).
    pub fn set_prefilter(&mut self, f: &KernelFilter) -> Result<(), CaptureError> {
        loader::write_prefilter(&mut self.ebpf, f)
    }

    /// The identities (device, inode) of the files rules name whole: opens
    /// of them by another name pass the kernel's prefilter.
    pub fn set_watched_inodes(&mut self, ids: &[(u32, u64)]) -> Result<(), CaptureError> {
        loader::write_watched(&mut self.ebpf, ids)
    }

    /// A handle that reads the counters while the reader runs.
    pub fn counters_handle(&mut self) -> Result<CountersHandle, CaptureError> {
        let map = self
            .ebpf
            .take_map("COUNTERS")
            .ok_or(CaptureError::MissingMap("COUNTERS"))?;
        let map = PerCpuArray::try_from(map).map_err(|e| CaptureError::Map("COUNTERS", e))?;
        let programs = self
            .ebpf
            .programs()
            .filter_map(|(name, p)| Some((p.info().ok()?.id(), name.to_owned())))
            .collect();
        Ok(CountersHandle {
            map: Arc::new(map),
            user: self.user.clone(),
            programs: Arc::new(programs),
        })
    }

    /// Takes the ring and returns the reader task's future. It runs until
    /// `shutdown` fires or the receiver is dropped, then drains once more.
    pub fn reader(
        &mut self,
        tx: mpsc::Sender<Event>,
        poll: Duration,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Result<Reader, CaptureError> {
        let map = self
            .ebpf
            .take_map("EVENTS")
            .ok_or(CaptureError::MissingMap("EVENTS"))?;
        let ring = RingBuf::try_from(map).map_err(|e| CaptureError::Map("EVENTS", e))?;
        let generation = self
            .ebpf
            .take_map("GENERATION")
            .ok_or(CaptureError::MissingMap("GENERATION"))?;
        let generation = aya::maps::Array::try_from(generation)
            .map_err(|e| CaptureError::Map("GENERATION", e))?;
        // SAFETY: the fd belongs to the ring map, which `RingFd` owns, so it
        // stays open for as long as the AsyncFd exists.
        let ring =
            unsafe { AsyncFd::register(RingFd(ring)) }.map_err(|e| CaptureError::Ring(e.into()))?;
        Ok(Reader {
            ring,
            generation,
            tx,
            poll,
            shutdown,
            user: self.user.clone(),
            clock: decode::Clock::now(),
            heartbeat: None,
            uring: uring::UringJoin::default(),
        })
    }
}

/// Reads the per-CPU counters.
#[derive(Clone)]
pub struct CountersHandle {
    map: Arc<PerCpuArray<MapData, u64>>,
    user: Arc<UserCounters>,
    /// `(kernel id, name)` of each loaded program.
    programs: Arc<Vec<(u32, String)>>,
}

impl CountersHandle {
    pub fn read(&self) -> Counters {
        let per_cpu = |c: Counter| -> Vec<u64> {
            self.map
                .get(&(c as u32), 0)
                .map(|v| v.iter().copied().collect())
                .unwrap_or_default()
        };
        debug_assert_eq!(COUNTERS, 7);
        Counters {
            sent: per_cpu(Counter::Sent),
            lost_ring_full: per_cpu(Counter::LostRingFull),
            lost_no_scratch: per_cpu(Counter::LostNoScratch),
            skipped_self: per_cpu(Counter::SkippedSelf).iter().sum(),
            filtered: per_cpu(Counter::Filtered).iter().sum(),
            compat_syscalls: per_cpu(Counter::CompatSyscalls).iter().sum(),
            entry_copy_full: per_cpu(Counter::EntryCopyFull).iter().sum(),
            received: self.user.received.load(Ordering::Relaxed),
            decode_errors: self.user.decode_errors.load(Ordering::Relaxed),
            uring_unanswered: self.user.uring_unanswered.load(Ordering::Relaxed),
            uring_unmatched: self.user.uring_unmatched.load(Ordering::Relaxed),
        }
    }

    /// Runs and run time of each kernel program (zero unless the kernel's
    /// BPF statistics are on; programs loaded later, by a reload, are not
    /// listed).
    pub fn program_runs(&self) -> Vec<ProgramRuns> {
        let mut out: Vec<ProgramRuns> = self
            .programs
            .iter()
            .map(|(_, name)| ProgramRuns {
                name: name.clone(),
                ..ProgramRuns::default()
            })
            .collect();
        for info in aya::programs::loaded_programs().filter_map(Result::ok) {
            if let Some(i) = self.programs.iter().position(|(id, _)| *id == info.id()) {
                out[i].runs = info.run_count();
                out[i].run_ns = info.run_time().as_nanos() as u64;
            }
        }
        out
    }
}

struct RingFd(RingBuf<MapData>);

impl AsRawFd for RingFd {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0.as_raw_fd()
    }
}

/// Events decoded before they are handed on together (well below the
/// detector's queue length).
const SEND_BATCH: usize = 256;

/// The ring-buffer reader.
pub struct Reader {
    ring: AsyncFd<RingFd>,
    /// Bumped every second: the kernel's per-thread cache refreshes.
    generation: aya::maps::Array<MapData, u32>,
    tx: mpsc::Sender<Event>,
    poll: Duration,
    shutdown: tokio::sync::watch::Receiver<bool>,
    user: Arc<UserCounters>,
    clock: decode::Clock,
    heartbeat: Option<crate::telemetry::liveness::Heartbeat>,
    uring: uring::UringJoin,
}

impl Reader {
    /// Beats after every pass over the ring (for `/healthz`).
    pub fn with_heartbeat(mut self, h: crate::telemetry::liveness::Heartbeat) -> Self {
        self.heartbeat = Some(h);
        self
    }

    pub async fn run(mut self) {
        let mut tick = tokio::time::interval(self.poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_bump = std::time::Instant::now();
        let mut generation = 0u32;
        loop {
            if last_bump.elapsed() >= Duration::from_secs(1) {
                generation = generation.wrapping_add(1);
                let _ = self.generation.set(0, &generation, 0);
                last_bump = std::time::Instant::now();
            }
            tokio::select! {
                _ = tick.tick() => {}
                guard = self.ring.readable_mut() => {
                    if let Ok(mut g) = guard { g.clear_ready(); }
                }
                _ = self.shutdown.changed() => {
                    self.drain().await;
                    return;
                }
            }
            if !self.drain().await {
                return;
            }
            if let Some(h) = &self.heartbeat {
                h.beat();
            }
        }
    }

    /// Reads everything waiting; false when the receiver is gone.
    ///
    /// Events go to the detector in batches: one reservation of queue
    /// places per batch instead of a semaphore round trip per event.
    async fn drain(&mut self) -> bool {
        let mut batch = Vec::with_capacity(SEND_BATCH);
        loop {
            let ring = &mut self.ring.get_mut().0;
            while batch.len() < SEND_BATCH {
                let Some(item) = ring.next() else { break };
                self.user.received.fetch_add(1, Ordering::Relaxed);
                match decode::decode(&item, &self.clock) {
                    Ok(ev) => match decode::uring_part(&item) {
                        Some((req, part)) => self.uring.push(ev, req, part, &mut batch),
                        None => batch.push(ev),
                    },
                    Err(e) => {
                        let n = self.user.decode_errors.fetch_add(1, Ordering::Relaxed);
                        if (n + 1).is_power_of_two() {
                            warn!(error = %e, total = n + 1, "undecodable record");
                        }
                    }
                }
            }
            let more = batch.len() >= SEND_BATCH;
            if !more {
                self.uring.expire(self.clock.now_ns(), &mut batch);
                self.user
                    .uring_unanswered
                    .store(self.uring.unanswered, Ordering::Relaxed);
                self.user
                    .uring_unmatched
                    .store(self.uring.unmatched, Ordering::Relaxed);
            }
            if !batch.is_empty() {
                let Ok(places) = self.tx.reserve_many(batch.len()).await else {
                    return false;
                };
                for (place, ev) in places.zip(batch.drain(..)) {
                    place.send(ev);
                }
            }
            if !more {
                return true;
            }
        }
    }
}
