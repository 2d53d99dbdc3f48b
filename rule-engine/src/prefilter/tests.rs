//! Tests of what the prefilter derives from conditions.

use super::*;

#[test]
fn paths_split_into_their_last_two_components() {
    assert_eq!(
        split_path(b"/etc/shadow"),
        Some((&b"shadow"[..], Some(&b"etc"[..])))
    );
    assert_eq!(split_path(b"/shadow"), Some((&b"shadow"[..], None)));
    assert_eq!(split_path(b"/"), None);
    assert_eq!(split_path(b"etc/shadow"), None);
    assert_eq!(split_path(b"/a/b/c"), Some((&b"c"[..], Some(&b"b"[..]))));
}

#[test]
fn terms_meet_and_join() {
    let read = Term {
        access: ACCESS_READ,
        success: true,
        ..Term::ANY
    };
    let write = Term {
        access: ACCESS_WRITE,
        ..Term::ANY
    };
    let both = read.and(&write).unwrap();
    assert_eq!(both.access, 0b0100, "read and write: O_RDWR only");
    assert!(both.success);
    let shadow = Term {
        name: Some(Names::exact([b"shadow".to_vec()])),
        ..Term::ANY
    };
    let suffix = Term {
        name: Some(Names {
            exact: BTreeSet::new(),
            suffix: BTreeSet::from([b"_key".to_vec()]),
        }),
        ..Term::ANY
    };
    assert!(shadow.and(&suffix).is_none(), "shadow does not end in _key");
    let lub = shadow.lub(&suffix);
    assert!(lub.name.as_ref().unwrap().matches(b"shadow"));
    assert!(lub.name.as_ref().unwrap().matches(b"ssh_host_rsa_key"));
    assert!(shadow.lub(&Term::ANY).name.is_none());
}

#[test]
fn many_terms_merge_into_fewer_that_admit_as_much() {
    let mut terms: Vec<Term> = (0..40)
        .map(|i| Term {
            name: Some(Names::exact([format!("f{i}").into_bytes()])),
            success: true,
            ..Term::ANY
        })
        .collect();
    bound(&mut terms);
    assert!(terms.len() <= MAX_TERMS);
    for i in 0..40 {
        let facts = OpenFacts {
            ret: 3,
            flags: Some(0),
            raw: None,
            name: Some(format!("f{i}").into_bytes()),
            dir: Parent::Root,
        };
        assert!(terms.iter().any(|t| t.admits(&facts)), "f{i}");
    }
}

/// Past the budget, the terms merged are those whose join admits least: a
/// term that names only files is not joined with one that names only
/// directories (the join would name neither and admit every open).
#[test]
fn merging_keeps_the_names_it_can() {
    let named = |i: usize| Term {
        name: Some(Names::exact([format!("f{i}").into_bytes()])),
        ..Term::ANY
    };
    let mut terms: Vec<Term> = (0..MAX_TERMS).map(named).collect();
    terms.push(Term {
        dir: Some(BTreeSet::from([b"rules.d".to_vec()])),
        ..Term::ANY
    });
    bound(&mut terms);
    assert_eq!(terms.len(), MAX_TERMS);
    assert!(
        terms.iter().all(|t| t.name.is_some() || t.dir.is_some()),
        "{terms:?}"
    );
}
