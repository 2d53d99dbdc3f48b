//! Semantics of every operator, modifier and transformer.

mod common;

use common::{Ev, matches};
use mamori_rules::{Field as F, FieldArg, Value};

fn open(name: &str) -> Ev {
    Ev::new("openat")
        .s(F::FdName, name)
        .s(F::ProcName, "bash")
        .i(F::FdNum, 3)
}

#[test]
fn equality_and_inequality() {
    let e = open("/etc/shadow");
    assert!(matches("evt.type = openat and fd.name = /etc/shadow", &e));
    assert!(matches("evt.type = openat and fd.name == /etc/shadow", &e));
    assert!(!matches("evt.type = openat and fd.name != /etc/shadow", &e));
    assert!(matches("evt.type = openat and fd.name != /etc/passwd", &e));
    assert!(matches("evt.type = openat and fd.num = 3", &e));
    assert!(!matches("evt.type = openat and fd.num != 3", &e));
}

#[test]
fn a_missing_field_fails_every_comparison_but_not_its_negation() {
    let e = open("/etc/shadow");
    assert!(!matches("evt.type = openat and container.id = host", &e));
    assert!(!matches("evt.type = openat and container.id != host", &e));
    assert!(matches("evt.type = openat and not container.id = host", &e));
    assert!(!matches("evt.type = openat and container.id exists", &e));
    assert!(matches("evt.type = openat and fd.name exists", &e));
}

#[test]
fn numeric_comparisons() {
    let e = open("/x");
    for (c, want) in [
        ("fd.num < 4", true),
        ("fd.num <= 3", true),
        ("fd.num > 3", false),
        ("fd.num >= 3", true),
        ("fd.num in (1, 2, 3)", true),
        ("fd.num in (7)", false),
        ("fd.num >= -1", true),
        ("fd.num = 0x3", true),
    ] {
        assert_eq!(
            matches(&format!("evt.type = openat and {c}"), &e),
            want,
            "{c}"
        );
    }
}

#[test]
fn string_operators() {
    let e = open("/etc/ssh/sshd_config");
    for (c, want) in [
        ("fd.name contains ssh", true),
        ("fd.name contains SSH", false),
        ("fd.name icontains SSH", true),
        ("fd.name startswith /etc/", true),
        ("fd.name endswith _config", true),
        ("fd.name endswith .conf", false),
        ("fd.name in (/etc/passwd, /etc/ssh/sshd_config)", true),
        ("fd.name intersects (/etc/ssh/sshd_config)", true),
        ("fd.name pmatch (/etc/ssh)", true),
        ("fd.name pmatch (/etc/ss)", false),
        ("fd.name pmatch (/)", true),
        ("fd.name glob '/etc/*/sshd_*'", true),
        ("fd.name glob '/ETC/*'", false),
        ("fd.name iglob '/ETC/*'", true),
        ("fd.name regex '/etc/ssh/.*'", true),
        ("fd.name regex 'ssh'", false),
        ("fd.name bcontains 737368", true),
        ("fd.name bstartswith 2f657463", true),
        ("fd.name bstartswith 2f657464", false),
    ] {
        assert_eq!(
            matches(&format!("evt.type = openat and {c}"), &e),
            want,
            "{c}"
        );
    }
}

#[test]
fn modifiers() {
    let e = open("/etc/ssh/sshd_config");
    assert!(matches(
        "evt.type = openat and fd.name startswith anyof (/tmp, /etc)",
        &e
    ));
    assert!(!matches(
        "evt.type = openat and fd.name startswith allof (/tmp, /etc)",
        &e
    ));
    assert!(matches(
        "evt.type = openat and fd.name contains allof (ssh, config)",
        &e
    ));
    assert!(matches(
        "evt.type = openat and fd.name contains oneof (ssh, nope)",
        &e
    ));
    assert!(!matches(
        "evt.type = openat and fd.name contains oneof (ssh, config)",
        &e
    ));
}

#[test]
fn booleans_and_networks() {
    let e = Ev::new("connect")
        .b(F::FdConnected, true)
        .v(F::FdSip, Value::Ip("10.1.2.3".parse().unwrap()))
        .v(F::FdSnet, Value::Ip("10.1.2.3".parse().unwrap()));
    assert!(matches("evt.type = connect and fd.connected = true", &e));
    assert!(matches("evt.type = connect and fd.connected = TRUE", &e));
    assert!(!matches("evt.type = connect and fd.connected = false", &e));
    assert!(matches("evt.type = connect and fd.sip = 10.1.2.3", &e));
    assert!(matches("evt.type = connect and fd.sip in (10.0.0.0/8)", &e));
    assert!(matches(
        "evt.type = connect and fd.snet = \"10.0.0.0/8\"",
        &e
    ));
    assert!(matches(
        "evt.type = connect and fd.snet in (\"192.168.0.0/16\", \"10.0.0.0/8\")",
        &e
    ));
    assert!(!matches(
        "evt.type = connect and fd.snet in (\"192.168.0.0/16\")",
        &e
    ));
    assert!(matches(
        "evt.type = connect and not fd.snet in (\"127.0.0.0/8\")",
        &e
    ));
}

