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
