//! The loader: every item and key, append/override, exceptions, error
//! positions, outputs.

mod common;

use common::{Ev, errors, hits, load_strs, rule, ruleset, warnings};
use mamori_rules::{Field as F, FieldArg, OutputValue, Priority, Value};

const BASE: &str = r#"
- required_engine_version: 0.57.0
- required_plugin_versions:
    - name: container
      version: 0.4.0
- list: shells
  items: [bash, sh]
- macro: spawned
  condition: evt.type in (execve, execveat)
- rule: shell
  desc: a shell ran
  condition: spawned and proc.name in (shells)
  output: "shell %proc.name by %user.name (parent %proc.aname[1])"
  priority: info
  tags: [T1059, process]
"#;

fn exec(name: &str) -> Ev {
    Ev::new("execve")
        .s(F::ProcName, name)
        .s(F::UserName, "root")
}

#[test]
fn lists_macros_rules_and_output() {
    let rs = ruleset(&[BASE]);
    assert_eq!(hits(&rs, &exec("bash")), ["shell"]);
    assert!(hits(&rs, &exec("zsh")).is_empty());
    let r = &rs.rules[0];
    assert_eq!(r.priority, Priority::Informational);
    assert_eq!(r.tags, ["T1059", "process"]);
    let ev = exec("sh");
    let mut out = None;
    rs.evaluate(rs.type_id("execve").unwrap(), &ev, |_, rendered| {
        out = Some(rendered)
    });
    let out = out.unwrap();
    assert_eq!(out.message, "shell sh by root (parent <NA>)");
    assert_eq!(
        out.fields,
        vec![
            ("proc.name".to_owned(), OutputValue::Str("sh".into())),
            ("user.name".to_owned(), OutputValue::Str("root".into())),
            ("proc.aname[1]".to_owned(), OutputValue::Missing),
        ]
    );
}

#[test]
fn list_append_and_override() {
    let add = "- list: shells\n  items: [zsh]\n  append: true\n";
    assert_eq!(hits(&ruleset(&[BASE, add]), &exec("zsh")), ["shell"]);
    let replace = "- list: shells\n  items: [fish]\n  override:\n    items: replace\n";
    let rs = ruleset(&[BASE, replace]);
    assert!(hits(&rs, &exec("bash")).is_empty());
    assert_eq!(hits(&rs, &exec("fish")), ["shell"]);
    let append = "- list: shells\n  items: [ksh]\n  override:\n    items: append\n";
    let rs = ruleset(&[BASE, append]);
    assert_eq!(hits(&rs, &exec("ksh")), ["shell"]);
    assert_eq!(hits(&rs, &exec("bash")), ["shell"]);
}

#[test]
fn nested_and_quoted_list_items() {
    let f = r#"
- list: a
  items: [x]
- list: b
  items: [a, '"y z"']
- rule: r
  desc: d
  condition: evt.type = execve and proc.name in (b)
  output: o
  priority: NOTICE
"#;
    let rs = ruleset(&[f]);
    assert_eq!(hits(&rs, &exec("x")), ["r"]);
    assert_eq!(hits(&rs, &exec("y z")), ["r"]);
}

#[test]
fn macro_append_and_replace() {
    let append = "- macro: spawned\n  condition: and user.name = alice\n  append: true\n";
    let rs = ruleset(&[BASE, append]);
    assert!(hits(&rs, &exec("bash")).is_empty());
    assert_eq!(hits(&rs, &exec("bash").s(F::UserName, "alice")), ["shell"]);
    let replace = "- macro: spawned\n  condition: evt.type = execve and user.name = bob\n  override:\n    condition: replace\n";
    let rs = ruleset(&[BASE, replace]);
    assert_eq!(hits(&rs, &exec("bash").s(F::UserName, "bob")), ["shell"]);
}

