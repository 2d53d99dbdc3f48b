//! The disk spool: an append-only, checksummed, size-bounded queue of
//! alert documents between the alert stream and Elasticsearch.
//!
//! Written here rather than taken from a crate: the delivery guarantee
//! (every alert indexed once, or counted as dropped) rests on exactly
//! these invariants — acknowledgement by sequence number, torn-tail
//! recovery, the oldest-first drop with its count — which the embedded
//! queues on crates.io do not offer together; `spool_tests.rs` holds them.
//!
//! Every document is written here before it is sent, so alerts survive an
//! Elasticsearch outage and an agent crash or restart; the sender reads in
//! order and acknowledges what Elasticsearch has stored.
//!
//! Invariants:
//! - Records get consecutive sequence numbers from 1; a segment file is
//!   named by its first sequence number, so a segment holds the records
//!   `[its first, the next segment's first)`.
//! - Each record is `magic, length, seq, crc32(seq, payload), payload`;
//!   a record is trusted only when all of them check out.
//! - `acked` (persisted in the `acked` file) is the highest sequence number
//!   delivered: everything at or below it may be deleted. Losing that file
//!   only causes resends, which Elasticsearch recognises by `_id`.
//! - A torn tail (a crash mid-write) is cut off at open; corrupt bytes
//!   elsewhere are skipped to the next valid record; both are counted.
//! - Past `max_bytes` the oldest segment is deleted, delivered or not; its
//!   undelivered records are counted as dropped, in the `drops` file until
//!   an internal alert has reported them (so a restart cannot hide them).

use std::{
    collections::VecDeque,
    fs::{self, File, OpenOptions},
    io::{self, BufReader, Read, Seek, SeekFrom, Write},
    os::fd::AsRawFd,
    path::{Path, PathBuf},
};

use self::record::{Decoded, HEADER, decode, encode, scan_valid, skip_to_valid};

/// Largest payload accepted; a larger length field means corruption.
pub const MAX_RECORD: usize = 16 << 20;
const SEGMENT_SUFFIX: &str = ".seg";

/// Sizes of the spool.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Total size of all segments.
    pub max_bytes: u64,
    /// A segment is closed and a new one started past this size.
    pub segment_bytes: u64,
}

impl Limits {
    /// Segments of a sixteenth of the total, between 64 KiB and 64 MiB, so
    /// dropping the oldest frees a small part of the spool.
    pub fn with_max(max_bytes: u64) -> Self {
        Self {
            max_bytes,
            segment_bytes: (max_bytes / 16).clamp(64 << 10, 64 << 20),
        }
    }
}

/// Counters since open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub appended: u64,
    /// Undelivered records deleted because the spool was full.
    pub dropped_full: u64,
    /// Records that failed their checks (torn or corrupt) and were skipped.
    pub corrupt_records: u64,
    pub corrupt_bytes: u64,
}

/// Undelivered records dropped from a full spool, kept on disk until
/// reported. The report is not itself spooled: a report that could be
/// dropped in turn would hide the drops it counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drops {
    /// Records dropped since the spool was created.
    pub total: u64,
    /// Of those, how many an internal alert has reported.
    pub reported: u64,
    /// When the last drop happened (ns since the epoch).
    pub last_ns: u64,
}

impl Drops {
    pub fn unreported(&self) -> u64 {
        self.total.saturating_sub(self.reported)
    }
}

/// A record read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub seq: u64,
    pub payload: Vec<u8>,
}

#[derive(Debug)]
struct Segment {
    first_seq: u64,
    path: PathBuf,
    bytes: u64,
}

/// Where the reader is: a segment (by first seq) and a byte offset.
#[derive(Clone, Copy, Debug)]
struct ReadPos {
    segment: u64,
    offset: u64,
}

#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    limits: Limits,
    segments: VecDeque<Segment>,
    /// The last segment, open for appending.
    writer: Option<File>,
    next_seq: u64,
    acked: u64,
    read: ReadPos,
    /// The seq the reader returns next (or a lower bound of it).
    read_seq: u64,
    stats: Stats,
    drops: Drops,
    /// Held for the spool's life: one agent per directory.
    _lock: File,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("spool {dir}: {op}: {source}")]
    Io {
        dir: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("spool {0} is in use by another process (its lock is held)")]
    Locked(PathBuf),
    #[error("a {0}-byte document is larger than the spool's record limit ({MAX_RECORD} bytes)")]
    TooLarge(usize),
}

