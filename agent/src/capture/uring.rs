//! Pairs the two records of an io_uring request into one event: the
//! submission holds what the kernel copied when the request was made (path
//! names, the caller's address), the completion its result and what the
//! result made (the new descriptor's file or socket). The event is the
//! syscall the operation stands for, as if that syscall had been made.
//!
//! Bounded: at most [`MAX_PENDING`] submissions wait, each at most
//! [`MAX_WAIT_NS`]; one released unanswered is still reported (its result
//! unknown, `evt.res` 0) and counted, never dropped. A completion with no
//! submission (its submission was lost, or made before the agent started)
//! is reported with what it carries.

use std::collections::{HashMap, VecDeque};

use super::decode::UringPart;
use crate::event::{Detail, Event, Param};

/// Submissions waiting for their completion, at most.
pub const MAX_PENDING: usize = 4096;
/// How long a submission waits for its completion. Path operations, the
/// ones that wait, finish in micro- to milliseconds.
pub const MAX_WAIT_NS: u64 = 2_000_000_000;

/// The joiner's state; one per capture.
#[derive(Default)]
pub struct UringJoin {
    /// `(tgid, request)` → (sequence, submission).
    pending: HashMap<(u32, u64), (u64, Event)>,
    /// Arrival order, for eviction; entries whose sequence no longer
    /// matches `pending` are stale.
    order: VecDeque<((u32, u64), u64)>,
    seq: u64,
    /// Submissions reported without their completion.
    pub unanswered: u64,
    /// Completions reported without their submission.
    pub unmatched: u64,
}

impl UringJoin {
    /// Takes one io_uring record's event; pushes to `out` what is complete.
    pub fn push(&mut self, ev: Event, req: u64, part: UringPart, out: &mut Vec<Event>) {
        let key = (ev.task.tgid, req);
        match part {
            UringPart::Submitted { last: true } => out.push(ev),
            UringPart::Submitted { last: false } => {
                self.seq += 1;
                if let Some((_, old)) = self.pending.insert(key, (self.seq, ev)) {
                    // The request was reused: its earlier use never completed
                    // (as far as the ring buffer told).
                    self.unanswered += 1;
                    out.push(old);
                }
                self.order.push_back((key, self.seq));
                while self.pending.len() > MAX_PENDING {
                    self.evict_oldest(out);
                }
            }
            UringPart::Completed => match self.pending.remove(&key) {
                Some((_, head)) => out.push(merge(head, ev)),
                None => {
                    self.unmatched += 1;
                    out.push(ev);
                }
            },
        }
        // Keep the order queue from growing with stale entries.
        if self.order.len() > 2 * MAX_PENDING.max(self.pending.len()) {
            let pending = &self.pending;
            self.order
                .retain(|(k, s)| pending.get(k).is_some_and(|(ps, _)| ps == s));
        }
    }

    /// Releases submissions that waited longer than [`MAX_WAIT_NS`] at
    /// wall time `now_ns`.
    pub fn expire(&mut self, now_ns: u64, out: &mut Vec<Event>) {
        while let Some(&(key, seq)) = self.order.front() {
            match self.pending.get(&key) {
                Some((s, ev)) if *s == seq => {
                    if now_ns.saturating_sub(ev.time_ns) < MAX_WAIT_NS {
                        return;
                    }
                    self.evict_oldest(out);
                }
                _ => {
                    self.order.pop_front();
                }
            }
        }
    }

    /// Submissions waiting now.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    fn evict_oldest(&mut self, out: &mut Vec<Event>) {
        while let Some((key, seq)) = self.order.pop_front() {
            if let Some((s, ev)) = self.pending.remove(&key) {
                if s == seq {
                    self.unanswered += 1;
                    out.push(ev);
                    return;
                }
                // A stale order entry: the key was reused; keep the newer.
                self.pending.insert(key, (s, ev));
            }
        }
    }
}

/// The submission with the completion's result and every parameter the
/// completion knows. The submitter stays the actor (the completion may
/// run in an io-wq worker of the same process).
fn merge(mut head: Event, tail: Event) -> Event {
    head.ret = tail.ret;
    if let (Detail::Syscall { params, .. }, Detail::Syscall { params: tail, .. }) =
        (&mut head.detail, tail.detail)
    {
        for (i, p) in tail.into_iter().enumerate() {
            if matches!(p, Param::Absent) {
                continue;
            }
            if i < params.len() {
                params[i] = p;
            } else {
                params.resize(i, Param::Absent);
                params.push(p);
            }
        }
    }
    head
}

#[cfg(test)]
mod tests {
    use mamori_common::syscalls;

    use super::*;
    use crate::event::{EventType, Task, Text};

    fn ev(tgid: u32, time_ns: u64, ret: i64, params: Vec<Param>) -> Event {
        Event {
            ty: EventType::Syscall(syscalls::by_name("openat").unwrap()),
            time_ns,
            task: Task {
                tgid,
                ..Task::default()
            },
            ret,
            detail: Detail::Syscall {
                args: [0; 6],
                params,
                uring: Some(18),
            },
        }
    }

    fn name(s: &str) -> Param {
        Param::KernelStr(Text::from(s))
    }

    #[test]
    fn a_submission_waits_for_its_completion_and_takes_its_result() {
        let mut j = UringJoin::default();
        let mut out = Vec::new();
        j.push(
            ev(7, 1, 0, vec![name("/etc/shadow")]),
            0xa0,
            UringPart::Submitted { last: false },
            &mut out,
        );
        assert!(out.is_empty());
        let path = Param::Path {
            path: Text::from("/etc/shadow"),
            partial: false,
        };
        j.push(
            ev(7, 2, 3, vec![Param::Absent, path.clone()]),
            0xa0,
            UringPart::Completed,
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].ret, 3);
        assert_eq!(out[0].params(), &[name("/etc/shadow"), path]);
        assert_eq!((j.pending(), j.unanswered, j.unmatched), (0, 0, 0));
    }

    #[test]
    fn requests_of_other_processes_never_pair() {
        let mut j = UringJoin::default();
        let mut out = Vec::new();
        j.push(
            ev(7, 1, 0, vec![name("a")]),
            0xa0,
            UringPart::Submitted { last: false },
            &mut out,
        );
        j.push(ev(8, 2, -2, vec![]), 0xa0, UringPart::Completed, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].task.tgid, 8);
        assert_eq!((j.pending(), j.unmatched), (1, 1));
    }

    #[test]
    fn nothing_waits_forever_or_without_bound() {
        let mut j = UringJoin::default();
        let mut out = Vec::new();
        for i in 0..MAX_PENDING as u64 + 10 {
            j.push(
                ev(7, i, 0, vec![]),
                i,
                UringPart::Submitted { last: false },
                &mut out,
            );
        }
        assert_eq!(j.pending(), MAX_PENDING);
        assert_eq!(out.len(), 10);
        assert_eq!(out[0].time_ns, 0, "the oldest goes first");
        j.expire(MAX_PENDING as u64 + 10 + MAX_WAIT_NS, &mut out);
        assert_eq!(j.pending(), 0);
        assert_eq!(out.len(), MAX_PENDING + 10);
        assert_eq!(j.unanswered, MAX_PENDING as u64 + 10);
    }

    #[test]
    fn a_submission_without_completion_is_reported_at_once() {
        let mut j = UringJoin::default();
        let mut out = Vec::new();
        j.push(
            ev(7, 1, 0, vec![name("x")]),
            1,
            UringPart::Submitted { last: true },
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(j.pending(), 0);
    }
}
