//! Reading rules files: paths given on the command line or in the config
//! (files, or directories whose `*.yaml`/`*.yml` files load sorted by
//! name), or the default rules built into the binary.

use std::path::{Path, PathBuf};

use mamori_rules::{MatchMode, RuleSet, Severity, SourceFile};
use tracing::{info, warn};

/// The default ruleset, written by this project (`rules/` in the source tree).
pub const DEFAULT_RULES: &[(&str, &str)] = &[(
    "mamori_rules.yaml",
    include_str!("../../rules/mamori_rules.yaml"),
)];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read rules {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("rules {path}: not valid UTF-8")]
    NotUtf8 { path: PathBuf },
}

/// Rules files that stand in for those of one directory: the rules
/// ConfigMap as the Kubernetes API reports it, which the kubelet copies
/// into the mounted directory only on its next sync of the pod (up to a
/// minute and a half later). Named as the mounted files would be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overlay {
    pub dir: PathBuf,
    /// Key and text; only `*.yaml`/`*.yml` keys are loaded, by name.
    pub files: Vec<(String, String)>,
}

impl Overlay {
    fn sources(&self) -> Vec<SourceFile> {
        let mut files: Vec<&(String, String)> = self
            .files
            .iter()
            .filter(|(k, _)| k.ends_with(".yaml") || k.ends_with(".yml"))
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|(k, t)| SourceFile::new(self.dir.join(k).display().to_string(), t.clone()))
            .collect()
    }
}

/// The files to load, in order. No paths means the built-in defaults.
pub fn read(paths: &[PathBuf]) -> Result<Vec<SourceFile>, Error> {
    read_with(paths, None)
}

/// [`read`], with `overlay` standing in for its directory.
pub fn read_with(paths: &[PathBuf], overlay: Option<&Overlay>) -> Result<Vec<SourceFile>, Error> {
    if paths.is_empty() {
        return Ok(DEFAULT_RULES
            .iter()
            .map(|(n, t)| SourceFile::new(format!("<built-in>/{n}"), *t))
            .collect());
    }
    let mut out = Vec::new();
    for p in paths {
        if let Some(o) = overlay.filter(|o| o.dir == *p) {
            out.extend(o.sources());
            continue;
        }
        for file in expand(p)? {
            let bytes = std::fs::read(&file).map_err(|source| Error::Read {
                path: file.clone(),
                source,
            })?;
            let text =
                String::from_utf8(bytes).map_err(|_| Error::NotUtf8 { path: file.clone() })?;
            out.push(SourceFile::new(file.display().to_string(), text));
        }
    }
    Ok(out)
}

/// What identifies the current contents of `paths` cheaply: each file's
/// path, size, modification time and inode (a ConfigMap update swaps the
/// files behind a symlink, which changes the inode). Unreadable paths
/// count as absent.
pub fn fingerprint(paths: &[PathBuf]) -> Vec<(PathBuf, u64, i64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    for p in paths {
        for file in expand(p).unwrap_or_default() {
            if let Ok(m) = std::fs::metadata(&file) {
                out.push((
                    file,
                    m.len(),
                    m.mtime_nsec() + m.mtime() * 1_000_000_000,
                    m.ino(),
                ));
            }
        }
    }
    out
}

