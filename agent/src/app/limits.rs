//! The agent's internal alerts about its own limits: tables full, a
//! container runtime not answering, paths the kernel could not walk. Each
//! at most once a minute, counting what happened since the last one.

use std::time::Duration;

use tracing::warn;

use crate::{
    alert::{Alert, FieldValue, Priority},
    state::State,
};

/// Raises `mamori internal: state limit reached` when the process table
/// evicts or the descriptor tables refuse entries: at most once a minute,
/// each alert counting what happened since the previous one.
pub(super) struct LimitWatch {
    hostname: String,
    reported: (u64, u64),
    last: Option<std::time::Instant>,
    /// Container lookups that ran out or were refused, as last reported.
    runtime_reported: (u64, u64),
    runtime_last: Option<std::time::Instant>,
    /// Paths not resolved, as last reported.
    paths_reported: u64,
    paths_last: Option<std::time::Instant>,
}

impl LimitWatch {
    const EVERY: Duration = Duration::from_secs(60);

    pub(super) fn new(hostname: String) -> Self {
        Self {
            hostname,
            reported: (0, 0),
            last: None,
            runtime_reported: (0, 0),
            runtime_last: None,
            paths_reported: 0,
            paths_last: None,
        }
    }

    /// `mamori internal: path not resolved`: the kernel could not walk some
    /// paths to the root since the last alert (at most one a minute).
    pub(super) fn check_paths(&mut self, state: &State) -> Option<Alert> {
        let now = state.partial_paths;
        if now == self.paths_reported || self.paths_last.is_some_and(|t| t.elapsed() < Self::EVERY)
        {
            return None;
        }
        let n = now - self.paths_reported;
        self.paths_reported = now;
        self.paths_last = Some(std::time::Instant::now());
        warn!(n, "paths not resolved to the root");
        Some(Alert::internal(
            crate::time::now_ns(),
            (
                "mamori internal: path not resolved",
                "The kernel could not walk a file's path to the root (too deep, too \
                          many mounts, or outside the process's root): fd.name was unknown for \
                          those events (fd.partial_name holds the end), and rules comparing it \
                          did not match.",
            ),
            Priority::Notice,
            format!("mamori: {n} paths could not be resolved to the root"),
            vec![("n_paths".to_owned(), FieldValue::UInt(n))],
            &self.hostname,
        ))
    }

    /// `mamori internal: container runtime not answering`: a hold ran out
    /// or lookups were refused since the last alert (at most one a minute).
    pub(super) fn check_runtime(&mut self, state: &State) -> Option<Alert> {
        use std::sync::atomic::Ordering::Relaxed;
        let s = &state.containers.stats;
        let now = (s.wait_expired.load(Relaxed), s.refused.load(Relaxed));
        if now == self.runtime_reported
            || self.runtime_last.is_some_and(|t| t.elapsed() < Self::EVERY)
        {
            return None;
        }
        let (expired, refused) = (
            now.0 - self.runtime_reported.0,
            now.1 - self.runtime_reported.1,
        );
        self.runtime_reported = now;
        self.runtime_last = Some(std::time::Instant::now());
        warn!(
            expired,
            refused, "container runtime lookups ran out or were refused"
        );
        Some(Alert::internal(
            crate::time::now_ns(),
            (
                "mamori internal: container runtime not answering",
                "Container metadata did not arrive in time, or too many lookups were \
                          running: events of new containers are evaluated without it (no \
                          container name, image or pod), and are not held again for a while.",
            ),
            Priority::Warning,
            format!(
                "mamori: container runtime not answering: {expired} metadata waits ran out, \
                 {refused} lookups refused ({} at most at once); events are not held for \
                 metadata for {} s after a wait runs out",
                crate::state::container::MAX_IN_FLIGHT,
                crate::state::container::HOLD_BACKOFF.as_secs()
            ),
            vec![
                ("n_waits_expired".to_owned(), FieldValue::UInt(expired)),
                ("n_lookups_refused".to_owned(), FieldValue::UInt(refused)),
            ],
            &self.hostname,
        ))
    }

    pub(super) fn check(&mut self, state: &State) -> Option<Alert> {
        let (evicted, refused) = state.processes.limits_hit();
        if (evicted, refused) == self.reported
            || self.last.is_some_and(|t| t.elapsed() < Self::EVERY)
        {
            return None;
        }
        let (new_evicted, new_refused) = (evicted - self.reported.0, refused - self.reported.1);
        self.reported = (evicted, refused);
        self.last = Some(std::time::Instant::now());
        let budget = state.processes.fd_budget();
        warn!(new_evicted, new_refused, "state limits reached");
        Some(Alert::internal(
            crate::time::now_ns(),
            (
                "mamori internal: state limit reached",
                "A table of the agent's state is full: what did not fit is not tracked, \
                          and rules on it may miss.",
            ),
            Priority::Error,
            format!(
                "mamori state limits reached: {new_evicted} processes evicted, {new_refused} \
                 descriptors not kept (descriptor tables at {} of {} bytes)",
                budget.used(),
                budget.limit()
            ),
            vec![
                (
                    "n_processes_evicted".to_owned(),
                    FieldValue::UInt(new_evicted),
                ),
                ("n_fds_refused".to_owned(), FieldValue::UInt(new_refused)),
                (
                    "fd_table_bytes".to_owned(),
                    FieldValue::UInt(budget.used() as u64),
                ),
                (
                    "fd_table_limit_bytes".to_owned(),
                    FieldValue::UInt(budget.limit() as u64),
                ),
            ],
            &self.hostname,
        ))
    }
}

/// `mamori internal: path copies table full`: the kernel's table of path
/// strings copied at syscall entry was full for some calls (their paths
/// were read at exit only, so a swap during the call could not show). At
/// most one a minute, counting the calls since the last one.
pub(super) struct EntryCopyWatch {
    hostname: String,
    reported: u64,
    last: Option<std::time::Instant>,
}

impl EntryCopyWatch {
    pub(super) fn new(hostname: String) -> Self {
        Self {
            hostname,
            reported: 0,
            last: None,
        }
    }

    /// `missed`: the kernel's count so far.
    pub(super) fn check(&mut self, missed: u64) -> Option<Alert> {
        if missed <= self.reported || self.last.is_some_and(|t| t.elapsed() < LimitWatch::EVERY) {
            return None;
        }
        let n = missed - self.reported;
        self.reported = missed;
        self.last = Some(std::time::Instant::now());
        warn!(n, "path strings not copied at syscall entry: table full");
        Some(Alert::internal(
            crate::time::now_ns(),
            (
                "mamori internal: path copies table full",
                "More path syscalls were in flight than the kernel's table of entry copies \
                 holds: their paths were read at exit only, and a path changed during such \
                 a call was not detected.",
            ),
            Priority::Warning,
            format!("mamori: {n} path syscalls were not copied at entry (table full)"),
            vec![("n_calls".to_owned(), FieldValue::UInt(n))],
            &self.hostname,
        ))
    }
}
