//! The commands that do not run the agent: `rules validate`, `fields`,
//! `es setup`.

use std::path::PathBuf;

use mamori_rules::{MatchMode, Severity, fields::FIELDS};
use serde_json::json;

use crate::rules_files;

/// `mamori rules validate`: prints diagnostics and a summary (or one JSON
/// document) and returns whether the rules are valid.
pub fn validate(paths: &[PathBuf], as_json: bool) -> anyhow::Result<bool> {
    let files = rules_files::read(paths)?;
    let r = mamori_rules::load(&files, MatchMode::First);
    let (errors, warnings): (Vec<_>, Vec<_>) = r
        .diagnostics
        .iter()
        .partition(|d| d.severity == Severity::Error);
    if as_json {
        let doc = json!({
            "files": files.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
            "rules": r.stats.rules,
            "enabled_rules": r.stats.enabled_rules,
            "macros": r.stats.macros,
            "lists": r.stats.lists,
            "errors": errors,
            "warnings": warnings,
        });
        println!("{doc}");
    } else {
        for d in errors.iter().chain(&warnings) {
            eprintln!("{d}");
        }
        println!(
            "{} file(s): {} rules ({} enabled), {} macros, {} lists; {} error(s), {} warning(s)",
            files.len(),
            r.stats.rules,
            r.stats.enabled_rules,
            r.stats.macros,
            r.stats.lists,
            errors.len(),
            warnings.len()
        );
    }
    Ok(errors.is_empty())
}

/// `mamori fields`: the field table.
pub fn fields(as_json: bool) {
    use std::io::Write;
    // A closed pipe (`mamori fields | head`) ends the listing quietly.
    let mut out = std::io::stdout().lock();
    if as_json {
        let _ = writeln!(out, "{}", serde_json::to_string(FIELDS).unwrap_or_default());
        return;
    }
    let width = FIELDS.iter().map(|f| f.name.len()).max().unwrap_or(0);
    for f in FIELDS {
        let ty = serde_json::to_value(f.ty)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let arg = match f.arg {
            mamori_rules::fields::ArgKind::None => "",
            mamori_rules::fields::ArgKind::OptionalIndex => "[N]",
            mamori_rules::fields::ArgKind::Key => "[key]",
            mamori_rules::fields::ArgKind::OptionalKey => "[key]?",
            mamori_rules::fields::ArgKind::EventArg => ".name|[N]",
        };
        if writeln!(out, "{:width$} {:5} {:9} {}", f.name, ty, arg, f.desc).is_err() {
            return;
        }
    }
}

/// `mamori es setup`: installs the templates for the configured target.
pub async fn es_setup(
    settings: &crate::outputs::elasticsearch::Settings,
) -> anyhow::Result<crate::outputs::elasticsearch::setup::Report> {
    use crate::outputs::elasticsearch::{client::Client, setup};
    let client = Client::new(&settings.connection)?;
    Ok(setup::install(&client, &settings.target).await?)
}

/// Prints what a `run` with these settings would do, after loading its
/// rules; `Ok(false)` when the rules do not load (their errors printed).
pub fn config_check(s: &crate::app::RunSettings, as_json: bool) -> anyhow::Result<bool> {
    let outputs: Vec<String> = s
        .sinks
        .iter()
        .map(|k| match k {
            crate::outputs::Sink::Stdout(f) => format!("stdout ({f:?})"),
            crate::outputs::Sink::File { path, .. } => format!("file {}", path.display()),
        })
        .chain(s.elasticsearch.as_ref().map(|es| {
            format!(
                "elasticsearch {} (spool {})",
                es.connection.url,
                es.spool_dir.display()
            )
        }))
        .collect();
    let rules: Vec<String> = if s.rules.is_empty() {
        vec!["(built-in)".into()]
    } else {
        s.rules.iter().map(|p| p.display().to_string()).collect()
    };
    if as_json {
        println!(
            "{}",
            json!({
                "rules": rules,
                "outputs": outputs,
                "health_addr": s.health_addr.map(|a| a.to_string()),
                "ring_mib": s.capture.ring_bytes >> 20,
                "cri_sockets": s.cri_sockets,
            })
        );
    } else {
        println!("rules: {}", rules.join(", "));
        println!("outputs: {}", outputs.join(", "));
        if let Some(a) = s.health_addr {
            println!("health: http://{a}/healthz");
        }
        println!("ring buffer: {} MiB", s.capture.ring_bytes >> 20);
    }
    validate(&s.rules, as_json)
}
