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

/// `bytes` random bytes from the kernel as hex. Should the kernel refuse
/// (it cannot on a supported kernel), the id is derived from the time and
/// the pid instead: unique enough for a per-start id, and never a hang.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if getrandom::fill(&mut buf).is_ok() {
        return buf.iter().map(|b| format!("{b:02x}")).collect();
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hex_digest(
        &[&now.to_le_bytes(), &std::process::id().to_le_bytes()],
        bytes,
    )
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

    /// Elasticsearch de-duplication and `rule.id` depend on these values
    /// never changing across versions. Expected values computed outside
    /// this code (Python's hashlib, the same length-prefixed framing).
    #[test]
    fn digests_are_pinned_and_boundary_safe() {
        assert_eq!(hex_digest(&[b"ab", b"c"], 8), "43ee655579de01ca");
        assert_ne!(hex_digest(&[b"ab", b"c"], 8), hex_digest(&[b"a", b"bc"], 8));
        assert_eq!(hex_digest(&[b"x"], 16).len(), 32);
        assert_eq!(rule_id("Read sensitive file"), "f5fdc7de50abf712");
        assert_eq!(
            hex_digest(&[b"mamori-agent", b"host-1"], 16),
            "20bcfebd7ab57077401b637bf33c7e89"
        );
    }

    #[test]
    fn alert_ids_are_pinned() {
        let alert = Alert {
            time_ns: 1_795_606_870_371_008_876,
            rule: "Read sensitive file".into(),
            description: String::new(),
            ruleset: String::new(),
            priority: crate::alert::Priority::Warning,
            source: crate::alert::Source::Syscall,
            tags: Vec::new(),
            message: String::new(),
            output_fields: Vec::new(),
            hostname: String::new(),
            event: None,
            context: Vec::new(),
        };
        assert_eq!(
            alert_id(&alert, "host-1", "boot-1"),
            "b25d7c121b7ccf8362357305a1858dba"
        );
        assert_ne!(
            alert_id(&alert, "host-1", "boot-2"),
            alert_id(&alert, "host-1", "boot-1")
        );
    }

    #[test]
    fn random_ids_differ() {
        assert_ne!(random_hex(16), random_hex(16));
        assert_eq!(random_hex(8).len(), 16);
    }
}