#[test]
fn legacy_rule_append_extends_the_condition() {
    let append = "- rule: shell\n  condition: and not user.name = root\n  append: true\n";
    let rs = ruleset(&[BASE, append]);
    assert!(hits(&rs, &exec("bash")).is_empty());
    assert_eq!(hits(&rs, &exec("bash").s(F::UserName, "eve")), ["shell"]);
}

#[test]
fn rule_overrides_on_allowed_keys() {
    let f = r#"
- rule: shell
  condition: and user.name = eve
  output: " (more)"
  priority: CRITICAL
  enabled: true
  tags: [extra]
  override:
    condition: append
    output: append
    priority: replace
    enabled: replace
    tags: append
"#;
    let rs = ruleset(&[BASE, f]);
    let r = &rs.rules[0];
    assert_eq!(r.priority, Priority::Critical);
    assert_eq!(r.tags, ["T1059", "process", "extra"]);
    let ev = exec("bash").s(F::UserName, "eve");
    let mut msg = String::new();
    rs.evaluate(rs.type_id("execve").unwrap(), &ev, |_, o| msg = o.message);
    assert!(msg.ends_with("(more)"), "{msg}");
}

#[test]
fn override_errors() {
    let not_allowed = "- rule: shell\n  priority: ERROR\n  override:\n    priority: append\n";
    assert!(errors(&load_strs(&[BASE, not_allowed]))[0].contains("`priority` cannot be appended"));
    let missing = "- rule: shell\n  override:\n    desc: replace\n";
    assert!(errors(&load_strs(&[BASE, missing]))[0].contains("not given"));
    let unlisted = "- rule: shell\n  desc: x\n  priority: ERROR\n  override:\n    desc: replace\n";
    assert!(
        errors(&load_strs(&[BASE, unlisted]))[0].contains("`priority` is given but not listed")
    );
    let nothing = "- rule: nope\n  desc: x\n  override:\n    desc: replace\n";
    assert!(errors(&load_strs(&[BASE, nothing]))[0].contains("not defined"));
    let both = "- list: shells\n  items: [a]\n  append: true\n  override:\n    items: append\n";
    assert!(errors(&load_strs(&[BASE, both]))[0].contains("cannot be used together"));
}

#[test]
fn enabling_and_disabling() {
    let off = "- rule: shell\n  enabled: false\n";
    let r = load_strs(&[BASE, off]);
    assert!(warnings(&r).iter().any(|w| w.contains("deprecated")));
    let rs = r.ruleset.unwrap();
    assert!(hits(&rs, &exec("bash")).is_empty());
    assert_eq!(r.stats.enabled_rules, 0);
    let on = "- rule: shell\n  enabled: true\n  override:\n    enabled: replace\n";
    assert_eq!(hits(&ruleset(&[BASE, off, on]), &exec("bash")), ["shell"]);
}

#[test]
fn exceptions_with_one_field() {
    let f = r#"
- rule: r
  desc: d
  condition: evt.type = openat and fd.name startswith /etc
  output: o
  priority: WARNING
  exceptions:
    - name: known_readers
      fields: proc.name
      values: [sshd, '"systemd resolved"']
    - name: known_dirs
      fields: fd.directory
      comps: pmatch
      values: [/etc/ssl]
"#;
    let rs = ruleset(&[f]);
    let ev = |p: &str, name: &str, dir: &str| {
        Ev::new("openat")
            .s(F::ProcName, p)
            .s(F::FdName, name)
            .s(F::FdDirectory, dir)
    };
    assert_eq!(hits(&rs, &ev("cat", "/etc/shadow", "/etc")), ["r"]);
    assert!(hits(&rs, &ev("sshd", "/etc/shadow", "/etc")).is_empty());
    assert!(hits(&rs, &ev("systemd resolved", "/etc/shadow", "/etc")).is_empty());
    assert!(hits(&rs, &ev("cat", "/etc/ssl/certs/a", "/etc/ssl/certs")).is_empty());
}