/// A file, or a directory's YAML files sorted by name.
fn expand(p: &Path) -> Result<Vec<PathBuf>, Error> {
    let err = |source| Error::Read {
        path: p.to_owned(),
        source,
    };
    let meta = std::fs::metadata(p).map_err(err)?;
    if !meta.is_dir() {
        return Ok(vec![p.to_owned()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(p)
        .map_err(err)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|f| {
            f.is_file() && matches!(f.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
        })
        .collect();
    files.sort();
    Ok(files)
}
/// The name [`agent_lists`] loads under.
const AGENT_LISTS: &str = "<agent>/mamori_agent_lists.yaml";

/// The lists the default rules name the running agent's own files by, as
/// a rules source loaded after the others (it replaces the empty
/// definitions the default rules carry): `mamori_agent_files` (its
/// executable, configuration and rules files, resolved), `mamori_agent_dirs`
/// (rules directories) and `mamori_agent_memory_files` (its
/// `/proc/PID/mem`). Named in the rules, they reach the kernel's open
/// prefilter, which then sends opens of these files without opening
/// itself to every write.
pub fn agent_lists(files: Vec<Vec<u8>>, dirs: Vec<Vec<u8>>) -> SourceFile {
    let pid = std::process::id();
    // Not `environ`: `ps aux` reads every process's.
    let memory = [format!("/proc/{pid}/mem")];
    let quoted = |items: Vec<String>| -> String {
        let q: Vec<String> = items
            .into_iter()
            .map(|s| serde_json::Value::from(s).to_string())
            .collect();
        format!("[{}]", q.join(", "))
    };
    let text = |v: Vec<Vec<u8>>| -> Vec<String> {
        v.into_iter()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .collect()
    };
    SourceFile::new(
        AGENT_LISTS,
        format!(
            "- list: mamori_agent_files\n  items: {}\n\n- list: mamori_agent_dirs\n  items: {}\n\n- list: mamori_agent_memory_files\n  items: {}\n",
            quoted(text(files)),
            quoted(text(dirs)),
            quoted(memory.to_vec()),
        ),
    )
}

/// Loads the rules (the built-in defaults when no paths are given). Errors
/// stop the start with every diagnostic; warnings are logged.
pub fn load(paths: &[PathBuf]) -> anyhow::Result<RuleSet> {
    load_with(paths, None, &LoadOptions::default()).map(|(rules, _)| rules)
}

/// What identifies a set of rules files by their contents, in order (the
/// agent's own lists, which name its pid, left out): equal on every node
/// that loaded the same rules. 16 hex digits of SHA-256.
pub fn digest(files: &[SourceFile]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for f in files.iter().filter(|f| f.name != AGENT_LISTS) {
        h.update((f.text.len() as u64).to_le_bytes());
        h.update(f.text.as_bytes());
    }
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// How the agent's configuration shapes a load.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// `rule_matching`.
    pub mode: MatchMode,
    /// `append_output`, applied in order after the rules compile.
    pub append_output: Vec<mamori_rules::AppendOutput>,
}

/// [`load`], with `last` (the agent's own lists) loaded after the files
/// and the configuration's `options`; also returns the files' [`digest`].
pub fn load_with(
    paths: &[PathBuf],
    last: Option<&SourceFile>,
    options: &LoadOptions,
) -> anyhow::Result<(RuleSet, String)> {
    compile(read(paths)?, last, options)
}

/// Compiles `files` read by [`read_with`], then `last`; see [`load_with`].
pub fn compile(
    files: Vec<SourceFile>,
    last: Option<&SourceFile>,
    options: &LoadOptions,
) -> anyhow::Result<(RuleSet, String)> {
    let mode = options.mode;
    let files: Vec<SourceFile> = files.into_iter().chain(last.cloned()).collect();
    let digest = digest(&files);
    let result = mamori_rules::load(&files, mode, &crate::event::TYPE_NAMES);
    for d in &result.diagnostics {
        // Rules that do not name the agent's own lists are not wrong.
        if d.severity == Severity::Warning && d.file != AGENT_LISTS {
            warn!("{d}");
        }
    }
    let errors: Vec<String> = result
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(ToString::to_string)
        .collect();
    let Some(mut rules) = result.ruleset else {
        anyhow::bail!("the rules do not load:\n{}", errors.join("\n"));
    };
    for w in rules
        .append_output(&options.append_output)
        .map_err(anyhow::Error::msg)?
    {
        warn!("{w}");
    }
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    info!(
        files = ?names,
        rules = result.stats.rules,
        enabled = result.stats.enabled_rules,
        indexed = rules.indexed(),
        digest,
        rule_matching = ?mode,
        "rules loaded"
    );
    Ok((rules, digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_overlay_stands_in_for_its_directory_with_the_names_of_its_files() {
        let dir = std::env::temp_dir().join(format!("mamori-overlay-{}", std::process::id()));
        let mounted = dir.join("rules.d");
        std::fs::create_dir_all(&mounted).unwrap();
        std::fs::write(dir.join("first.yaml"), "[]\n").unwrap();
        std::fs::write(
            mounted.join("local_rules.yaml"),
            "# the kubelet's older copy\n",
        )
        .unwrap();
        let overlay = Overlay {
            dir: mounted.clone(),
            files: vec![
                ("z.yml".into(), "- list: z\n  items: []\n".into()),
                ("README".into(), "not rules".into()),
                ("local_rules.yaml".into(), "- list: l\n  items: []\n".into()),
            ],
        };
        let paths = [dir.join("first.yaml"), mounted.clone()];
        let files = read_with(&paths, Some(&overlay)).unwrap();
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        let expect = [
            dir.join("first.yaml"),
            mounted.join("local_rules.yaml"),
            mounted.join("z.yml"),
        ];
        let expect: Vec<String> = expect.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(names, expect);
        assert_eq!(
            files[1].text, "- list: l\n  items: []\n",
            "the API's text, not the disk's"
        );
        // Without it, the directory's files.
        let files = read_with(&paths, None).unwrap();
        assert_eq!(files[1].text, "# the kubelet's older copy\n");
        assert_ne!(
            digest(&read_with(&paths, Some(&overlay)).unwrap()),
            digest(&files)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
