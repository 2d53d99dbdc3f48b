//! What the on-call output tests (Alertmanager, Falco's http_output)
//! share: rules on the test's own files and an agent with one output
//! section.

use std::{fs, path::Path};

use crate::agent::Agent;

/// Two rules on files in `dir` opened by the actor: `page-*` (Critical)
/// and `note-*` (Notice); the rules file's path.
pub fn rules(dir: &Path) -> String {
    let d = dir.display();
    let path = dir.join("rules.yaml");
    let cond = |prefix: &str| {
        format!(
            "evt.type in (open, openat, openat2) and proc.name = mamori-actor and fd.name startswith \"{d}/{prefix}-\""
        )
    };
    fs::write(
        &path,
        format!(
            "- rule: Test page\n  desc: the output test opened a page file\n  \
             condition: {}\n  \
             output: page file %fd.name opened by %proc.name (proc.pid=%proc.pid)\n  \
             priority: CRITICAL\n  tags: [filesystem, T1552.001, mitre_credential_access]\n\
             - rule: Test note\n  desc: the output test opened a note file\n  \
             condition: {}\n  \
             output: note file %fd.name opened by %proc.name (proc.pid=%proc.pid)\n  \
             priority: NOTICE\n  tags: [filesystem]\n",
            cond("page"),
            cond("note")
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

/// The agent on [`rules`] with `outputs.<output>` set to `section` (YAML
/// lines under it) and `-o` options.
pub fn agent(dir: &Path, output: &str, section: &str, options: &[String]) -> Agent {
    let cfg = dir.join("mamori.yaml");
    fs::write(&cfg, format!("outputs:\n  {output}:\n{section}")).unwrap();
    let rules = rules(dir);
    let mut args = vec!["-c", cfg.to_str().unwrap(), "-r", &rules];
    for o in options {
        args.extend(["-o", o]);
    }
    Agent::start_logged(&args)
}

/// A file of the test, created; its path.
pub fn touch(dir: &Path, name: &str) -> String {
    let p = dir.join(name);
    fs::write(&p, "x").unwrap();
    p.to_str().unwrap().to_owned()
}

/// `mamori_output_alerts_total{output, status}`, 0 when absent.
pub fn output_count(agent: &Agent, output: &str, status: &str) -> f64 {
    agent
        .metric(&format!(
            "mamori_output_alerts_total{{output=\"{output}\",status=\"{status}\"}}"
        ))
        .unwrap_or(0.0)
}