#[test]
fn exceptions_with_field_tuples_comps_and_list_values() {
    let f = r#"
- list: trusted
  items: [nginx, haproxy]
- rule: r
  desc: d
  condition: evt.type = openat and fd.name startswith /etc
  output: o
  priority: WARNING
  exceptions:
    - name: proc_and_file
      fields: [proc.name, fd.name]
      comps: [in, startswith]
      values:
        - [[cat, less], /etc/hosts]
        - [trusted, /etc/]
    - name: default_comps
      fields: [proc.name, user.name]
      values:
        - [backup, root]
"#;
    let rs = ruleset(&[f]);
    let ev = |p: &str, name: &str, user: &str| {
        Ev::new("openat")
            .s(F::ProcName, p)
            .s(F::FdName, name)
            .s(F::UserName, user)
    };
    assert!(hits(&rs, &ev("less", "/etc/hosts", "u")).is_empty());
    assert_eq!(hits(&rs, &ev("less", "/etc/shadow", "u")), ["r"]);
    assert!(
        hits(&rs, &ev("haproxy", "/etc/shadow", "u")).is_empty(),
        "list name in a tuple expands"
    );
    assert!(hits(&rs, &ev("backup", "/etc/shadow", "root")).is_empty());
    assert_eq!(hits(&rs, &ev("backup", "/etc/shadow", "alice")), ["r"]);
}

#[test]
fn exception_values_can_be_appended() {
    let base = r#"
- rule: r
  desc: d
  condition: evt.type = openat
  output: o
  priority: WARNING
  exceptions:
    - name: by_proc
      fields: proc.name
      values: [a]
"#;
    let more = "- rule: r\n  exceptions:\n    - name: by_proc\n      values: [b]\n    - name: by_user\n      fields: user.name\n      values: [root]\n  override:\n    exceptions: append\n";
    let rs = ruleset(&[base, more]);
    let ev = |p: &str, u: &str| Ev::new("openat").s(F::ProcName, p).s(F::UserName, u);
    assert!(hits(&rs, &ev("a", "x")).is_empty());
    assert!(hits(&rs, &ev("b", "x")).is_empty());
    assert!(hits(&rs, &ev("c", "root")).is_empty());
    assert_eq!(hits(&rs, &ev("c", "x")), ["r"]);
    let legacy =
        "- rule: r\n  exceptions:\n    - name: by_proc\n      values: [z]\n  append: true\n";
    assert!(hits(&ruleset(&[base, legacy]), &ev("z", "x")).is_empty());
    let bad = "- rule: r\n  exceptions:\n    - name: by_proc\n      fields: user.name\n      values: [z]\n  append: true\n";
    assert!(errors(&load_strs(&[base, bad]))[0].contains("may only add values"));
}

#[test]
fn exception_errors_are_reported() {
    let f = r#"
- rule: r
  desc: d
  condition: evt.type = openat
  output: o
  priority: WARNING
  exceptions:
    - name: bad
      fields: [proc.name, fd.name]
      comps: [=]
      values: [[a, b]]
"#;
    assert!(errors(&load_strs(&[f]))[0].contains("2 fields but 1 comps"));
}

