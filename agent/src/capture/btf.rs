//! The BTF queries mamori needs (btf-rs reads the format): a struct
//! member's byte offset by name, a struct's size, an enum's value.
//!
//! Used on `/sys/kernel/btf/vmlinux` to resolve the offsets the kernel
//! programs need, and on the eBPF object's own `.BTF` to check that Rust's
//! wire layouts match what the kernel side was compiled with.

use btf_rs::{Type, Union};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not readable BTF: {0}")]
    Parse(String),
    #[error("no struct or union named `{0}`")]
    NoSuchType(String),
    #[error("`{ty}` has no member `{member}`")]
    NoSuchMember { ty: String, member: String },
    #[error("`{ty}.{member}` is a bitfield")]
    Bitfield { ty: String, member: String },
    #[error("no value `{name}` in enum `{ty}`")]
    NoSuchEnumValue { ty: String, name: String },
}

/// Parsed BTF.
pub struct Btf(btf_rs::Btf);

/// How many qualifiers and typedefs a member's type may wrap.
const MAX_CHAIN: usize = 32;

impl Btf {
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        btf_rs::Btf::from_bytes(data)
            .map(Self)
            .map_err(|e| Error::Parse(format!("{e:#}")))
    }

    /// The struct or union named `name`.
    fn record(&self, name: &str) -> Result<Union, Error> {
        self.0
            .resolve_types_by_name(name)
            .unwrap_or_default()
            .into_iter()
            .find_map(|t| match t {
                Type::Struct(s) | Type::Union(s) => Some(s),
                _ => None,
            })
            .ok_or_else(|| Error::NoSuchType(name.to_owned()))
    }

    /// Size in bytes of the named struct or union.
    pub fn struct_size(&self, name: &str) -> Result<u32, Error> {
        Ok(self.record(name)?.size() as u32)
    }

    /// Byte offset of `path` (`member` or `member.inner...`) in struct `ty`.
    /// Members of anonymous structs and unions are found as if direct.
    pub fn member_offset(&self, ty: &str, path: &str) -> Result<u32, Error> {
        let mut record = self.record(ty)?;
        let mut total = 0u32;
        let missing = || Error::NoSuchMember {
            ty: ty.to_owned(),
            member: path.to_owned(),
        };
        let mut parts = path.split('.').peekable();
        while let Some(member) = parts.next() {
            let (off, inner) = self.find_member(&record, member, ty)?.ok_or_else(missing)?;
            total += off;
            if parts.peek().is_some() {
                record = inner.ok_or_else(missing)?;
            }
        }
        Ok(total)
    }

    /// `(byte offset, the member's record type if it is one)` of `name`
    /// inside `record`, searching anonymous members depth-first.
    fn find_member(
        &self,
        record: &Union,
        name: &str,
        ty: &str,
    ) -> Result<Option<(u32, Option<Union>)>, Error> {
        for m in &record.members {
            let m_name = self.0.resolve_name(m).unwrap_or_default();
            if m_name == name {
                if m.bitfield_size().unwrap_or(0) != 0 || m.bit_offset() % 8 != 0 {
                    return Err(Error::Bitfield {
                        ty: ty.to_owned(),
                        member: name.to_owned(),
                    });
                }
                return Ok(Some((m.bit_offset() / 8, self.member_record(m))));
            }
            if m_name.is_empty()
                && let Some(inner) = self.member_record(m)
                && let Some((off, t)) = self.find_member(&inner, name, ty)?
            {
                return Ok(Some((m.bit_offset() / 8 + off, t)));
            }
        }
        Ok(None)
    }

    /// The struct or union a member is, through typedefs and qualifiers.
    fn member_record(&self, m: &btf_rs::Member) -> Option<Union> {
        let mut t = self.0.resolve_chained_type(m).ok()?;
        for _ in 0..MAX_CHAIN {
            t = match t {
                Type::Struct(s) | Type::Union(s) => return Some(s),
                Type::Typedef(x) => self.0.resolve_chained_type(&x).ok()?,
                Type::Const(x) => self.0.resolve_chained_type(&x).ok()?,
                Type::Volatile(x) => self.0.resolve_chained_type(&x).ok()?,
                Type::Restrict(x) => self.0.resolve_chained_type(&x).ok()?,
                Type::TypeTag(x) => self.0.resolve_chained_type(&x).ok()?,
                _ => return None,
            };
        }
        None
    }

    /// Value of the enumerator `name` of enum `ty`.
    pub fn enum_value(&self, ty: &str, name: &str) -> Result<i64, Error> {
        let missing = || Error::NoSuchEnumValue {
            ty: ty.to_owned(),
            name: name.to_owned(),
        };
        for t in self.0.resolve_types_by_name(ty).map_err(|_| missing())? {
            match t {
                Type::Enum(e) => {
                    for m in &e.members {
                        if self.0.resolve_name(m).is_ok_and(|n| n == name) {
                            return Ok(if e.is_signed() {
                                i64::from(m.val() as i32)
                            } else {
                                i64::from(m.val())
                            });
                        }
                    }
                }
                Type::Enum64(e) => {
                    for m in &e.members {
                        if self.0.resolve_name(m).is_ok_and(|n| n == name) {
                            return Ok(m.val() as i64);
                        }
                    }
                }
                _ => {}
            }
        }
        Err(missing())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIND_INT: u32 = 1;
    const KIND_STRUCT: u32 = 4;
    const KIND_UNION: u32 = 5;
    const KIND_TYPEDEF: u32 = 8;

    /// Builds BTF bytes holding `struct outer { int a; union { int b; struct { int c; int d; }; }; struct inner in; }`.
    fn sample() -> Vec<u8> {
        let strings = b"\0int\0outer\0a\0b\0c\0d\0in\0inner\0x\0";
        let s = |name: &str| -> u32 {
            let needle = format!("\0{name}\0");
            strings
                .windows(needle.len())
                .position(|w| w == needle.as_bytes())
                .map(|p| p as u32 + 1)
                .unwrap()
        };
        let mut t = Vec::new();
        let mut push = |words: &[u32]| {
            for w in words {
                t.extend_from_slice(&w.to_le_bytes());
            }
        };
        // 1: int
        push(&[s("int"), KIND_INT << 24, 4, 32]);
        // 2: anonymous struct { int c; int d; }
        push(&[0, KIND_STRUCT << 24 | 2, 8, s("c"), 1, 0, s("d"), 1, 32]);
        // 3: anonymous union { int b; struct 2; }
        push(&[0, KIND_UNION << 24 | 2, 8, s("b"), 1, 0, 0, 2, 0]);
        // 4: struct inner { int x; }
        push(&[s("inner"), KIND_STRUCT << 24 | 1, 4, s("x"), 1, 0]);
        // 5: typedef inner_t = 4
        push(&[s("in"), KIND_TYPEDEF << 24, 4]);
        // 6: struct outer { int a; union 3; inner_t in; }
        push(&[
            s("outer"),
            KIND_STRUCT << 24 | 3,
            16,
            s("a"),
            1,
            0,
            0,
            3,
            32,
            s("in"),
            5,
            96,
        ]);
        let mut out = Vec::new();
        for w in [
            0x0001_eb9f_u32,
            24,
            0,
            t.len() as u32,
            t.len() as u32,
            strings.len() as u32,
        ] {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.extend_from_slice(&t);
        out.extend_from_slice(strings);
        out
    }

    #[test]
    fn finds_direct_anonymous_and_nested_members() {
        let btf = Btf::parse(&sample()).unwrap();
        assert_eq!(btf.member_offset("outer", "a").unwrap(), 0);
        assert_eq!(btf.member_offset("outer", "b").unwrap(), 4);
        assert_eq!(btf.member_offset("outer", "d").unwrap(), 8);
        assert_eq!(btf.member_offset("outer", "in.x").unwrap(), 12);
        assert_eq!(btf.struct_size("outer").unwrap(), 16);
    }

    #[test]
    fn reports_missing_members_and_types() {
        let btf = Btf::parse(&sample()).unwrap();
        assert!(matches!(
            btf.member_offset("outer", "zz"),
            Err(Error::NoSuchMember { .. })
        ));
        assert!(matches!(
            btf.member_offset("nope", "a"),
            Err(Error::NoSuchType(_))
        ));
        assert!(matches!(Btf::parse(b"junk"), Err(Error::Parse(_))));
    }

    #[test]
    fn reads_the_running_kernel() {
        // mamori requires a kernel with BTF; so do its tests.
        let data = std::fs::read("/sys/kernel/btf/vmlinux").unwrap();
        let btf = Btf::parse(&data).unwrap();
        assert!(btf.member_offset("task_struct", "pid").unwrap() > 0);
        assert!(btf.member_offset("dentry", "d_name.name").unwrap() > 0);
        assert_eq!(btf.struct_size("upid").unwrap(), 16);
        assert!(btf.enum_value("cgroup_subsys_id", "pids_cgrp_id").is_ok());
        assert!(btf.enum_value("cgroup_subsys_id", "nope_cgrp_id").is_err());
    }
}
