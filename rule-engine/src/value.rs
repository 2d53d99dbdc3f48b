//! Values extracted from events, and the matching primitives the compiled
//! tests use (glob, path prefix, CIDR). The glob is kept here: it matches
//! raw bytes (paths and arguments are not always UTF-8) with exactly
//! Falco's semantics (fnmatch without flags: `*` crosses `/`, no `**`),
//! without compiling a pattern per literal; its tests pin that meaning.

use std::{borrow::Cow, net::IpAddr};

/// A field's value for one event. Strings are bytes: file names and
/// arguments need not be UTF-8.
#[derive(Clone, Debug, PartialEq)]
pub enum Value<'a> {
    Str(Cow<'a, [u8]>),
    Int(i64),
    Bool(bool),
    Ip(IpAddr),
    /// Several values (an ancestor list): a test holds if any value passes.
    Many(Vec<Value<'a>>),
}

impl<'a> Value<'a> {
    pub fn str(s: &'a [u8]) -> Self {
        Value::Str(Cow::Borrowed(s))
    }

    pub fn owned(s: impl Into<Vec<u8>>) -> Self {
        Value::Str(Cow::Owned(s.into()))
    }

    /// Text for outputs: as [`Value::render`], with strings through
    /// [`escape_bytes`], so two different values never print the same.
    pub fn display(&self) -> String {
        match self {
            Value::Str(s) => escape_bytes(s).into_owned(),
            Value::Many(v) => v.iter().map(Value::display).collect::<Vec<_>>().join(","),
            other => other.render(),
        }
    }

    /// Text rendering for matching (`true`, `42`, `10.0.0.1`, `a,b`);
    /// invalid UTF-8 becomes U+FFFD. Outputs use [`Value::display`].
    pub fn render(&self) -> String {
        match self {
            Value::Str(s) => String::from_utf8_lossy(s).into_owned(),
            Value::Int(i) => i.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Ip(ip) => ip.to_string(),
            Value::Many(v) => v.iter().map(Value::render).collect::<Vec<_>>().join(","),
        }
    }
}

/// Bytes as printable text that keeps every byte distinguishable: valid
/// UTF-8 passes unchanged, except `\` (printed `\\`) and control
/// characters (`\n`, `\r`, `\t`, `\xNN` below 0x80 and for DEL,
/// `\u{NN}` for C1); each byte that is not valid UTF-8 is `\xNN`
/// (always 0x80 or above). Every escape starts with a backslash and a
/// backslash always starts one, so the mapping is one-to-one: a name with
/// a stray byte never prints as another name, nor as one with U+FFFD.
pub fn escape_bytes(bytes: &[u8]) -> Cow<'_, str> {
    let plain = |c: char| c != '\\' && !c.is_control();
    if let Ok(s) = std::str::from_utf8(bytes)
        && s.chars().all(plain)
    {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() && (c as u32) < 0x80 => {
                    out.push_str(&format!("\\x{:02x}", c as u32));
                }
                c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    Cow::Owned(out)
}

/// An IP network, `addr/prefix`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Net {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Net {
    /// Parses `10.0.0.0/8`, `::1/128`, or a plain address (a host network).
    pub fn parse(s: &str) -> Option<Self> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.trim().parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= max)?,
            None => max,
        };
        Some(Self { addr, prefix })
    }

    pub fn contains(&self, ip: &IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(*a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(*a) & mask
            }
            // An IPv4-mapped IPv6 address is matched against IPv4 networks.
            (IpAddr::V4(_), IpAddr::V6(a)) => a
                .to_ipv4_mapped()
                .is_some_and(|v4| self.contains(&IpAddr::V4(v4))),
            _ => false,
        }
    }
}

