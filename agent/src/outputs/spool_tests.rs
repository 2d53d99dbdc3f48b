use super::*;

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "mamori-spool-{name}-{}-{}",
            std::process::id(),
            crate::outputs::ids::random_hex(4)
        ));
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn small() -> Limits {
    Limits {
        max_bytes: 1 << 20,
        segment_bytes: 1024,
    }
}

fn docs(range: std::ops::Range<u32>) -> Vec<Vec<u8>> {
    range
        .map(|i| format!("{{\"doc\":{i}}}").into_bytes())
        .collect()
}

fn payloads(recs: &[Record]) -> Vec<String> {
    recs.iter()
        .map(|r| String::from_utf8(r.payload.clone()).unwrap())
        .collect()
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

#[test]
fn appends_read_back_in_order_across_segments() {
    let d = TempDir::new("order");
    let mut s = Spool::open(&d.0, small()).unwrap();
    s.append(&docs(0..100)).unwrap();
    assert!(segment_files(&d.0).len() > 2, "small segments rotate");
    let mut seen = Vec::new();
    loop {
        let batch = s.read(7, usize::MAX).unwrap();
        if batch.is_empty() {
            break;
        }
        seen.extend(batch);
    }
    assert_eq!(seen.len(), 100);
    assert!(seen.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    assert_eq!(seen[0].seq, 1);
    assert_eq!(payloads(&seen[..2]), ["{\"doc\":0}", "{\"doc\":1}"]);
    assert_eq!(s.pending(), 100);
}

#[test]
fn unacked_records_come_back_after_a_restart() {
    let d = TempDir::new("restart");
    {
        let mut s = Spool::open(&d.0, small()).unwrap();
        s.append(&docs(0..50)).unwrap();
        let first = s.read(20, usize::MAX).unwrap();
        s.ack(first.last().unwrap().seq).unwrap();
        // 20..50 read or not, never acked: the process dies here.
        let _ = s.read(10, usize::MAX).unwrap();
    }
    let mut s = Spool::open(&d.0, small()).unwrap();
    assert_eq!(s.pending(), 30);
    let rest = s.read(1000, usize::MAX).unwrap();
    assert_eq!(rest.len(), 30);
    assert_eq!(rest[0].seq, 21);
    assert_eq!(payloads(&rest[..1]), ["{\"doc\":20}"]);
    // New records continue the sequence.
    s.append(&docs(50..51)).unwrap();
    assert_eq!(s.read(10, usize::MAX).unwrap()[0].seq, 51);
}

#[test]
fn acked_segments_are_deleted() {
    let d = TempDir::new("ack");
    let mut s = Spool::open(&d.0, small()).unwrap();
    s.append(&docs(0..200)).unwrap();
    let before = segment_files(&d.0).len();
    let all = s.read(1000, usize::MAX).unwrap();
    s.ack(all.last().unwrap().seq).unwrap();
    assert_eq!(s.pending(), 0);
    assert!(segment_files(&d.0).len() < before);
    assert_eq!(
        segment_files(&d.0).len(),
        1,
        "only the segment being written stays"
    );
}

#[test]
fn a_torn_tail_is_cut_off_and_counted() {
    let d = TempDir::new("torn");
    {
        let mut s = Spool::open(&d.0, small()).unwrap();
        s.append(&docs(0..3)).unwrap();
    }
    // A crash in the middle of writing the third record.
    let seg = segment_files(&d.0).pop().unwrap();
    let len = fs::metadata(&seg).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let mut s = Spool::open(&d.0, small()).unwrap();
    assert_eq!(s.stats().corrupt_records, 1);
    let got = s.read(10, usize::MAX).unwrap();
    assert_eq!(payloads(&got), ["{\"doc\":0}", "{\"doc\":1}"]);
    // The sequence goes on from the last valid record, and appends after
    // the cut read back.
    s.append(&docs(7..8)).unwrap();
    let got = s.read(10, usize::MAX).unwrap();
    assert_eq!(got[0].seq, 3);
    assert_eq!(payloads(&got), ["{\"doc\":7}"]);
}

#[test]
fn corrupt_records_are_skipped_and_counted() {
    let d = TempDir::new("corrupt");
    {
        let mut s = Spool::open(&d.0, small()).unwrap();
        s.append(&docs(0..3)).unwrap();
    }
    let seg = segment_files(&d.0).pop().unwrap();
    let mut bytes = fs::read(&seg).unwrap();
    // Flip a payload byte of the second record.
    let second = bytes.len() / 3 + HEADER + 2;
    bytes[second] ^= 0xff;
    fs::write(&seg, &bytes).unwrap();
    let mut s = Spool::open(&d.0, small()).unwrap();
    let got = s.read(10, usize::MAX).unwrap();
    assert_eq!(payloads(&got), ["{\"doc\":0}", "{\"doc\":2}"]);
    assert_eq!(s.stats().corrupt_records, 1);
    assert!(s.stats().corrupt_bytes > 0);
}

#[test]
fn a_full_spool_drops_the_oldest_and_counts_them() {
    let d = TempDir::new("full");
    let limits = Limits {
        max_bytes: 8 * 1024,
        segment_bytes: 1024,
    };
    let mut s = Spool::open(&d.0, limits.clone()).unwrap();
    let mut dropped = 0;
    for chunk in 0..100 {
        dropped += s.append(&docs(chunk * 10..chunk * 10 + 10)).unwrap();
    }
    assert!(s.bytes() <= limits.max_bytes, "{} bytes", s.bytes());
    assert!(dropped > 0);
    assert_eq!(s.stats().dropped_full, dropped);
    let left = s.read(10_000, usize::MAX).unwrap();
    assert_eq!(
        left.len() as u64 + dropped,
        1000,
        "every record is read or counted"
    );
    assert_eq!(left.last().unwrap().payload, b"{\"doc\":999}");
    assert!(left.windows(2).all(|w| w[1].seq == w[0].seq + 1));
}

#[test]
fn drops_stay_on_record_until_reported_across_restarts() {
    let d = TempDir::new("drops");
    let limits = Limits {
        max_bytes: 8 * 1024,
        segment_bytes: 1024,
    };
    let mut s = Spool::open(&d.0, limits.clone()).unwrap();
    let mut dropped = 0;
    for chunk in 0..50 {
        dropped += s.append(&docs(chunk * 10..chunk * 10 + 10)).unwrap();
    }
    assert!(dropped > 0);
    assert_eq!(s.drops().unreported(), dropped);
    assert!(s.drops().last_ns > 0);
    drop(s);

    let mut s = Spool::open(&d.0, limits.clone()).unwrap();
    assert_eq!(s.drops().total, dropped);
    assert_eq!(s.drops().unreported(), dropped);
    s.drops_reported(dropped).unwrap();
    drop(s);

    let s = Spool::open(&d.0, limits).unwrap();
    assert_eq!(s.drops().total, dropped);
    assert_eq!(s.drops().unreported(), 0);
}

#[test]
fn dropping_under_a_reader_in_flight_counts_only_unread() {
    let d = TempDir::new("inflight");
    let limits = Limits {
        max_bytes: 4 * 1024,
        segment_bytes: 1024,
    };
    let mut s = Spool::open(&d.0, limits).unwrap();
    s.append(&docs(0..40)).unwrap();
    let read = s.read(20, usize::MAX).unwrap().len() as u64;
    let mut dropped = 0;
    for i in 0..20 {
        dropped += s.append(&docs(100 + i * 10..110 + i * 10)).unwrap();
    }
    let rest = s.read(10_000, usize::MAX).unwrap().len() as u64;
    assert_eq!(read + dropped + rest, 240);
}

#[test]
fn one_process_per_directory() {
    let d = TempDir::new("lock");
    let _s = Spool::open(&d.0, small()).unwrap();
    let e = Spool::open(&d.0, small()).unwrap_err();
    assert!(matches!(e, Error::Locked(_)), "{e}");
    assert!(e.to_string().contains("in use"), "{e}");
}

#[test]
fn oversized_documents_are_refused_whole() {
    let d = TempDir::new("big");
    let mut s = Spool::open(&d.0, small()).unwrap();
    let big = vec![b'x'; MAX_RECORD + 1];
    assert!(matches!(
        s.append(&[b"ok".to_vec(), big]),
        Err(Error::TooLarge(_))
    ));
    assert_eq!(s.pending(), 0, "nothing of a refused batch is written");
}

#[test]
fn byte_budget_bounds_a_read() {
    let d = TempDir::new("bytes");
    let mut s = Spool::open(&d.0, small()).unwrap();
    s.append(&docs(0..10)).unwrap();
    let got = s.read(100, 18).unwrap();
    assert_eq!(got.len(), 2, "reading stops once the budget is reached");
}
