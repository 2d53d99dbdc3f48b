//! Recordings: the decoded, enriched event stream of `mamori run --record`
//! (`app::replay` runs one through the same detector, offline).
//!
//! A recording is gzip-compressed JSON lines. The first line is the header
//! (format name and version); then the state the events need that the
//! events themselves do not carry: the process table at the start and every
//! process later read from /proc, each mount namespace's users and groups,
//! each container's metadata; then the events. Each such record comes
//! before the first event that needs it, so a replay rebuilds the same state
//! the live detector had, without touching /proc, files or runtimes.

pub mod wire;

use std::{
    fs::File,
    io::{BufWriter, Write},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::Context;
use flate2::{Compression, write::GzEncoder};
use serde::{Deserialize, Serialize};

use crate::{
    event::Event,
    state::{State, users::Db},
};
use wire::{EventRec, ProcessRec};

/// The value of the header's `format`.
pub const FORMAT: &str = "mamori-record";
/// Bumped when a change makes older readers misread a recording.
pub const VERSION: u32 = 1;

/// One line of a recording.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Record {
    Header {
        format: String,
        version: u32,
        hostname: String,
        /// When recording started, ns since the epoch.
        started_ns: u64,
        /// The recorded host's boot time (exec start times count from it).
        boot_wall_ns: u64,
    },
    Process(ProcessRec),
    Users {
        mntns: u32,
        db: Db,
    },
    Container {
        id: String,
        metadata: crate::state::runtime::Metadata,
    },
    Event(EventRec),
}

/// How often buffered records reach the file.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Writes a recording beside the live detector.
pub struct Recorder {
    out: GzEncoder<BufWriter<File>>,
    /// One record, serialised whole before it reaches the compressor
    /// (which is slow with serde's many small writes).
    line: Vec<u8>,
    path: PathBuf,
    last_flush: Instant,
    pub events: u64,
}

/// What the state knew before an event, to see what the event taught it.
pub struct Before {
    process_known: bool,
    users_known: bool,
}

impl Recorder {
    /// Creates `path` and writes the header and the state as it is now.
    pub fn create(path: &Path, state: &mut State, hostname: &str) -> anyhow::Result<Self> {
        let file = File::create(path)
            .with_context(|| format!("cannot create the recording {}", path.display()))?;
        let mut r = Self {
            out: GzEncoder::new(BufWriter::new(file), Compression::fast()),
            line: Vec::with_capacity(1024),
            path: path.to_owned(),
            last_flush: Instant::now(),
            events: 0,
        };
        r.write(&Record::Header {
            format: FORMAT.into(),
            version: VERSION,
            hostname: hostname.into(),
            started_ns: crate::time::now_ns(),
            boot_wall_ns: state.processes.boot_wall_ns(),
        })?;
        for p in state.processes.iter() {
            r.write(&Record::Process(p.into()))?;
        }
        for (mntns, db) in state.users.iter() {
            r.write(&Record::Users {
                mntns,
                db: db.clone(),
            })?;
        }
        for (id, m) in state.containers.known() {
            r.write(&Record::Container {
                id: id.into(),
                metadata: m.clone(),
            })?;
        }
        state.containers.keep_journal();
        r.flush()?;
        Ok(r)
    }

    /// Call before the detector processes `ev`.
    pub fn before(&self, state: &State, ev: &Event) -> Before {
        Before {
            process_known: state.processes.get(ev.task.tgid).is_some(),
            users_known: state.users.db(ev.task.mntns).is_some(),
        }
    }

    /// Call after: writes what `ev` taught the state, then `ev`.
    pub fn after(&mut self, state: &mut State, ev: &Event, before: Before) -> anyhow::Result<()> {
        for id in state.containers.take_journal() {
            if let Some(m) = state.containers.metadata(&id) {
                let rec = Record::Container {
                    id: id.to_string(),
                    metadata: m.clone(),
                };
                self.write(&rec)?;
            }
        }
        if !before.users_known
            && let Some(db) = state.users.db(ev.task.mntns)
        {
            let rec = Record::Users {
                mntns: ev.task.mntns,
                db: db.clone(),
            };
            self.write(&rec)?;
        }
        if !before.process_known
            && let Some(p) = state.processes.get(ev.task.tgid)
            && p.origin == crate::state::process::Origin::ProcFs
        {
            self.write(&Record::Process(p.into()))?;
        }
        self.write(&Record::Event(ev.into()))?;
        self.events += 1;
        Ok(())
    }

    /// Flushes when a second has passed since the last flush.
    pub fn flush_if_due(&mut self) -> anyhow::Result<()> {
        if self.last_flush.elapsed() >= FLUSH_EVERY {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        self.out
            .flush()
            .with_context(|| format!("cannot write the recording {}", self.path.display()))?;
        self.last_flush = Instant::now();
        Ok(())
    }

    /// Completes the file (the gzip trailer).
    pub fn finish(self) -> anyhow::Result<()> {
        let path = self.path.clone();
        let mut w = self
            .out
            .finish()
            .with_context(|| format!("cannot finish the recording {}", path.display()))?;
        w.flush()?;
        Ok(())
    }

    fn write(&mut self, r: &Record) -> anyhow::Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, r)?;
        self.line.push(b'\n');
        self.out
            .write_all(&self.line)
            .with_context(|| format!("cannot write the recording {}", self.path.display()))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::event::{Detail, EventType, Param, Task, Text};
    use mamori_common::syscalls;

    /// An `openat` of `name` by `pid` (also used by the replay tests).
    pub(crate) fn open_event(pid: u32, name: &[u8]) -> Event {
        let openat = syscalls::ALL.iter().find(|s| s.name == "openat").unwrap();
        Event {
            ty: EventType::Syscall(openat),
            time_ns: 1_700_000_000_000_000_000,
            task: Task {
                tgid: pid,
                tid: pid,
                comm: "cat".into(),
                ..Task::default()
            },
            ret: 3,
            detail: Detail::Syscall {
                args: [(-100_i64) as u64, 0, 0, 0, 0, 0],
                params: vec![
                    Param::Str(Text {
                        bytes: name.to_vec(),
                        truncated: true,
                    }),
                    Param::Absent,
                ],
                uring: None,
            },
        }
    }

    #[test]
    fn events_round_trip_with_hostile_bytes() {
        let ev = open_event(7, b"/tmp/a\nb\xff\x00c");
        let line = serde_json::to_string(&Record::Event((&ev).into())).unwrap();
        assert!(!line.contains('\n'), "one line per record: {line}");
        let Record::Event(back) = serde_json::from_str(&line).unwrap() else {
            panic!("not an event: {line}");
        };
        assert_eq!(back.to_event().unwrap(), ev);
    }
}
