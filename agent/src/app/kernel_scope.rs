//! What the kernel is asked to capture for a ruleset: the syscalls (those
//! the rules watch plus those the state needs) and the open prefilter.

use std::collections::BTreeSet;

use mamori_rules::RuleSet;
use tracing::warn;

use crate::capture::KernelFilter;

/// What the kernel must send: the event types some rule can match, plus
/// what the state needs: working-directory changes always; when a rule
/// looks at `close` (which carries only a descriptor number), every
/// syscall that makes or re-points descriptors, so the fd table can name
/// it; when a rule looks at dup* (described by the kernel), the socket
/// calls, which alone tell a socket's role (client or server).
pub fn kernel_syscalls(rules: &RuleSet, record: bool) -> BTreeSet<String> {
    let mut set: BTreeSet<String> = rules
        .needed_event_types()
        .into_iter()
        .map(str::to_owned)
        .collect();
    if record {
        // A recording is for rules not written yet: everything but the
        // data path (send/recv), which only rules that name it get.
        set.extend(
            mamori_common::syscalls::ALL
                .iter()
                .map(|s| s.name)
                .filter(|n| !matches!(*n, "sendto" | "recvfrom" | "sendmsg" | "recvmsg"))
                .map(str::to_owned),
        );
    }
    set.extend(["chdir", "fchdir"].map(str::to_owned));
    if set.contains("close") {
        set.extend(FD_STATE.map(str::to_owned));
    } else if ["dup", "dup2", "dup3", "fcntl"]
        .iter()
        .any(|s| set.contains(*s))
    {
        set.extend(SOCKET_ROLE.map(str::to_owned));
    }
    set
}

/// Names each enabled rule that watches only syscalls the kernel cannot
/// send: such a rule is never silent about never firing.
pub fn report_rules_that_cannot_fire(rules: &RuleSet, unavailable: &BTreeSet<&'static str>) {
    for r in rules.rules.iter().filter(|r| r.enabled) {
        if let mamori_rules::types::Types::Only(types) = &r.types
            && !types.is_empty()
            && types.iter().all(|t| unavailable.contains(t.as_str()))
        {
            warn!(
                rule = %r.name,
                file = %r.file,
                line = r.line,
                syscalls = ?types,
                "this rule can never fire here: this kernel does not implement the syscalls it \
                 watches (capture.watch_unimplemented: true alerts on attempts)"
            );
        }
    }
}

/// What the kernel may drop: the opens no rule can match (the rules'
/// prefilter; not when a rule on `close` needs every open for the
/// descriptor table) and the failed calls of path syscalls no rule reads
/// (a failed unlink or rename changes no state). None when everything must
/// arrive: a recording and `--events` see every event.
pub fn kernel_prefilter(
    rules: &RuleSet,
    syscalls: &BTreeSet<String>,
    unfiltered: bool,
) -> KernelFilter {
    if unfiltered {
        return KernelFilter::none();
    }
    let mut filter = if syscalls.contains("close") {
        KernelFilter::none()
    } else {
        super::prefilter::encode(rules.open_prefilter())
    };
    filter.failures_dropped = mamori_common::syscalls::ALL
        .iter()
        .filter(|s| s.program == mamori_common::syscalls::Program::Path)
        .filter(|s| syscalls.contains(s.name) && !rules.failures_read().contains(s.name))
        .map(|s| s.nr)
        .collect();
    filter
}

/// Syscalls that make a socket and so fix its role.
const SOCKET_ROLE: [&str; 6] = ["socket", "accept", "accept4", "connect", "bind", "listen"];

/// Syscalls that create, re-point or close descriptors (a close missed
/// would leave a stale name for the number's next, untracked, use).
const FD_STATE: [&str; 17] = [
    "close",
    "open",
    "openat",
    "openat2",
    "creat",
    "memfd_create",
    "socket",
    "accept",
    "accept4",
    "connect",
    "bind",
    "listen",
    "dup",
    "dup2",
    "dup3",
    "fcntl",
    "open_by_handle_at",
];
