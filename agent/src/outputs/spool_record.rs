//! The spool's record format: `magic, length, seq, crc32(seq, payload),
//! payload`, and finding the valid records in a segment file.

use std::{
    fs::{self, File},
    io::{self, Read, Seek, SeekFrom},
    path::Path,
};

use super::{MAX_RECORD, Record};

const MAGIC: u32 = 0x4c50_534d; // "MSPL" little-endian
/// Bytes before the payload.
pub(super) const HEADER: usize = 4 + 4 + 8 + 4;

pub(super) fn encode(buf: &mut Vec<u8>, seq: u64, payload: &[u8]) {
    buf.extend_from_slice(&MAGIC.to_le_bytes());
    buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.extend_from_slice(&checksum(seq, payload).to_le_bytes());
    buf.extend_from_slice(payload);
}

pub(super) fn checksum(seq: u64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&seq.to_le_bytes());
    h.update(payload);
    h.finalize()
}

pub(super) enum Decoded {
    /// A record and its size on disk.
    Record(Record, u64),
    /// Not a valid record here (bad magic, length, checksum, or cut short).
    Bad,
}

pub(super) fn decode(r: &mut impl Read) -> io::Result<Decoded> {
    let mut h = [0u8; HEADER];
    if let Err(e) = r.read_exact(&mut h) {
        return match e.kind() {
            io::ErrorKind::UnexpectedEof => Ok(Decoded::Bad),
            _ => Err(e),
        };
    }
    let word = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    let len = word(4) as usize;
    if word(0) != MAGIC || len > MAX_RECORD {
        return Ok(Decoded::Bad);
    }
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&h[8..16]);
    let seq = u64::from_le_bytes(seq);
    let crc = word(16);
    let mut payload = vec![0u8; len];
    if let Err(e) = r.read_exact(&mut payload) {
        return match e.kind() {
            io::ErrorKind::UnexpectedEof => Ok(Decoded::Bad),
            _ => Err(e),
        };
    }
    if checksum(seq, &payload) != crc {
        return Ok(Decoded::Bad);
    }
    Ok(Decoded::Record(
        Record { seq, payload },
        (HEADER + len) as u64,
    ))
}

/// How many bytes from `from` to the next offset where a valid record
/// starts (or to `end`).
pub(super) fn skip_to_valid(path: &Path, from: u64, end: u64) -> io::Result<u64> {
    let mut data = Vec::new();
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(from))?;
    f.take(end.saturating_sub(from)).read_to_end(&mut data)?;
    let magic = MAGIC.to_le_bytes();
    let mut i = 0;
    while i + HEADER <= data.len() {
        if data[i..i + 4] == magic
            && let Decoded::Record(..) = decode(&mut &data[i..])?
        {
            return Ok(i as u64);
        }
        i += 1;
    }
    Ok(data.len() as u64)
}

/// Scans a segment from the start: the end of its valid records, the last
/// valid seq, and how many bad stretches were met. Records after a bad
/// stretch still count when valid (corruption, not a torn tail).
pub(super) fn scan_valid(path: &Path, first_seq: u64) -> io::Result<(u64, Option<u64>, u32)> {
    let data = fs::read(path)?;
    let mut offset = 0usize;
    let mut valid_end = 0u64;
    let mut last = None;
    let mut bad = 0;
    let mut in_bad = false;
    while offset < data.len() {
        match decode(&mut &data[offset..])? {
            Decoded::Record(rec, size) if rec.seq >= first_seq => {
                offset += size as usize;
                valid_end = offset as u64;
                last = Some(rec.seq);
                in_bad = false;
            }
            _ => {
                if !in_bad {
                    bad += 1;
                    in_bad = true;
                }
                offset += 1;
            }
        }
    }
    Ok((valid_end, last, bad))
}
