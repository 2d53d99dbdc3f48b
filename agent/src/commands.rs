//! The commands that do not run the agent: `rules validate`, `fields`,
//! `config check`, `es setup`, `replay`, `rules test`, `rules explain`.

use std::path::PathBuf;

use mamori_rules::{MatchMode, Severity, fields::FIELDS, fill::Fill};
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
    /// Errors and warnings.
    counts: (usize, usize),
    ok: bool,
    /// The rules, when they load.
    ruleset: Option<mamori_rules::RuleSet>,
}

impl RulesReport {
    fn load(paths: &[PathBuf]) -> anyhow::Result<Self> {
        let files = rules_files::read(paths)?;
        let r = mamori_rules::load(&files, MatchMode::First, &crate::event::TYPE_NAMES);
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
            "unfilled_fields": r.unfilled,
        });
        let summary = format!(
            "{} file(s): {} rules ({} enabled), {} macros, {} lists",
            files.len(),
            r.stats.rules,
            r.stats.enabled_rules,
            r.stats.macros,
            r.stats.lists,
        );
        Ok(Self {
            json,
            diagnostics: errors
                .iter()
                .chain(&warnings)
                .map(ToString::to_string)
                .chain(unfilled_summary(&r.unfilled))
                .collect(),
            summary,
            counts: (errors.len(), warnings.len()),
            ok: errors.is_empty(),
            ruleset: r.ruleset,
        })
    }

    /// Checks `append_output` entries against the rules: a bad entry is an
    /// error, a field mamori never fills a warning.
    fn append_output(&mut self, entries: &[mamori_rules::AppendOutput]) {
        let Some(rules) = &mut self.ruleset else {
            return;
        };
        let (errors, warnings) = match rules.append_output(entries) {
            Ok(w) => (Vec::new(), w),
            Err(e) => (vec![e], Vec::new()),
        };
        self.ok &= errors.is_empty();
        self.counts.0 += errors.len();
        self.counts.1 += warnings.len();
        self.diagnostics
            .extend(errors.iter().chain(&warnings).cloned());
        for (key, list) in [("errors", errors), ("warnings", warnings)] {
            if let Some(a) = self.json[key].as_array_mut() {
                a.extend(list.into_iter().map(serde_json::Value::from));
            }
        }
    }

    fn print(&self) {
        for d in &self.diagnostics {
            eprintln!("{d}");
        }
        let (errors, warnings) = self.counts;
        println!("{}; {errors} error(s), {warnings} warning(s)", self.summary);
    }
}

/// The fields the rules use that mamori does not fill, one line each with
/// the reason and the rules (disabled ones marked), or a line saying none.
fn unfilled_summary(unfilled: &[mamori_rules::fill::Unfilled]) -> Vec<String> {
    let mut by_field = std::collections::BTreeMap::<&str, (&str, Vec<String>)>::new();
    for u in unfilled {
        let e = by_field.entry(u.field).or_insert((u.reason, Vec::new()));
        e.1.push(if u.enabled {
            format!("'{}'", u.rule)
        } else {
            format!("'{}' (disabled)", u.rule)
        });
    }
    if by_field.is_empty() {
        return vec!["every field these rules use is filled by mamori".into()];
    }
    std::iter::once("fields these rules use that mamori does not fill:".to_owned())
        .chain(by_field.into_iter().map(|(field, (reason, rules))| {
            format!("  {field}: {reason}; used by {}", rules.join(", "))
        }))
        .collect()
}

