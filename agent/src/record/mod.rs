//! Recordings: the decoded, enriched event stream of `mamori run --record`,
//! and `mamori replay` of it through the same detector, offline.
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
    io::{BufRead, BufReader, BufWriter, Write},
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use flate2::{Compression, read::MultiGzDecoder, write::GzEncoder};
use serde::{Deserialize, Serialize};

use crate::{
    alert::Alert,
    detect::Detector,
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
            started_ns: crate::app::now_ns(),
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

/// What a replay went through.
#[derive(Debug, Default)]
pub struct Summary {
    pub hostname: String,
    pub events: u64,
    pub alerts: u64,
    pub first_ns: u64,
    pub last_ns: u64,
    /// The file ended without its gzip trailer (the agent was killed):
    /// everything before the cut was replayed.
    pub cut_short: bool,
}

/// Reads the recording at `path` and runs its events through a detector
/// with `rules` over an [`offline_state`]; `alert` receives each alert.
pub fn replay(
    path: &Path,
    rules: Arc<mamori_rules::RuleSet>,
    mut alert: impl FnMut(Alert),
) -> anyhow::Result<Summary> {
    replay_with(path, rules, |detector, ev, _| {
        let mut n = 0;
        detector.process(ev, |a| {
            n += 1;
            alert(a);
        });
        Ok(n)
    })
}

/// As [`replay`], handing each event (and its number, from 1) to `each`,
/// which runs it through the detector and returns the alerts it raised.
pub fn replay_with(
    path: &Path,
    rules: Arc<mamori_rules::RuleSet>,
    mut each: impl FnMut(&mut Detector, &Event, u64) -> anyhow::Result<u64>,
) -> anyhow::Result<Summary> {
    let file = File::open(path)
        .with_context(|| format!("cannot open the recording {}", path.display()))?;
    let mut lines = BufReader::new(MultiGzDecoder::new(BufReader::new(file))).lines();
    let where_ = |n: usize| format!("{}: record {n}", path.display());
    let header = match lines.next() {
        Some(Ok(l)) => serde_json::from_str::<Record>(&l).ok(),
        Some(Err(e)) => {
            return Err(e).with_context(|| format!("{} is not a mamori recording", path.display()));
        }
        None => None,
    };
    let Some(Record::Header {
        format,
        version,
        hostname,
        boot_wall_ns,
        ..
    }) = header
    else {
        anyhow::bail!("{} is not a mamori recording (no header)", path.display());
    };
    anyhow::ensure!(
        format == FORMAT && version <= VERSION,
        "{}: recording format {format} version {version}; this mamori reads {FORMAT} up to version {VERSION}",
        path.display()
    );
    let mut detector = Detector::new(rules, offline_state(boot_wall_ns), hostname.clone());
    let mut summary = Summary {
        hostname,
        ..Default::default()
    };
    for (i, line) in lines.enumerate() {
        let line = match line {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                summary.cut_short = true;
                break;
            }
            Err(e) => return Err(e).with_context(|| where_(i + 2)),
        };
        let rec: Record = serde_json::from_str(&line)
            .with_context(|| format!("{}: cannot read it", where_(i + 2)))?;
        let alerted =
            apply(&mut detector, rec, &mut summary, &mut each).with_context(|| where_(i + 2))?;
        summary.alerts += alerted;
    }
    Ok(summary)
}

/// Applies one record to the detector; returns the alerts it raised.
fn apply(
    detector: &mut Detector,
    rec: Record,
    summary: &mut Summary,
    each: &mut impl FnMut(&mut Detector, &Event, u64) -> anyhow::Result<u64>,
) -> anyhow::Result<u64> {
    let state = &mut detector.state;
    match rec {
        Record::Header { .. } => anyhow::bail!("a second header"),
        Record::Process(p) => {
            let p = p.to_process();
            if let Some(c) = &p.container {
                state.containers.learn(p.cgroup_id, c.clone());
            }
            state.processes.insert(p);
        }
        Record::Users { mntns, db } => state.users.insert(mntns, db),
        Record::Container { id, metadata } => {
            state.containers.insert_metadata(&id, metadata);
        }
        Record::Event(e) => {
            let ev = e.to_event().map_err(anyhow::Error::msg)?;
            if summary.events == 0 {
                summary.first_ns = ev.time_ns;
            }
            summary.events += 1;
            summary.last_ns = ev.time_ns;
            return each(detector, &ev, summary.events);
        }
    }
    Ok(0)
}

/// A state that only learns from records: no /proc, files or runtimes.
pub fn offline_state(boot_wall_ns: u64) -> State {
    let mut s = State::empty();
    s.processes.offline = true;
    s.processes.set_boot_wall_ns(boot_wall_ns);
    s.users = crate::state::users::Users::offline();
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Detail, EventType, Param, Task, Text};
    use mamori_common::syscalls;

    fn open_event(pid: u32, name: &[u8]) -> Event {
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

    #[test]
    fn a_recording_replays_through_the_detector() {
        let dir = std::env::temp_dir().join(format!("mamori-rec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r.jsonl.gz");
        let mut state = offline_state(0);
        state
            .users
            .insert(0, Db::parse("root:x:0:0::/root:/bin/sh\n", ""));
        let mut rec = Recorder::create(&path, &mut state, "h1").unwrap();
        let ev = open_event(7, b"/etc/shadow");
        let before = rec.before(&state, &ev);
        state.apply_before(&ev);
        rec.after(&mut state, &ev, before).unwrap();
        rec.finish().unwrap();

        let rules = Arc::new(crate::app::load_rules(&[]).unwrap());
        let mut alerts = Vec::new();
        let s = replay(&path, rules, |a| alerts.push(a)).unwrap();
        assert_eq!((s.events, s.alerts, s.hostname.as_str()), (1, 1, "h1"));
        assert_eq!(alerts[0].rule, "Credential file read by unexpected process");
        assert!(
            alerts[0].message.contains("user=root"),
            "{}",
            alerts[0].message
        );
        assert!(!s.cut_short);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn not_a_recording_is_a_clear_error() {
        let dir = std::env::temp_dir().join(format!("mamori-rec-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.gz");
        std::fs::write(&path, b"plain text").unwrap();
        let rules = Arc::new(crate::app::load_rules(&[]).unwrap());
        let e = replay(&path, rules, |_| {}).unwrap_err();
        assert!(format!("{e:#}").contains("not a mamori recording"), "{e:#}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