#[test]
fn errors_name_file_line_and_column() {
    let f = "- rule: r\n  desc: d\n  condition: evt.type = openat and proc.nam = x\n  output: o\n  priority: WARNING\n";
    assert_eq!(
        errors(&load_strs(&[f])),
        ["f0.yaml:3:36: unknown field `proc.nam` (see `mamori fields`)"]
    );
    // Inside a folded multi-line condition.
    let f = "- rule: r\n  desc: d\n  condition: >\n    evt.type = openat\n    and fd.name bogus x\n  output: o\n  priority: WARNING\n";
    let e = errors(&load_strs(&[f]));
    assert!(e[0].starts_with("f0.yaml:5:17:"), "{e:?}");
    // Inside a macro, reported where the macro is written.
    let f = "- macro: m\n  condition: fd.nope = 1\n- rule: r\n  desc: d\n  condition: evt.type = openat and m\n  output: o\n  priority: WARNING\n";
    let e = errors(&load_strs(&[f]));
    assert!(
        e[0].starts_with("f0.yaml:2:14: unknown field `fd.nope`"),
        "{e:?}"
    );
    let f = "- rule: r\n  desc: d\n  condition: evt.type = openat and nosuchmacro\n  output: o\n  priority: WARNING\n";
    assert!(errors(&load_strs(&[f]))[0].contains("undefined macro `nosuchmacro`"));
    let f =
        "- rule: r\n  desc: d\n  condition: evt.type = openat\n  output: o\n  priority: SEVERE\n";
    assert!(errors(&load_strs(&[f]))[0].starts_with("f0.yaml:5:13: priority must be"));
    let f = "- rule: r\n  condition: evt.type = openat\n";
    assert!(errors(&load_strs(&[f]))[0].contains("missing required keys: output, desc, priority"));
    let e = errors(&load_strs(&["- rule: [unclosed\n"]));
    assert!(e[0].starts_with("f0.yaml:"), "{e:?}");
    let f = "- macro: a\n  condition: b\n- macro: b\n  condition: a\n- rule: r\n  desc: d\n  condition: evt.type = openat and a\n  output: o\n  priority: WARNING\n";
    assert!(errors(&load_strs(&[f]))[0].contains("macro recursion: a -> b -> a"));
    let f = "- rule: r\n  desc: d\n  condition: evt.type = openat\n  output: \"%proc.nope\"\n  priority: WARNING\n";
    assert!(errors(&load_strs(&[f]))[0].contains("unknown field `proc.nope`"));
    let f = "- rule: r\n  desc: d\n  condition: fd.num = abc\n  output: o\n  priority: WARNING\n";
    assert!(errors(&load_strs(&[f]))[0].contains("`abc` is not a number"));
    let f =
        "- rule: r\n  desc: d\n  condition: fd.num contains 1\n  output: o\n  priority: WARNING\n";
    assert!(errors(&load_strs(&[f]))[0].contains("cannot be used with a numeric field"));
}

#[test]
fn unknown_fields_skip_rules_that_ask_for_it() {
    let f = "- rule: r\n  desc: d\n  condition: evt.type = openat and k8saudit.verb = x\n  output: o\n  priority: WARNING\n  skip-if-unknown-filter: true\n";
    let r = load_strs(&[f]);
    assert!(errors(&r).is_empty());
    assert!(warnings(&r).iter().any(|w| w.contains("rule skipped")));
    assert_eq!(r.ruleset.unwrap().needed_event_types().len(), 0);
}

#[test]
fn other_sources_are_skipped_with_a_warning() {
    let f = "- rule: audit\n  desc: d\n  condition: ka.verb = create\n  output: o\n  priority: WARNING\n  source: k8s_audit\n";
    let r = load_strs(&[f]);
    assert!(errors(&r).is_empty());
    assert!(warnings(&r)[0].contains("source `k8s_audit` is not supported"));
}

#[test]
fn engine_versions() {
    assert!(errors(&load_strs(&["- required_engine_version: 8\n"])).is_empty());
    assert!(errors(&load_strs(&["- required_engine_version: 0.57.0\n"])).is_empty());
    assert!(
        errors(&load_strs(&["- required_engine_version: 9.0.0\n"]))[0]
            .contains("requires engine version 9.0.0")
    );
    assert!(
        errors(&load_strs(&["- required_engine_version: abc\n"]))[0].contains("not an integer")
    );
}

#[test]
fn unknown_keys_are_warnings() {
    let f = format!("{}  flavour: spicy\n", rule("evt.type = openat"));
    let r = load_strs(&[&f]);
    assert!(errors(&r).is_empty());
    assert!(
        warnings(&r)
            .iter()
            .any(|w| w.contains("unknown key `flavour`"))
    );
}