/// Shell-style wildcard match (`*`, `?`, `[abc]`, `[!a-z]`), like fnmatch
/// without flags: `*` also matches `/`.
pub fn glob(pattern: &[u8], text: &[u8], ignore_case: bool) -> bool {
    let eq = |a: u8, b: u8| {
        if ignore_case {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (mut p, mut t) = (0usize, 0usize);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    backtrack = Some((p, t));
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    t += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = class(&pattern[p..], text[t], ignore_case) {
                        if matched {
                            p += next;
                            t += 1;
                            continue;
                        }
                    } else if eq(b'[', text[t]) {
                        p += 1;
                        t += 1;
                        continue;
                    }
                }
                b'\\' if p + 1 < pattern.len() => {
                    if eq(pattern[p + 1], text[t]) {
                        p += 2;
                        t += 1;
                        continue;
                    }
                }
                c if eq(c, text[t]) => {
                    p += 1;
                    t += 1;
                    continue;
                }
                _ => {}
            }
        }
        match backtrack {
            Some((bp, bt)) => {
                p = bp + 1;
                t = bt + 1;
                backtrack = Some((bp, bt + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Matches one character against a `[...]` class at the start of `pat`.
/// Returns (matched, length of the class), or `None` if unterminated.
fn class(pat: &[u8], c: u8, ignore_case: bool) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(pat.get(i), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let c = if ignore_case {
        c.to_ascii_lowercase()
    } else {
        c
    };
    let mut matched = false;
    let mut first = true;
    while i < pat.len() {
        if pat[i] == b']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        let lo = if ignore_case {
            pat[i].to_ascii_lowercase()
        } else {
            pat[i]
        };
        if pat.get(i + 1) == Some(&b'-') && pat.get(i + 2).is_some_and(|&h| h != b']') {
            let hi = if ignore_case {
                pat[i + 2].to_ascii_lowercase()
            } else {
                pat[i + 2]
            };
            matched |= lo <= c && c <= hi;
            i += 3;
        } else {
            matched |= lo == c;
            i += 1;
        }
    }
    None
}

/// Falco's `pmatch`: `path` equals a prefix or lies below it.
pub fn path_under(prefix: &[u8], path: &[u8]) -> bool {
    let prefix = if prefix.len() > 1 {
        prefix.strip_suffix(b"/").unwrap_or(prefix)
    } else {
        prefix
    };
    path.starts_with(prefix)
        && (path.len() == prefix.len() || prefix == b"/" || path[prefix.len()] == b'/')
}

/// Decodes a hex literal (`bcontains cafebabe`).
pub fn hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if s.is_empty() || !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_bytes_stay_distinguishable() {
        // Pairs that a lossy or naive rendering prints the same.
        let names: &[&[u8]] = &[
            b"evil\xff",
            b"evil\\xff",
            b"evil\xef\xbf\xbd", // U+FFFD itself
            b"evil\xc2\x85",     // U+0085 (C1 control), valid UTF-8
            b"evil\x85",         // the lone byte
            b"evil\n",
            b"evil\\n",
            b"evil",
            b"ev\x00il",
        ];
        let shown: Vec<String> = names.iter().map(|n| escape_bytes(n).into_owned()).collect();
        for (i, a) in shown.iter().enumerate() {
            assert!(!a.chars().any(char::is_control), "{a:?}");
            for b in &shown[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(shown[0], "evil\\xff");
        assert_eq!(shown[1], "evil\\\\xff");
        assert_eq!(shown[2], "evil\u{fffd}");
        assert_eq!(escape_bytes(b"/usr/bin/caf\xc3\xa9"), "/usr/bin/caf\u{e9}");
        assert!(matches!(escape_bytes(b"/etc/shadow"), Cow::Borrowed(_)));
    }

    #[test]
    fn escaping_is_one_to_one_over_random_bytes() {
        // Decode and compare: the escape must be invertible.
        fn unescape(s: &str) -> Vec<u8> {
            let mut out = Vec::new();
            let mut it = s.chars().peekable();
            while let Some(c) = it.next() {
                if c != '\\' {
                    let mut buf = [0; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    continue;
                }
                match it.next().unwrap() {
                    '\\' => out.push(b'\\'),
                    'n' => out.push(b'\n'),
                    'r' => out.push(b'\r'),
                    't' => out.push(b'\t'),
                    'x' => {
                        let h: String = [it.next().unwrap(), it.next().unwrap()].iter().collect();
                        out.push(u8::from_str_radix(&h, 16).unwrap());
                    }
                    'u' => {
                        assert_eq!(it.next(), Some('{'));
                        let h: String = it.by_ref().take_while(|&c| c != '}').collect();
                        let c = char::from_u32(u32::from_str_radix(&h, 16).unwrap()).unwrap();
                        let mut buf = [0; 4];
                        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    }
                    other => panic!("unknown escape {other}"),
                }
            }
            out
        }
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..20_000 {
            let len = (seed % 12) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    // Bias towards the interesting bytes.
                    [b'\\', b'x', b'f', 0xff, 0xc2, 0x85, b'\n', b'a'][(seed % 8) as usize]
                })
                .collect();
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            assert_eq!(unescape(&escape_bytes(&bytes)), bytes, "{bytes:?}");
        }
    }

    #[test]
    fn globs() {
        assert!(glob(b"/proc*", b"/proc/self", false));
        assert!(glob(b"*.sh", b"/tmp/a.sh", false));
        assert!(!glob(b"*.sh", b"/tmp/a.shx", false));
        assert!(glob(b"a?c", b"abc", false));
        assert!(glob(b"[a-c]x", b"bx", false));
        assert!(!glob(b"[!a-c]x", b"bx", false));
        assert!(glob(b"*AB*", b"xaby", true));
        assert!(!glob(b"*AB*", b"xaby", false));
        assert!(glob(b"", b"", false));
        assert!(glob(b"**", b"anything", false));
        assert!(!glob(b"a", b"", false));
    }

    #[test]
    fn pmatch_is_a_path_prefix_match() {
        assert!(path_under(b"/etc", b"/etc"));
        assert!(path_under(b"/etc", b"/etc/passwd"));
        assert!(path_under(b"/etc/", b"/etc/passwd"));
        assert!(!path_under(b"/etc", b"/etcfoo"));
        assert!(path_under(b"/", b"/x"));
    }

    #[test]
    fn networks() {
        let n = Net::parse("10.0.0.0/8").unwrap();
        assert!(n.contains(&"10.1.2.3".parse().unwrap()));
        assert!(!n.contains(&"11.0.0.1".parse().unwrap()));
        assert!(n.contains(&"::ffff:10.0.0.1".parse().unwrap()));
        let h = Net::parse("127.0.0.1").unwrap();
        assert_eq!(h.prefix, 32);
        assert!(
            Net::parse("0.0.0.0/0")
                .unwrap()
                .contains(&"8.8.8.8".parse().unwrap())
        );
        assert!(
            Net::parse("fd00::/8")
                .unwrap()
                .contains(&"fd12::1".parse().unwrap())
        );
        assert!(Net::parse("10.0.0.0/33").is_none());
        assert!(Net::parse("nope").is_none());
    }

    #[test]
    fn hex_literals() {
        assert_eq!(hex("cafebabe"), Some(vec![0xca, 0xfe, 0xba, 0xbe]));
        assert_eq!(hex("abc"), None);
        assert_eq!(hex("zz"), None);
    }
}
