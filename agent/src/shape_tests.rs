//! The pipeline's shape, checked: data flows one way, capture → state →
//! detect → outputs, and each module imports only what is upstream of it.
//! `app` (the live pipeline, replay, rules tests, reload) is the only
//! module that knows every stage; `commands` and `cli` sit beside it as
//! the command line. `config` and `telemetry` are leaves that stages read
//! and register with.
//!
//! The test reads every source file of the crate (tests included) and
//! fails on a `crate::` path that reaches a module the table does not
//! allow, or on a module missing from the table (a new module must be
//! placed). See ARCHITECTURE.md.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

/// Each top-level module and the modules it may import.
const ALLOWED: &[(&str, &[&str])] = &[
    // Leaves.
    ("time", &[]),
    ("config", &[]),
    ("telemetry", &[]),
    // The event model and what is derived from events alone.
    ("event", &["time"]),
    ("alert", &["event"]),
    ("rules_files", &["event"]),
    ("rules_configmap", &["rules_files", "telemetry"]),
    // The stages, in the order data flows.
    ("capture", &["event", "telemetry", "time"]),
    ("state", &["event", "telemetry", "time"]),
    ("record", &["event", "state", "time"]),
    ("detect", &["alert", "event", "state", "telemetry", "time"]),
    (
        "outputs",
        &["alert", "config", "event", "telemetry", "time"],
    ),
    // Wiring and the command line.
    (
        "app",
        &[
            "alert",
            "capture",
            "config",
            "detect",
            "event",
            "outputs",
            "record",
            "rules_configmap",
            "rules_files",
            "state",
            "telemetry",
            "time",
        ],
    ),
    ("cli", &["config"]),
    (
        "commands",
        &[
            "app",
            "cli",
            "config",
            "event",
            "outputs",
            "rules_files",
            "telemetry",
        ],
    ),
];

/// The top-level modules `text` names through `crate::` paths, including
/// each item of a `crate::{a, b::c}` group. Comments are skipped.
fn imports(text: &str) -> BTreeSet<String> {
    let code: Vec<&str> = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect();
    let code = code.join("\n");
    let mut out = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if rest.starts_with('{') {
            out.extend(group_items(rest).iter().filter_map(|item| head(item)));
        } else {
            out.extend(head(rest));
        }
    }
    out
}

/// The leading identifier of `s`.
fn head(s: &str) -> Option<String> {
    let name: String = s
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// The top-level items of the `{...}` group that starts `s`.
fn group_items(s: &str) -> Vec<&str> {
    let mut depth = 0;
    let mut items = Vec::new();
    let mut start = 1;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    items.push(&s[start..i]);
                    break;
                }
            }
            ',' if depth == 1 => {
                items.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items
}

/// Every `.rs` file under `dir`, with the top-level module it belongs to.
fn sources(dir: &Path, top: Option<&str>, out: &mut Vec<(String, std::path::PathBuf)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let module = top.map_or_else(
            || name.strip_suffix("_tests").unwrap_or(&name).to_owned(),
            str::to_owned,
        );
        if path.is_dir() {
            sources(&path, Some(&module), out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push((module, path));
        }
    }
}

#[test]
fn modules_import_only_what_is_upstream() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        None,
        &mut files,
    );
    let mut wrong = Vec::new();
    let mut edges = 0;
    for (module, path) in &files {
        // The crate roots declare modules; they import none.
        if matches!(module.as_str(), "lib" | "main" | "shape") {
            continue;
        }
        let Some(may) = allowed.get(module.as_str()) else {
            wrong.push(format!(
                "{}: module `{module}` is not in the table of allowed imports (shape_tests.rs)",
                path.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(path).unwrap();
        for dep in imports(&text) {
            if dep == *module {
                continue;
            }
            edges += 1;
            if !may.contains(&dep.as_str()) {
                wrong.push(format!(
                    "{}: `{module}` imports `crate::{dep}`, which is not upstream of it",
                    path.display()
                ));
            }
        }
    }
    assert!(
        files.len() > 50 && edges > 30,
        "the scan found too little to judge ({} files, {edges} edges)",
        files.len()
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_scan_sees_every_import_form() {
    let text = "use crate::{\n    alert::Alert,\n    state::{State, fds::Fds},\n    time,\n};\n\
                // crate::commented\n\
                let x = crate::capture::metrics::renderer(h);\n\
                use crate::event::Event; // crate::also_commented\n";
    let got: Vec<String> = imports(text).into_iter().collect();
    assert_eq!(got, ["alert", "capture", "event", "state", "time"]);
}

#[test]
fn every_module_of_the_crate_is_in_the_table() {
    let lib = include_str!("lib.rs");
    for line in lib.lines() {
        if let Some(m) = line
            .strip_prefix("pub mod ")
            .and_then(|m| m.strip_suffix(';'))
        {
            assert!(
                ALLOWED.iter().any(|(name, _)| *name == m),
                "module `{m}` (lib.rs) is not in the table"
            );
        }
    }
}