type Result<T> = std::result::Result<T, Error>;

impl Spool {
    /// Opens (or creates) the spool in `dir`, cutting off a torn tail.
    pub fn open(dir: &Path, limits: Limits) -> Result<Self> {
        let io = |op: &'static str| {
            let dir = dir.to_owned();
            move |source| Error::Io { dir, op, source }
        };
        fs::create_dir_all(dir).map_err(io("create directory"))?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))
            .map_err(io("open lock"))?;
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(Error::Locked(dir.to_owned()));
        }
        let acked = read_acked(dir).map_err(io("read acked"))?;
        let drops = read_drops(dir).map_err(io("read drops"))?;
        let mut segments = list_segments(dir).map_err(io("list segments"))?;
        let mut stats = Stats::default();
        // Only the last segment can have a torn tail: earlier ones were
        // closed after a sync.
        let mut next_seq = acked + 1;
        let mut tail_end = None;
        if let Some(last) = segments.back_mut() {
            let (valid_end, last_seq, skipped) =
                scan_valid(&last.path, last.first_seq).map_err(io("scan last segment"))?;
            if valid_end < last.bytes {
                stats.corrupt_records += u64::from(skipped);
                stats.corrupt_bytes += last.bytes - valid_end;
                let f = OpenOptions::new()
                    .write(true)
                    .open(&last.path)
                    .map_err(io("open segment"))?;
                f.set_len(valid_end).map_err(io("truncate torn tail"))?;
                f.sync_all().map_err(io("sync"))?;
                last.bytes = valid_end;
            }
            let end = last_seq.map_or(last.first_seq, |s| s + 1);
            tail_end = Some(end);
            next_seq = next_seq.max(end);
        }
        let read = ReadPos {
            segment: segments.front().map_or(next_seq, |s| s.first_seq),
            offset: 0,
        };
        // Go on appending to the last segment when it ends where the
        // sequence goes on and has room.
        let writer = match segments.back() {
            Some(last) if last.bytes < limits.segment_bytes && Some(next_seq) == tail_end => Some(
                OpenOptions::new()
                    .append(true)
                    .open(&last.path)
                    .map_err(io("open segment"))?,
            ),
            _ => None,
        };
        let mut spool = Self {
            dir: dir.to_owned(),
            limits,
            segments,
            writer,
            next_seq,
            acked,
            read,
            read_seq: acked + 1,
            stats,
            drops,
            _lock: lock,
        };
        spool.seek_to_unacked();
        spool.delete_acked()?;
        Ok(spool)
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Records written and not yet acknowledged (dropped ones excluded).
    pub fn pending(&self) -> u64 {
        let oldest = self.segments.front().map_or(self.next_seq, |s| s.first_seq);
        self.next_seq - oldest.max(self.acked + 1).min(self.next_seq)
    }

    /// Bytes on disk.
    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }

    pub fn acked(&self) -> u64 {
        self.acked
    }

    pub fn drops(&self) -> Drops {
        self.drops
    }

    /// Records that the drops up to `total` have been reported.
    pub fn drops_reported(&mut self, total: u64) -> Result<()> {
        if total <= self.drops.reported {
            return Ok(());
        }
        self.drops.reported = total.min(self.drops.total);
        self.write_drops()
    }

    fn write_drops(&self) -> Result<()> {
        let d = self.drops;
        self.replace_file(
            "drops",
            &format!("{} {} {}\n", d.total, d.reported, d.last_ns),
        )
    }

    /// Replaces a small state file whole (write, then rename over it).
    fn replace_file(&self, name: &'static str, content: &str) -> Result<()> {
        let tmp = self.dir.join(format!("{name}.tmp"));
        fs::write(&tmp, content)
            .and_then(|()| fs::rename(&tmp, self.dir.join(name)))
            .map_err(|source| Error::Io {
                dir: self.dir.clone(),
                op: name,
                source,
            })
    }

    /// Appends `payloads` in order and syncs them to disk before
    /// returning. Returns how many undelivered records were dropped to make
    /// room.
    pub fn append<P: AsRef<[u8]>>(&mut self, payloads: &[P]) -> Result<u64> {
        if let Some(p) = payloads.iter().find(|p| p.as_ref().len() > MAX_RECORD) {
            return Err(Error::TooLarge(p.as_ref().len()));
        }
        let mut buf = Vec::new();
        for p in payloads {
            let p = p.as_ref();
            let size = (HEADER + p.len()) as u64;
            let current = self.segments.back().map_or(0, |s| s.bytes) + buf.len() as u64;
            if self.writer.is_none() || (current > 0 && current + size > self.limits.segment_bytes)
            {
                self.flush(&mut buf)?;
                self.start_segment()?;
            }
            encode(&mut buf, self.next_seq, p);
            self.next_seq += 1;
            self.stats.appended += 1;
        }
        self.flush(&mut buf)?;
        self.enforce_limit()
    }

    /// Reads up to `max_records` records (and about `max_bytes`) after the
    /// last one read, in order. Corrupt bytes are skipped and counted.
    pub fn read(&mut self, max_records: usize, max_bytes: usize) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        let mut bytes = 0;
        while out.len() < max_records && bytes < max_bytes {
            let Some(idx) = self.segment_index(self.read.segment) else {
                // The segment is gone (dropped when full): go on with the
                // next one there is.
                let next = self
                    .segments
                    .iter()
                    .find(|s| s.first_seq > self.read.segment)
                    .map(|s| s.first_seq);
                if self.move_to(next) {
                    continue;
                }
                break;
            };
            let seg = &self.segments[idx];
            if self.read.offset >= seg.bytes {
                let next = self.segments.get(idx + 1).map(|s| s.first_seq);
                if self.move_to(next) {
                    continue;
                }
                break;
            }
            let path = seg.path.clone();
            let end = seg.bytes;
            let io = |op| {
                let dir = self.dir.clone();
                move |source| Error::Io { dir, op, source }
            };
            let mut f = File::open(&path).map_err(io("open segment"))?;
            f.seek(SeekFrom::Start(self.read.offset))
                .map_err(io("seek segment"))?;
            let mut r = BufReader::new(f.take(end - self.read.offset));
            while out.len() < max_records && bytes < max_bytes && self.read.offset < end {
                match decode(&mut r).map_err(io("read segment"))? {
                    Decoded::Record(rec, size) => {
                        self.read.offset += size;
                        self.read_seq = self.read_seq.max(rec.seq + 1);
                        if rec.seq > self.acked {
                            bytes += rec.payload.len();
                            out.push(rec);
                        }
                    }
                    Decoded::Bad => {
                        // Re-read from the next byte, looking for a record.
                        let skipped = skip_to_valid(&path, self.read.offset + 1, end)
                            .map_err(io("scan segment"))?;
                        self.stats.corrupt_records += 1;
                        self.stats.corrupt_bytes += skipped + 1;
                        self.read.offset += skipped + 1;
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    /// Marks everything up to `seq` delivered; deletes segments that hold
    /// nothing else.
    pub fn ack(&mut self, seq: u64) -> Result<()> {
        if seq <= self.acked {
            return Ok(());
        }
        self.acked = seq;
        self.replace_file("acked", &format!("{seq}\n"))?;
        self.delete_acked()
    }

    /// After a restart: start reading at the segment holding `acked + 1`.
    fn seek_to_unacked(&mut self) {
        let want = self.acked + 1;
        if let Some(seg) = self.segments.iter().rev().find(|s| s.first_seq <= want) {
            self.read = ReadPos {
                segment: seg.first_seq,
                offset: 0,
            };
        }
    }

    /// Moves the reader to the start of the segment `first_seq`, if any.
    fn move_to(&mut self, first_seq: Option<u64>) -> bool {
        match first_seq {
            Some(segment) => {
                self.read = ReadPos { segment, offset: 0 };
                true
            }
            None => false,
        }
    }

    fn segment_index(&self, first_seq: u64) -> Option<usize> {
        self.segments.iter().position(|s| s.first_seq == first_seq)
    }

    fn start_segment(&mut self) -> Result<()> {
        if let Some(w) = self.writer.take() {
            w.sync_all().map_err(|source| Error::Io {
                dir: self.dir.clone(),
                op: "sync segment",
                source,
            })?;
        }
        let path = self
            .dir
            .join(format!("{:020}{SEGMENT_SUFFIX}", self.next_seq));
        let f = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(|source| Error::Io {
                dir: self.dir.clone(),
                op: "create segment",
                source,
            })?;
        sync_dir(&self.dir);
        self.segments.push_back(Segment {
            first_seq: self.next_seq,
            path,
            bytes: 0,
        });
        self.writer = Some(f);
        Ok(())
    }

    fn flush(&mut self, buf: &mut Vec<u8>) -> Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let io = |op| {
            let dir = self.dir.clone();
            move |source| Error::Io { dir, op, source }
        };
        let w = self.writer.as_mut().ok_or_else(|| Error::Io {
            dir: self.dir.clone(),
            op: "append",
            source: io::Error::other("no open segment"),
        })?;
        w.write_all(buf).map_err(io("append"))?;
        w.sync_data().map_err(io("sync"))?;
        if let Some(last) = self.segments.back_mut() {
            last.bytes += buf.len() as u64;
        }
        buf.clear();
        Ok(())
    }

    fn enforce_limit(&mut self) -> Result<u64> {
        let mut dropped = 0;
        while self.bytes() > self.limits.max_bytes && self.segments.len() > 1 {
            let Some(old) = self.segments.pop_front() else {
                break;
            };
            let end = self.segments.front().map_or(self.next_seq, |s| s.first_seq);
            if self.read.segment == old.first_seq {
                self.read = ReadPos {
                    segment: end,
                    offset: 0,
                };
            }
            // What the reader had not reached is lost.
            let unread_from = old.first_seq.max(self.read_seq).max(self.acked + 1);
            dropped += end.saturating_sub(unread_from);
            self.read_seq = self.read_seq.max(end);
            fs::remove_file(&old.path).map_err(|source| Error::Io {
                dir: self.dir.clone(),
                op: "delete segment",
                source,
            })?;
        }
        self.stats.dropped_full += dropped;
        if dropped > 0 {
            self.drops.total += dropped;
            self.drops.last_ns = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            self.write_drops()?;
        }
        Ok(dropped)
    }

    fn delete_acked(&mut self) -> Result<()> {
        while self.segments.len() > 1 {
            let next_first = self.segments[1].first_seq;
            if next_first > self.acked + 1 || self.read.segment == self.segments[0].first_seq {
                break;
            }
            if let Some(old) = self.segments.pop_front() {
                fs::remove_file(&old.path).map_err(|source| Error::Io {
                    dir: self.dir.clone(),
                    op: "delete segment",
                    source,
                })?;
            }
        }
        Ok(())
    }
}

fn read_acked(dir: &Path) -> io::Result<u64> {
    match fs::read_to_string(dir.join("acked")) {
        Ok(s) => Ok(s.trim().parse().unwrap_or(0)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

/// `total reported last_ns`; a missing or unreadable file is no drops.
fn read_drops(dir: &Path) -> io::Result<Drops> {
    let text = match fs::read_to_string(dir.join("drops")) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Drops::default()),
        Err(e) => return Err(e),
    };
    let mut n = text.split_whitespace().map(|w| w.parse().unwrap_or(0));
    let mut next = || n.next().unwrap_or(0);
    Ok(Drops {
        total: next(),
        reported: next(),
        last_ns: next(),
    })
}

fn list_segments(dir: &Path) -> io::Result<VecDeque<Segment>> {
    let mut segs = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(first) = name
            .to_str()
            .and_then(|n| n.strip_suffix(SEGMENT_SUFFIX))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        segs.push(Segment {
            first_seq: first,
            path: entry.path(),
            bytes: entry.metadata()?.len(),
        });
    }
    segs.sort_by_key(|s| s.first_seq);
    Ok(segs.into())
}

/// Makes a new file's directory entry durable.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[path = "spool_record.rs"]
mod record;

#[cfg(test)]
#[path = "spool_tests.rs"]
mod tests;
