//! `mamori replay`: a recording's events through the same state and
//! detector as a live run, offline (the state is rebuilt from the
//! recording's own records, never from this host).

use std::{
    fs::File,
    io::{BufRead, BufReader},
    path::Path,
    sync::Arc,
};

use anyhow::Context;
use flate2::read::MultiGzDecoder;

use crate::{
    alert::Alert,
    detect::Detector,
    event::Event,
    record::{FORMAT, Record, VERSION},
    state::State,
};

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
/// with `rules` over an [`State::offline`]; `alert` receives each alert.
pub fn replay(
    path: &Path,
    rules: Arc<mamori_rules::RuleSet>,
    mut alert: impl FnMut(Alert),
) -> anyhow::Result<Summary> {
    replay_with(path, rules, |detector, state, ev, _| {
        let mut n = 0;
        detector.process(state, ev, |a| {
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
    mut each: impl FnMut(&mut Detector, &mut State, &Event, u64) -> anyhow::Result<u64>,
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
    let mut detector = Detector::new(rules, hostname.clone());
    let mut state = State::offline(boot_wall_ns);
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
        let alerted = apply(&mut detector, &mut state, rec, &mut summary, &mut each)
            .with_context(|| where_(i + 2))?;
        summary.alerts += alerted;
    }
    Ok(summary)
}

/// Applies one record to the detector; returns the alerts it raised.
fn apply(
    detector: &mut Detector,
    state: &mut State,
    rec: Record,
    summary: &mut Summary,
    each: &mut impl FnMut(&mut Detector, &mut State, &Event, u64) -> anyhow::Result<u64>,
) -> anyhow::Result<u64> {
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
            return each(detector, state, &ev, summary.events);
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        record::{Recorder, tests::open_event},
        state::users::Db,
    };

    #[test]
    fn a_recording_replays_through_the_detector() {
        let dir = std::env::temp_dir().join(format!("mamori-rec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r.jsonl.gz");
        let mut state = State::offline(0);
        state
            .users
            .insert(0, Db::parse("root:x:0:0::/root:/bin/sh\n", ""));
        let mut rec = Recorder::create(&path, &mut state, "h1").unwrap();
        let ev = open_event(7, b"/etc/shadow");
        let before = rec.before(&state, &ev);
        state.apply_before(&ev);
        rec.after(&mut state, &ev, before).unwrap();
        rec.finish().unwrap();

        let rules = Arc::new(crate::rules_files::load(&[]).unwrap());
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
        let rules = Arc::new(crate::rules_files::load(&[]).unwrap());
        let e = replay(&path, rules, |_| {}).unwrap_err();
        assert!(format!("{e:#}").contains("not a mamori recording"), "{e:#}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
