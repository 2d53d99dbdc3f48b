//! Identifiers: alert ids that make Elasticsearch writes idempotent, and
//! random per-start ids.

use sha2::{Digest, Sha256};

use crate::alert::Alert;

/// The first `bytes` bytes of SHA-256 over `parts` (each length-prefixed,
/// so part boundaries cannot shift), as lower-case hex.
pub fn hex_digest(parts: &[&[u8]], bytes: usize) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize()
        .iter()
        .take(bytes)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `bytes` random bytes from the kernel as hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    let mut filled = 0;
    while filled < buf.len() {
        // SAFETY: the pointer and length describe the unfilled tail of `buf`.
        let n =
            unsafe { libc::getrandom(buf[filled..].as_mut_ptr().cast(), buf.len() - filled, 0) };
        if n <= 0 {
            // getrandom cannot fail on a 5.15+ kernel except for EINTR.
            continue;
        }
        filled += n as usize;
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// The alert's id (`event.id` and the Elasticsearch `_id`): the same alert
/// always gets the same id, so a retried or replayed write is recognised
/// as a duplicate. An alert is one rule on one event of one thread at one
/// kernel timestamp on one booted host.
pub fn alert_id(alert: &Alert, host_id: &str, boot_id: &str) -> String {
    let tid = alert.event.as_ref().map_or(0, |e| e.task.tid).to_le_bytes();
    hex_digest(
        &[
            host_id.as_bytes(),
            boot_id.as_bytes(),
            &alert.time_ns.to_le_bytes(),
            &tid,
            alert.rule.as_bytes(),
        ],
        16,
    )
}

/// A stable id for a rule (`rule.id`): rules in Falco's language have
/// names, not ids.
pub fn rule_id(name: &str) -> String {
    hex_digest(&[b"mamori-rule", name.as_bytes()], 8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_stable_and_boundary_safe() {
        assert_eq!(hex_digest(&[b"ab", b"c"], 8), hex_digest(&[b"ab", b"c"], 8));
        assert_ne!(hex_digest(&[b"ab", b"c"], 8), hex_digest(&[b"a", b"bc"], 8));
        assert_eq!(hex_digest(&[b"x"], 16).len(), 32);
        assert_eq!(
            rule_id("Read sensitive file"),
            rule_id("Read sensitive file")
        );
    }

    #[test]
    fn random_ids_differ() {
        assert_ne!(random_hex(16), random_hex(16));
        assert_eq!(random_hex(8).len(), 16);
    }
}
