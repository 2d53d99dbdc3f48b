use super::*;

fn check(e: &Expr) -> &Check {
    match e {
        Expr::Check(c) => c,
        other => panic!("not a check: {other:?}"),
    }
}

fn field(o: &Operand) -> (&str, Option<&str>) {
    match o {
        Operand::Field { name, arg, .. } => (name, arg.as_deref()),
        other => panic!("not a field: {other:?}"),
    }
}

#[test]
fn precedence_is_or_then_and_then_not() {
    let e = parse("a or b and not c").unwrap();
    let Expr::Or(items) = e else { panic!() };
    assert_eq!(items.len(), 2);
    let Expr::And(inner) = &items[1] else {
        panic!()
    };
    assert!(matches!(inner[1], Expr::Not(_)));
}

#[test]
fn every_operator_parses() {
    for (text, op) in [
        ("f.x = 1", Op::Eq),
        ("f.x == 1", Op::Eq),
        ("f.x != 1", Op::Ne),
        ("f.x < 1", Op::Lt),
        ("f.x <= 1", Op::Le),
        ("f.x > 1", Op::Gt),
        ("f.x >= 1", Op::Ge),
        ("f.x contains a", Op::Contains),
        ("f.x icontains a", Op::IContains),
        ("f.x bcontains cafe", Op::BContains),
        ("f.x startswith a", Op::StartsWith),
        ("f.x bstartswith ca", Op::BStartsWith),
        ("f.x endswith a", Op::EndsWith),
        ("f.x in (a)", Op::In),
        ("f.x intersects (a)", Op::Intersects),
        ("f.x pmatch (/a)", Op::PMatch),
        ("f.x glob 'a*'", Op::Glob),
        ("f.x iglob 'a*'", Op::IGlob),
        ("f.x regex 'a.*'", Op::Regex),
        ("f.x exists", Op::Exists),
    ] {
        assert_eq!(check(&parse(text).unwrap()).op, op, "{text}");
    }
}

#[test]
fn operators_need_no_spaces() {
    let c = parse("fd.num>=0").unwrap();
    assert_eq!(check(&c).op, Op::Ge);
    let c = parse("fd.typechar='f'").unwrap();
    let Rhs::Value(v) = &check(&c).rhs else {
        panic!()
    };
    assert_eq!((v.text.as_str(), v.quoted), ("f", true));
    assert!(parse("not(proc.name=a)").is_ok());
    assert!(parse("proc.name in(a,b)").is_ok());
}

#[test]
fn bare_values_keep_brackets_colons_and_slashes() {
    let c = parse("proc.name = runc:[0:PARENT]").unwrap();
    let Rhs::Value(v) = &check(&c).rhs else {
        panic!()
    };
    assert_eq!(v.text, "runc:[0:PARENT]");
    let c = parse("fd.net in (127.0.0.0/8, \"10.0.0.0/8\")").unwrap();
    let Rhs::List(items, _) = &check(&c).rhs else {
        panic!()
    };
    assert_eq!(items[0].text, "127.0.0.0/8");
    assert_eq!(items[1].text, "10.0.0.0/8");
}

#[test]
fn indexed_fields_and_glob_keys() {
    let c = parse("proc.aname[2] = sshd").unwrap();
    assert_eq!(field(&check(&c).lhs), ("proc.aname", Some("2")));
    let c = parse("container.mount.dest[/proc*] != \"N/A\"").unwrap();
    assert_eq!(
        field(&check(&c).lhs),
        ("container.mount.dest", Some("/proc*"))
    );
    let c = parse("evt.arg.flags contains O_TRUNC").unwrap();
    assert_eq!(field(&check(&c).lhs), ("evt.arg.flags", None));
    let c = parse("evt.arg[0] = 1").unwrap();
    assert_eq!(field(&check(&c).lhs), ("evt.arg", Some("0")));
}

#[test]
fn transformers_and_val() {
    let c = parse("tolower(basename(proc.exe)) = bash").unwrap();
    let Operand::Transform { name, inner, .. } = &check(&c).lhs else {
        panic!()
    };
    assert_eq!(name, "tolower");
    assert!(matches!(**inner, Operand::Transform { .. }));
    let c = parse("proc.name = val(proc.pname)").unwrap();
    assert!(matches!(check(&c).rhs, Rhs::Field(_)));
}

#[test]
fn modifiers_take_lists() {
    let c = parse("proc.name startswith anyof (a, b)").unwrap();
    assert_eq!(check(&c).modifier, Some(Modifier::AnyOf));
    assert!(matches!(check(&c).rhs, Rhs::List(..)));
    // A value named like a modifier is still a value.
    let c = parse("proc.name = anyof").unwrap();
    assert_eq!(check(&c).modifier, None);
}

#[test]
fn macros_and_list_refs() {
    let e = parse("spawned_process and proc.name in shell_binaries").unwrap();
    let Expr::And(items) = e else { panic!() };
    assert_eq!(
        items[0],
        Expr::Macro("spawned_process".into(), Span { start: 0, end: 15 })
    );
    assert!(matches!(check(&items[1]).rhs, Rhs::ListRef(ref n, _) if n == "shell_binaries"));
}

#[test]
fn quoted_strings_with_escapes_and_spaces() {
    let c = parse(r#"proc.cmdline contains "a \"b\" c""#).unwrap();
    let Rhs::Value(v) = &check(&c).rhs else {
        panic!()
    };
    assert_eq!(v.text, "a \"b\" c");
}

#[test]
fn errors_carry_offsets() {
    for (text, offset, needle) in [
        ("proc.name = a and", 17, "ends"),
        ("(proc.name = a", 0, "never closed"),
        ("proc.name bogus a", 10, "operator"),
        ("proc.name = a b", 14, "unexpected"),
        ("proc.name = ", 12, "value"),
        ("proc.name in (a, b", 13, "never closed"),
        ("proc.name = 'abc", 12, "unterminated"),
        ("name = x", 0, "not a field"),
        (")", 0, "unexpected"),
        ("", 0, "empty"),
    ] {
        let e = parse(text).unwrap_err();
        assert_eq!(e.offset, offset, "{text}: {e:?}");
        assert!(e.message.contains(needle), "{text}: {}", e.message);
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = "(".repeat(100_000) + "a" + &")".repeat(100_000);
    assert!(parse(&deep).unwrap_err().message.contains("nested"));
    let nots = "not ".repeat(100_000) + "a";
    assert!(parse(&nots).unwrap_err().message.contains("nested"));
}

#[test]
fn r_fuzz_error_snippets_cut_on_char_boundaries() {
    // Found by the `condition` fuzz target: a message snippet cut inside 'Җ'.
    let text = format!("f'{}", "\u{19}".repeat(36) + "dҖo)-");
    let e = parse(&format!("proc.name = a {text}")).unwrap_err();
    assert!(e.message.contains("unexpected"), "{e:?}");
    assert!(parse("proc.name = 'ҖҖҖҖҖҖҖҖҖҖҖҖҖҖҖҖҖҖҖҖҖҖҖҖҖ").is_err());
    assert!(parse("ҖҖҖҖҖҖҖҖҖҖҖҖҖҖҖҖҖҖҖҖҖҖҖҖҖҖ").is_err());
}
