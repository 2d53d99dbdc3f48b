//! The commands that do not run the agent: `rules validate`, `fields`,
//! `config check`, `es setup`.

use std::path::PathBuf;

use mamori_rules::{MatchMode, Severity, fields::FIELDS};
use serde_json::json;

use crate::rules_files;

/// `mamori rules validate`: prints diagnostics and a summary (or one JSON
/// document) and returns whether the rules are valid.
pub fn validate(paths: &[PathBuf], as_json: bool) -> anyhow::Result<bool> {
    let report = RulesReport::load(paths)?;
    if as_json {
        println!("{}", report.json);
    } else {
        report.print();
    }
    Ok(report.ok)
}

/// What loading a set of rules files said.
struct RulesReport {
    json: serde_json::Value,
    /// Diagnostics (errors first), for people.
    diagnostics: Vec<String>,
    summary: String,
    ok: bool,
}

impl RulesReport {
    fn load(paths: &[PathBuf]) -> anyhow::Result<Self> {
        let files = rules_files::read(paths)?;
        let r = mamori_rules::load(&files, MatchMode::First);
        let (errors, warnings): (Vec<_>, Vec<_>) = r
            .diagnostics
            .iter()
            .partition(|d| d.severity == Severity::Error);
        let json = json!({
            "files": files.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
            "rules": r.stats.rules,
            "enabled_rules": r.stats.enabled_rules,
            "macros": r.stats.macros,
            "lists": r.stats.lists,
            "errors": errors,
            "warnings": warnings,
        });
        let summary = format!(
            "{} file(s): {} rules ({} enabled), {} macros, {} lists; {} error(s), {} warning(s)",
            files.len(),
            r.stats.rules,
            r.stats.enabled_rules,
            r.stats.macros,
            r.stats.lists,
            errors.len(),
            warnings.len()
        );
        Ok(Self {
            json,
            diagnostics: errors
                .iter()
                .chain(&warnings)
                .map(ToString::to_string)
                .collect(),
            summary,
            ok: errors.is_empty(),
        })
    }

    fn print(&self) {
        for d in &self.diagnostics {
            eprintln!("{d}");
        }
        println!("{}", self.summary);
    }
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
    let report = RulesReport::load(&s.rules)?;
    if as_json {
        println!(
            "{}",
            json!({
                "config": {
                    "rules": rules,
                    "outputs": outputs,
                    "health_addr": s.health_addr.map(|a| a.to_string()),
                    "ring_mib": s.capture.ring_bytes >> 20,
                    "cri_sockets": s.cri_sockets,
                },
                "rules": report.json,
            })
        );
    } else {
        println!("rules: {}", rules.join(", "));
        println!("outputs: {}", outputs.join(", "));
        if let Some(a) = s.health_addr {
            println!("health: http://{a}/healthz");
        }
        println!("ring buffer: {} MiB", s.capture.ring_bytes >> 20);
        report.print();
    }
    Ok(report.ok)
}
