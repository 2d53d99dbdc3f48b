//! Pure helpers on what events carry: paths made absolute the way the
//! kernel would read them, socket addresses as IPs, argument lists joined
//! as Falco prints them. State and detection both use them.

use std::{borrow::Cow, net::IpAddr};

use super::Text;

/// Arguments joined by single spaces (`proc.args`).
pub fn join(items: &[Text]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, a) in items.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(&a.bytes);
    }
    out
}

/// An IP from a socket tuple address.
pub fn ip(family: u16, a: &[u8; 16]) -> Option<IpAddr> {
    match family {
        2 => Some(IpAddr::from([a[0], a[1], a[2], a[3]])),
        10 => Some(IpAddr::from(*a)),
        _ => None,
    }
}

/// Lexically resolves `raw` against `base` (`.` and `..` removed).
pub fn resolve<'a>(base: &[u8], raw: &'a [u8]) -> Cow<'a, [u8]> {
    let joined: Vec<u8>;
    let path: &[u8] = if raw.starts_with(b"/") {
        raw
    } else if base.is_empty() {
        return Cow::Borrowed(raw);
    } else {
        joined = [base, b"/", raw].concat();
        &joined
    };
    let mut parts: Vec<&[u8]> = Vec::new();
    for p in path.split(|&c| c == b'/') {
        match p {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    let mut out = Vec::with_capacity(path.len());
    for p in parts {
        out.push(b'/');
        out.extend_from_slice(p);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    if out == raw {
        Cow::Borrowed(raw)
    } else {
        Cow::Owned(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_resolution() {
        assert_eq!(
            &*resolve(b"/home/u", b"../etc/./passwd"),
            b"/home/etc/passwd"
        );
        assert_eq!(&*resolve(b"/x", b"/a/../b"), b"/b");
        assert_eq!(&*resolve(b"/", b".."), b"/");
        assert_eq!(&*resolve(b"", b"rel"), b"rel");
    }
}