#[test]
fn event_type_index_and_warnings() {
    let rs = ruleset(&[&rule("evt.type in (open, openat) and fd.name = /x")]);
    assert_eq!(
        rs.needed_event_types().into_iter().collect::<Vec<_>>(),
        ["open", "openat"]
    );
    let r = load_strs(&[&rule("proc.name = bash")]);
    assert!(
        warnings(&r)
            .iter()
            .any(|w| w.contains("does not restrict evt.type"))
    );
    let r = load_strs(&[&rule("evt.type != openat and proc.name = bash")]);
    let rs = r.ruleset.unwrap();
    assert!(!rs.needed_event_types().contains("openat"));
    assert!(rs.needed_event_types().contains("execve"));
    let r = load_strs(&[&rule("evt.type = pluginevent")]);
    assert!(warnings(&r).iter().any(|w| w.contains("does not capture")));
    // not (evt.type = x and field) can match x: no complement.
    let rs = ruleset(&[&rule(
        "evt.type in (openat, execve) and not (evt.type = openat and fd.name = /x)",
    )]);
    assert_eq!(
        rs.needed_event_types().into_iter().collect::<Vec<_>>(),
        ["execve", "openat"]
    );
}

#[test]
fn first_match_mode_stops_at_the_first_rule() {
    let two = format!(
        "{}{}",
        rule("evt.type = openat"),
        rule("evt.type = openat").replace("rule: r", "rule: s")
    );
    let r = mamori_rules::load(
        &[mamori_rules::SourceFile::new("x", two)],
        mamori_rules::MatchMode::First,
        &common::event_types(),
    );
    let rs = r.ruleset.unwrap();
    assert_eq!(
        rs.matching(rs.type_id("openat").unwrap(), &Ev::new("openat")),
        ["r"]
    );
}

#[test]
fn output_formats() {
    let f = r#"
- rule: r
  desc: d
  condition: evt.type = openat
  output: "*file=%fd.name flags=%evt.arg.flags lower=%tolower(proc.name) n=%fd.num ok=%fd.connected again=%fd.num end %proc.name."
  priority: WARNING
"#;
    let rs = ruleset(&[f]);
    let ev = Ev::new("openat")
        .s(F::FdName, "/tmp/a b")
        .s(F::ProcName, "CAT")
        .i(F::FdNum, 4)
        .b(F::FdConnected, false)
        .arg(
            F::EvtArg,
            FieldArg::Key("flags".into()),
            Value::owned("O_RDONLY"),
        );
    let mut out = None;
    rs.evaluate(rs.type_id("openat").unwrap(), &ev, |_, o| out = Some(o));
    let out = out.unwrap();
    assert_eq!(
        out.message,
        "file=/tmp/a b flags=O_RDONLY lower=cat n=4 ok=false again=4 end CAT."
    );
    // A field named twice is in the text twice, in the fields once.
    let names: Vec<&str> = out.fields.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "fd.name",
            "evt.arg.flags",
            "tolower(proc.name)",
            "fd.num",
            "fd.connected",
            "proc.name"
        ]
    );
    assert_eq!(out.fields[3].1, OutputValue::Int(4));
    assert_eq!(out.fields[4].1, OutputValue::Bool(false));
}

