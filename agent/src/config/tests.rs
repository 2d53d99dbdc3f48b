//! The configuration file's parsing and validation, key by key.

use super::*;
use std::path::Path;

#[test]
fn parses_every_key() {
    let f = parse(
        "rules: [/etc/mamori/rules]\nhealth_addr: 127.0.0.1:8765\nlog_level: debug\n\
         log_format: json\nrule_matching: all\n\
         outputs:\n  stdout: {format: text}\n  file: {path: /var/log/mamori.json}\n\
         capture: {ring_mib: 16, env_bytes: 0}\n\
         containers: {cri_sockets: [/run/k3s/containerd/containerd.sock]}\n",
        Path::new("m.yaml"),
    )
    .unwrap();
    assert_eq!(f.rules, vec![PathBuf::from("/etc/mamori/rules")]);
    assert_eq!(f.health_addr, Some("127.0.0.1:8765".parse().unwrap()));
    assert_eq!(f.log_format, Some(FormatName::Json));
    assert_eq!(f.rule_matching, Some(RuleMatching::All));
    assert_eq!(f.outputs.stdout.unwrap().format, Some(FormatName::Text));
    assert_eq!(f.capture.ring_mib, Some(16));
    assert_eq!(
        f.containers.cri_sockets,
        vec![PathBuf::from("/run/k3s/containerd/containerd.sock")]
    );
}

#[test]
fn append_output_entries_read_as_falco_writes_them() {
    let f = load_with(
        None,
        &[
            "append_output=[{match: {source: syscall, tags: [T1059]}, extra_output: 'pid=%proc.pid', extra_fields: [proc.ppid, {team: '%proc.env[TEAM]'}]}]".into(),
        ],
    )
    .unwrap();
    let e = f.append_output[0].to_rules();
    assert_eq!(e.source.as_deref(), Some("syscall"));
    assert_eq!(e.tags, ["T1059"]);
    assert_eq!(e.extra_output.as_deref(), Some("pid=%proc.pid"));
    assert_eq!(
        e.extra_fields,
        [
            mamori_rules::ExtraField::Field("proc.ppid".into()),
            mamori_rules::ExtraField::Named {
                name: "team".into(),
                format: "%proc.env[TEAM]".into()
            }
        ]
    );
    let e = parse(
        "append_output:\n  - extra_fields: [{a: x, b: y}]\n",
        Path::new("m.yaml"),
    )
    .unwrap_err();
    assert!(e.to_string().contains("append_output.extra_fields"), "{e}");
    let e = parse(
        "append_output:\n  - match: {rules: x}\n",
        Path::new("m.yaml"),
    )
    .unwrap_err();
    assert!(e.to_string().contains("rules"), "{e}");
}

#[test]
fn unknown_keys_and_bad_values_name_the_key() {
    let e = parse("outputs:\n  stdot: {}\n", Path::new("m.yaml")).unwrap_err();
    assert!(e.to_string().contains("stdot"), "{e}");
    let e = parse("capture: {ring_mib: 3}\n", Path::new("m.yaml")).unwrap_err();
    assert!(e.to_string().contains("capture.ring_mib"), "{e}");
    let e = parse("containers: {cri_socket: /x}\n", Path::new("m.yaml")).unwrap_err();
    assert!(e.to_string().contains("cri_socket"), "{e}");
    let e = parse("rule_matching: most\n", Path::new("m.yaml")).unwrap_err();
    assert!(e.to_string().contains("rule_matching"), "{e}");
    assert!(e.to_string().contains("all"), "{e}");
    let e = parse("health_addr: nowhere\n", Path::new("m.yaml")).unwrap_err();
    assert!(e.to_string().contains("m.yaml"), "{e}");
}

#[test]
fn overrides_set_nested_keys_and_are_checked_like_the_file() {
    let dir = std::env::temp_dir().join(format!("mamori-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.yaml");
    std::fs::write(
        &path,
        "capture: {ring_mib: 16}\noutputs:\n  stdout: {format: text}\n",
    )
    .unwrap();
    let f = load_with(
        Some(&path),
        &[
            "outputs.stdout.format=json".into(),
            "capture.env_bytes=0".into(),
            "rules=[/a, /b]".into(),
            "outputs.elasticsearch.url=http://es:9200".into(),
        ],
    )
    .unwrap();
    assert_eq!(f.outputs.stdout.unwrap().format, Some(FormatName::Json));
    assert_eq!(f.capture.ring_mib, Some(16), "the file's other keys stay");
    assert_eq!(f.capture.env_bytes, Some(0));
    assert_eq!(f.rules, vec![PathBuf::from("/a"), PathBuf::from("/b")]);
    assert!(f.outputs.elasticsearch.is_some());

    let e = load_with(Some(&path), &["capture.ring_mib=3".into()]).unwrap_err();
    assert!(e.to_string().contains("capture.ring_mib"), "{e}");
    let e = load_with(None, &["capture.rng_mib=4".into()]).unwrap_err();
    assert!(e.to_string().contains("rng_mib"), "{e}");
    let e = load_with(None, &["capture".into()]).unwrap_err();
    assert!(e.to_string().contains("KEY=VALUE"), "{e}");
    let e = load_with(None, &["log_level=info".into(), "log_level.x=1".into()]).unwrap_err();
    assert!(
        e.to_string().contains("`log_level` is not a section"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rules_configmap_must_name_a_rules_directory() {
    let f = parse(
        "rules: [/etc/mamori/rules.d]\n\
         rules_configmap: {name: mamori-rules, directory: /etc/mamori/rules.d/}\n",
        Path::new("m.yaml"),
    )
    .unwrap();
    let cm = f.rules_configmap.unwrap();
    assert_eq!((cm.name.as_str(), cm.namespace), ("mamori-rules", None));
    let e = parse(
        "rules: [/etc/mamori/rules.d]\n\
         rules_configmap: {name: mamori-rules, directory: /etc/mamori/other}\n",
        Path::new("m.yaml"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("rules_configmap.directory") && e.contains("/etc/mamori/other"),
        "{e}"
    );
    let e = parse(
        "rules: [/r]\nrules_configmap: {directory: /r}\n",
        Path::new("m.yaml"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("name"), "{e}");
}
