//! Time: the wall clock in nanoseconds, and RFC 3339 timestamps with
//! nanoseconds, UTC, as Falco writes them and container runtimes record
//! them (jiff does the calendar).

/// Nanoseconds since the Unix epoch, now (0 if the clock is before it).
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// `2026-11-25T11:41:13.623429000Z` for nanoseconds since the epoch:
/// always nine fractional digits, as Falco writes them.
pub fn rfc3339_nanos(ns: u64) -> String {
    match jiff::Timestamp::from_nanosecond(i128::from(ns)) {
        Ok(t) => format!("{t:.9}"),
        // Not reached: u64 nanoseconds end in 2554, inside jiff's range.
        Err(_) => format!("{:.9}", jiff::Timestamp::MAX),
    }
}

/// Nanoseconds since the epoch of an RFC 3339 timestamp such as
/// `2026-11-25T15:05:37.256722412Z` (fraction optional, up to 9 digits;
/// any offset), as container runtimes record them.
pub fn parse_rfc3339(t: &str) -> Option<u64> {
    let t: jiff::Timestamp = t.parse().ok()?;
    u64::try_from(t.as_nanosecond()).ok()
}

#[cfg(test)]
mod tests {
    use super::{parse_rfc3339, rfc3339_nanos};

    #[test]
    fn parses_what_it_formats() {
        for ns in [0, 1_795_619_137_256_722_412, 951_782_400_000_000_001] {
            assert_eq!(parse_rfc3339(&rfc3339_nanos(ns)), Some(ns));
        }
        assert_eq!(
            parse_rfc3339("2026-11-25T15:05:37Z"),
            Some(1_795_619_137_000_000_000)
        );
        assert_eq!(
            parse_rfc3339("2026-11-25T15:05:37.5Z"),
            Some(1_795_619_137_500_000_000)
        );
        assert_eq!(
            parse_rfc3339("2026-11-25T16:05:37+01:00"),
            Some(1_795_619_137_000_000_000)
        );
        assert_eq!(parse_rfc3339("2026-11-25T15:05:37.1234567890Z"), None);
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339_nanos(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339_nanos(951_782_400_000_000_001),
            "2000-02-29T00:00:00.000000001Z"
        );
        assert_eq!(
            rfc3339_nanos(1_795_606_870_371_008_876),
            "2026-11-25T11:41:10.371008876Z"
        );
        assert_eq!(
            rfc3339_nanos(4_102_444_799_999_999_999),
            "2099-12-31T23:59:59.999999999Z"
        );
    }
}