/// `mamori fields`: the field table.
pub fn fields(as_json: bool) {
    use std::io::Write;
    // A closed pipe (`mamori fields | head`) ends the listing quietly.
    let mut out = std::io::stdout().lock();
    if as_json {
        let rows: Vec<serde_json::Value> = FIELDS
            .iter()
            .map(|f| {
                let mut row = serde_json::to_value(f).unwrap_or_default();
                row["fill"] = serde_json::to_value(Fill::of(f.id)).unwrap_or_default();
                row
            })
            .collect();
        let _ = writeln!(out, "{}", serde_json::Value::Array(rows));
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
        let (fill, note) = match Fill::of(f.id) {
            Fill::Filled => ("yes", String::new()),
            Fill::Partial(when) => ("partial", format!(" [filled {when}]")),
            Fill::Never(why) => ("no", format!(" [not filled: {why}]")),
        };
        let line = format!(
            "{:width$} {:5} {:9} {fill:7} {}{note}",
            f.name, ty, arg, f.desc
        );
        if writeln!(out, "{line}").is_err() {
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
        .chain(s.alertmanager.as_ref().map(|(am, _)| {
            format!(
                "alertmanager {} (min priority {})",
                am.endpoint.url, am.min_priority
            )
        }))
        .chain(s.http.as_ref().map(|(h, _)| {
            format!(
                "http {} (min priority {}, {} per request)",
                h.endpoint.url, h.min_priority, h.batch_size
            )
        }))
        .collect();
    let rules: Vec<String> = if s.rules.is_empty() {
        vec!["(built-in)".into()]
    } else {
        s.rules.iter().map(|p| p.display().to_string()).collect()
    };
    let mut report = RulesReport::load(&s.rules)?;
    report.append_output(&s.rules_options.append_output);
    let matching = match s.rules_options.mode {
        MatchMode::First => "first",
        MatchMode::All => "all",
    };
    if as_json {
        println!(
            "{}",
            json!({
                "config": {
                    "rules": rules,
                    "rule_matching": matching,
                    "outputs": outputs,
                    "health_addr": s.health_addr.map(|a| a.to_string()),
                    "ring_mib": s.capture.ring_bytes >> 20,
                    "cri_sockets": s.cri_sockets,
                    "rules_configmap": s.rules_configmap.as_ref().map(|c| json!({
                        "name": c.name,
                        "namespace": c.namespace,
                        "directory": c.directory,
                    })),
                },
                "rules": report.json,
            })
        );
    } else {
        println!("rules: {} (rule matching: {matching})", rules.join(", "));
        if let Some(c) = &s.rules_configmap {
            println!(
                "rules ConfigMap: {}/{} through the Kubernetes API, in place of {}",
                c.namespace.as_deref().unwrap_or("(the pod's namespace)"),
                c.name,
                c.directory.display()
            );
        }
        println!("outputs: {}", outputs.join(", "));
        if let Some(a) = s.health_addr {
            println!("health: http://{a}/healthz");
        }
        println!("ring buffer: {} MiB", s.capture.ring_bytes >> 20);
        report.print();
    }
    Ok(report.ok)
}

/// `mamori replay`: alerts on stdout (Falco JSON with `--json`), a summary
/// on stderr.
pub fn replay(file: &std::path::Path, rules: &[PathBuf], as_json: bool) -> anyhow::Result<()> {
    use std::io::Write;
    let rules = std::sync::Arc::new(rules_files::load(rules)?);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut by_rule = std::collections::BTreeMap::<String, u64>::new();
    let summary = crate::app::replay::replay(file, rules, |a| {
        *by_rule.entry(a.rule.clone()).or_default() += 1;
        let line = if as_json {
            crate::outputs::format::falco_json(&a)
        } else {
            crate::outputs::format::text_line(&a)
        };
        let _ = writeln!(out, "{line}");
    })?;
    let span_s = summary.last_ns.saturating_sub(summary.first_ns) as f64 / 1e9;
    eprintln!(
        "replayed {} events from {} ({span_s:.1} s of activity): {} alert(s)",
        summary.events, summary.hostname, summary.alerts
    );
    for (rule, n) in &by_rule {
        eprintln!("  {n:>6}  {rule}");
    }
    if summary.cut_short {
        eprintln!(
            "note: the recording ends abruptly (the agent did not stop cleanly); replayed up to the cut"
        );
    }
    Ok(())
}

/// `mamori rules test`: runs each file's cases; prints PASS/FAIL with the
/// difference (or one JSON document); returns whether all passed.
pub fn rules_test(files: &[PathBuf], rules: &[PathBuf], as_json: bool) -> anyhow::Result<bool> {
    let rules = std::sync::Arc::new(rules_files::load(rules)?);
    let (mut passed, mut failed) = (0, 0);
    let mut cases = Vec::new();
    for file in files {
        let tests = crate::app::rulestest::load(file)?;
        for o in crate::app::rulestest::run(&tests, &rules) {
            let ok = o.problems.is_empty();
            if ok {
                passed += 1;
            } else {
                failed += 1;
            }
            if as_json {
                cases.push(json!({"file": file, "name": o.name, "ok": ok, "problems": o.problems}));
            } else if ok {
                println!("PASS  {}", o.name);
            } else {
                println!("FAIL  {} ({})", o.name, file.display());
                for p in &o.problems {
                    println!("      {p}");
                }
            }
        }
    }
    if as_json {
        println!(
            "{}",
            json!({"files": files, "passed": passed, "failed": failed, "cases": cases})
        );
    } else {
        println!("{passed} passed, {failed} failed");
    }
    Ok(failed == 0)
}

/// `mamori rules explain`: the rule's condition part by part, each marked
/// as holding or not for the chosen event.
pub fn explain(args: &crate::cli::ExplainArgs, as_json: bool) -> anyhow::Result<()> {
    let rules = std::sync::Arc::new(rules_files::load(&args.rules)?);
    let (what, explained) = if let Some(file) = &args.test {
        let tests = crate::app::rulestest::load(file)?;
        let case = match &args.case {
            Some(name) => tests.tests.iter().find(|c| &c.name == name),
            None => tests.tests.first(),
        }
        .ok_or_else(|| anyhow::anyhow!("{}: no such case", file.display()))?;
        let e = crate::app::rulestest::explain(case, &rules, &args.rule)?;
        (format!("case `{}`", case.name), e)
    } else {
        let (Some(file), Some(filter)) = (&args.recording, &args.filter) else {
            anyhow::bail!("give --test FILE or --recording FILE --filter CONDITION");
        };
        let select = selector(filter)?;
        let (mut seen, mut found, mut err) = (0, None, None);
        crate::app::replay::replay_with(file, rules, |detector, state, ev, i| {
            if found.is_some() || err.is_some() {
                return Ok(0);
            }
            let picked = detector.explain(state, ev, &args.rule, |view| {
                let hit = select
                    .type_id(ev.ty.name())
                    .is_some_and(|t| !select.matching(t, view).is_empty());
                if hit {
                    seen += 1;
                }
                hit && seen == args.event
            });
            match picked {
                Some(Ok(e)) => found = Some((i, ev.ty.name(), ev.task.tgid, e)),
                Some(Err(e)) => err = Some(e),
                None => {}
            }
            Ok(0)
        })?;
        if let Some(e) = err {
            anyhow::bail!(e);
        }
        let (i, ty, pid, e) = found
            .ok_or_else(|| anyhow::anyhow!("{}: no event matches the filter", file.display()))?;
        (format!("event {i} of the recording ({ty} by pid {pid})"), e)
    };
    if as_json {
        println!("{}", explained_json(&explained));
    } else {
        let verdict = if explained.held {
            "matches"
        } else {
            "does not match"
        };
        println!("{} {verdict} {what}", explained.text);
        for c in &explained.children {
            print_explained(c, 1);
        }
    }
    Ok(())
}

/// A one-rule ruleset whose rule is the `--filter` condition.
fn selector(condition: &str) -> anyhow::Result<mamori_rules::RuleSet> {
    let one_line = condition.replace(['\n', '\r'], " ");
    let yaml = format!(
        "- rule: selected\n  desc: the --filter condition\n  condition: {}\n  output: selected\n  priority: DEBUG\n",
        serde_json::Value::String(one_line)
    );
    let loaded = mamori_rules::load(
        &[mamori_rules::SourceFile::new("--filter", yaml)],
        MatchMode::First,
        &crate::event::TYPE_NAMES,
    );
    loaded.ruleset.ok_or_else(|| {
        let why: Vec<String> = loaded
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| d.message.clone())
            .collect();
        anyhow::anyhow!("--filter: {}", why.join("; "))
    })
}

fn print_explained(e: &mamori_rules::explain::Explained, depth: usize) {
    let mark = if e.held { "✓" } else { "✗" };
    let values = if e.values.is_empty() {
        String::new()
    } else {
        format!("    ({})", e.values.join(", "))
    };
    let text = crate::outputs::format::escape_controls(&e.text);
    let values = crate::outputs::format::escape_controls(&values);
    println!("{}{mark} {text}{values}", "  ".repeat(depth));
    for c in &e.children {
        print_explained(c, depth + 1);
    }
}

fn explained_json(e: &mamori_rules::explain::Explained) -> serde_json::Value {
    json!({
        "text": e.text,
        "held": e.held,
        "values": e.values,
        "children": e.children.iter().map(explained_json).collect::<Vec<_>>(),
    })
}