#[test]
fn many_valued_fields_match_if_any_value_does() {
    let ancestors = Value::Many(vec![
        Value::owned("bash"),
        Value::owned("sshd"),
        Value::owned("systemd"),
    ]);
    let e = Ev::new("execve").v(F::ProcAname, ancestors).arg(
        F::ProcAname,
        FieldArg::Index(2),
        Value::owned("sshd"),
    );
    assert!(matches("evt.type = execve and proc.aname = sshd", &e));
    assert!(matches(
        "evt.type = execve and proc.aname in (nginx, systemd)",
        &e
    ));
    assert!(!matches("evt.type = execve and proc.aname = nginx", &e));
    assert!(matches("evt.type = execve and proc.aname[2] = sshd", &e));
    assert!(!matches("evt.type = execve and proc.aname[2] = bash", &e));
    assert!(
        !matches("evt.type = execve and proc.aname[3] = bash", &e),
        "unset index is missing"
    );
}

#[test]
fn transformers() {
    let e = Ev::new("execve")
        .s(F::ProcExepath, "/usr/bin/Python3")
        .s(F::ProcCmdline, "ZWNobyBoaQ==");
    assert!(matches(
        "evt.type = execve and tolower(proc.exepath) = /usr/bin/python3",
        &e
    ));
    assert!(matches(
        "evt.type = execve and toupper(proc.exepath) contains PYTHON3",
        &e
    ));
    assert!(matches(
        "evt.type = execve and basename(proc.exepath) = Python3",
        &e
    ));
    assert!(matches("evt.type = execve and len(proc.exepath) = 16", &e));
    assert!(matches("evt.type = execve and len(proc.exepath) > 10", &e));
    assert!(matches(
        "evt.type = execve and b64(proc.cmdline) = 'echo hi'",
        &e
    ));
    assert!(matches(
        "evt.type = execve and tolower(basename(proc.exepath)) = python3",
        &e
    ));
}

#[test]
fn field_to_field_comparison() {
    let e = Ev::new("execve")
        .s(F::ProcName, "bash")
        .s(F::ProcPname, "bash")
        .s(F::ProcExe, "sh");
    assert!(matches(
        "evt.type = execve and proc.name = val(proc.pname)",
        &e
    ));
    assert!(!matches(
        "evt.type = execve and proc.name = val(proc.exe)",
        &e
    ));
    assert!(matches(
        "evt.type = execve and proc.name != val(proc.exe)",
        &e
    ));
}

#[test]
fn precedence_and_grouping() {
    let e = open("/a");
    assert!(matches(
        "evt.type = openat and (fd.name = /b or fd.name = /a)",
        &e
    ));
    assert!(!matches(
        "evt.type = openat and fd.name = /b or fd.name = /c",
        &e
    ));
    assert!(matches(
        "evt.type = openat and not (fd.name = /b and proc.name = bash)",
        &e
    ));
    assert!(matches("evt.type = openat and not not fd.name = /a", &e));
}

/// Negated conjunctions keyed on one field are evaluated through a lookup
/// of that field's value (`except.rs`); each must keep its meaning.
#[test]
fn exceptions_keyed_on_one_field() {
    let cond = "evt.type = openat \
        and not (proc.name = a and fd.name = /x) \
        and not proc.name = b \
        and not (proc.name in (c, d) and fd.name startswith /y) \
        and not (proc.name = a and fd.name = /w) \
        and not (fd.num = 7 and proc.name = e)";
    let ev = |name: Option<&str>, path: &str, num: i64| {
        let e = Ev::new("openat").s(F::FdName, path).i(F::FdNum, num);
        match name {
            Some(n) => e.s(F::ProcName, n),
            None => e,
        }
    };
    for (name, path, num, want) in [
        (Some("a"), "/x", 3, false),
        (Some("a"), "/w", 3, false),
        (Some("a"), "/z", 3, true),
        (Some("b"), "/z", 3, false),
        (Some("c"), "/y1", 3, false),
        (Some("d"), "/y", 3, false),
        (Some("c"), "/z", 3, true),
        (Some("e"), "/z", 7, false),
        (Some("e"), "/z", 8, true),
        (Some("zz"), "/x", 3, true),
        (None, "/x", 7, true),
    ] {
        assert_eq!(
            matches(cond, &ev(name, path, num)),
            want,
            "{name:?} {path} {num}"
        );
    }
    // Several values of the field: an exception applies when any does.
    let many = Ev::new("openat").s(F::FdName, "/x").arg(
        F::ProcAname,
        FieldArg::None,
        Value::Many(vec![Value::str(b"q"), Value::str(b"b")]),
    );
    let cond = "evt.type = openat and not proc.aname = b and not (proc.aname = a and fd.name = /x)";
    assert!(!matches(cond, &many));
    let cond = "evt.type = openat and not proc.aname = z and not (proc.aname = a and fd.name = /x)";
    assert!(matches(cond, &many));
}