#[test]
fn the_paths_rules_compare_whole_are_listed_for_identity_watching() {
    let rs = ruleset(&[r#"
- list: secrets
  items: [/etc/shadow, /etc/gshadow, shadow]
- rule: r1
  desc: d
  condition: evt.type = openat and (fd.name in (secrets) or fd.name = /etc/sudoers)
  output: o
  priority: info
- rule: r2
  desc: d
  condition: evt.type = openat and fd.name startswith /root and fd.name != /etc/passwd and toupper(fd.name) = /ETC/X
  output: o
  priority: info
- rule: r3
  desc: d
  condition: evt.type = openat and fd.name = /etc/disabled
  output: o
  priority: info
  enabled: false
"#]);
    let got: Vec<String> = rs
        .compared_paths(F::FdName)
        .into_iter()
        .map(|p| String::from_utf8(p).unwrap())
        .collect();
    assert_eq!(got, ["/etc/gshadow", "/etc/shadow", "/etc/sudoers"]);
}

/// The syscalls whose failed calls some rule may match: a rule that tests
/// the result for success on every branch does not count (exceptions
/// beside it change nothing); one that does on a branch only, or tests
/// another error, does; `fd.num` is the result only on an open.
#[test]
fn failures_read_are_the_types_a_failed_call_can_match() {
    let rs = ruleset(&[r#"
- rule: unlink succeeded
  desc: d
  condition: evt.type = unlinkat and evt.rawres = 0 and fd.name startswith /etc
  output: o
  priority: WARNING
- rule: rename succeeded, with an exception
  desc: d
  condition: evt.type = renameat2 and evt.res = SUCCESS and not fd.name startswith /tmp
  output: o
  priority: WARNING
- rule: mkdir in either case
  desc: d
  condition: evt.type = mkdirat and (evt.rawres >= 0 or evt.res = EEXIST)
  output: o
  priority: WARNING
- rule: link on an fd
  desc: d
  condition: evt.type = linkat and fd.num >= 0
  output: o
  priority: WARNING
- rule: open succeeded
  desc: d
  condition: evt.type = openat and fd.num >= 0 and fd.name = /etc/shadow
  output: o
  priority: WARNING
"#]);
    let read: Vec<&str> = rs.failures_read().iter().copied().collect();
    assert_eq!(read, ["linkat", "mkdirat"]);
}

#[test]
fn rules_that_use_fields_mamori_never_fills_are_reported() {
    let r = load_strs(&[r#"
- rule: by cpu
  desc: d
  condition: evt.type = openat and evt.cpu = 1 and not proc.name = x
  output: "on %evt.cpu"
  priority: info
- rule: shown only
  desc: d
  condition: evt.type = connect
  output: "to %thread.cap_inheritable (%fd.sip)"
  priority: info
- rule: disabled
  desc: d
  condition: evt.type = recvfrom and proc.fdopencount > 100
  output: "o"
  priority: info
  enabled: false
- rule: all filled
  desc: d
  condition: evt.type = openat and k8s.pod.name = x
  output: "%proc.name"
  priority: info
"#]);
    assert!(errors(&r).is_empty(), "{:?}", errors(&r));
    let w = warnings(&r);
    let about = |field: &str| w.iter().filter(|m| m.contains(field)).collect::<Vec<_>>();
    // One warning per rule and field, at the rule, saying what follows.
    assert_eq!(about("evt.cpu").len(), 1, "{w:?}");
    assert!(about("evt.cpu")[0].starts_with("f0.yaml:2:3: "), "{w:?}");
    assert!(about("evt.cpu")[0].contains("never holds"), "{w:?}");
    assert!(about("thread.cap_inheritable")[0].contains("<NA>"), "{w:?}");
    // A disabled rule is listed, not warned of; partly filled fields are
    // not warned of.
    assert!(about("proc.fdopencount").is_empty(), "{w:?}");
    assert!(about("k8s.pod.name").is_empty(), "{w:?}");
    let listed: Vec<(&str, &str, bool, bool)> = r
        .unfilled
        .iter()
        .map(|u| (u.rule.as_str(), u.field, u.enabled, u.in_condition))
        .collect();
    assert_eq!(
        listed,
        [
            ("by cpu", "evt.cpu", true, true),
            ("shown only", "thread.cap_inheritable", true, false),
            ("disabled", "proc.fdopencount", false, true),
        ]
    );
}
