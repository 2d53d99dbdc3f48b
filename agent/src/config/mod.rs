//! The configuration file (`-c mamori.yaml`): serde structs with
//! `deny_unknown_fields`, so a misspelt key is an error naming it, then
//! validated into typed settings. Command-line flags override the file.

use std::{net::SocketAddr, path::PathBuf};

use serde::Deserialize;

/// The file as written. Every key is optional; defaults are documented in
/// the README.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    /// Rules files or directories, loaded in order.
    #[serde(default)]
    pub rules: Vec<PathBuf>,
    /// Address for /healthz, /readyz and /metrics (off when absent).
    pub health_addr: Option<SocketAddr>,
    /// Log filter.
    pub log_level: Option<String>,
    /// Log lines as `text` (default) or `json`.
    pub log_format: Option<FormatName>,
    /// Falco's `rule_matching`: `first` (default) alerts the first rule
    /// that matches an event, `all` every one, in load order.
    pub rule_matching: Option<RuleMatching>,
    /// Falco's `append_output`: text and fields added to the outputs of
    /// the rules each entry matches.
    #[serde(default)]
    pub append_output: Vec<AppendOutput>,
    #[serde(default)]
    pub outputs: Outputs,
    #[serde(default)]
    pub capture: Capture,
    #[serde(default)]
    pub containers: Containers,
    #[serde(default)]
    pub state: StateLimits,
    #[serde(default)]
    pub storm_control: StormControl,
    /// Follow a rules ConfigMap through the Kubernetes API.
    pub rules_configmap: Option<RulesConfigMap>,
}

/// `rules_configmap`: the ConfigMap mounted at one of the `rules`
/// directories, read through the Kubernetes API as soon as it changes
/// (the kubelet updates the mounted files a minute or more later).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesConfigMap {
    pub name: String,
    /// Default: the namespace of the pod's service account.
    pub namespace: Option<String>,
    /// The `rules` entry the ConfigMap is mounted at.
    pub directory: PathBuf,
}

/// `storm_control`: a token bucket per rule in front of the outputs.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StormControl {
    /// Default true.
    pub enabled: Option<bool>,
    /// Alerts per second a rule may raise, sustained. Default 10.
    pub rate: Option<f64>,
    /// Alerts a rule may raise at once. Default 1000.
    pub burst: Option<u32>,
    /// Seconds between summaries of what was held back. Default 60.
    pub summary_interval_s: Option<u64>,
    /// Limits of named rules.
    #[serde(default)]
    pub rules: std::collections::BTreeMap<String, RuleLimit>,
}

/// `storm_control.rules.<rule>`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleLimit {
    /// false: this rule is never held back.
    pub enabled: Option<bool>,
    pub rate: Option<f64>,
    pub burst: Option<u32>,
}

/// An entry of `append_output`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppendOutput {
    #[serde(default, rename = "match")]
    pub matches: AppendMatch,
    pub extra_output: Option<String>,
    /// Field names, or one-key maps `name: format` (checked by
    /// [`validate`], so that a bad one names its key).
    #[serde(default)]
    pub extra_fields: Vec<serde_json::Value>,
}

/// `append_output[].match`: every condition given must hold.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppendMatch {
    pub rule: Option<String>,
    pub source: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

impl AppendOutput {
    /// The entry as the rule engine takes it.
    pub fn to_rules(&self) -> mamori_rules::AppendOutput {
        mamori_rules::AppendOutput {
            rule: self.matches.rule.clone(),
            source: self.matches.source.clone(),
            tags: self.matches.tags.clone(),
            extra_output: self.extra_output.clone(),
            extra_fields: self.extra_fields.iter().filter_map(extra_field).collect(),
        }
    }
}

/// A field name, or a map of one `name: format`.
fn extra_field(v: &serde_json::Value) -> Option<mamori_rules::ExtraField> {
    use mamori_rules::ExtraField;
    match v {
        serde_json::Value::String(name) => Some(ExtraField::Field(name.clone())),
        serde_json::Value::Object(map) if map.len() == 1 => {
            let (name, format) = map.iter().next()?;
            Some(ExtraField::Named {
                name: name.clone(),
                format: format.as_str()?.to_owned(),
            })
        }
        _ => None,
    }
}

/// Memory limits of the agent's tables.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateLimits {
    /// MiB all descriptor tables may hold together (default 64).
    pub fd_table_mib: Option<u32>,
}

/// `containers`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Containers {
    /// CRI sockets asked for pod metadata, in order.
    #[serde(default)]
    pub cri_sockets: Vec<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outputs {
    pub stdout: Option<StreamOutput>,
    pub file: Option<FileOutput>,
    pub elasticsearch: Option<ElasticsearchOutput>,
    pub alertmanager: Option<AlertmanagerOutput>,
    pub http: Option<HttpOutput>,
}

/// `outputs.http`: Falco's `http_output`, the alert JSON posted to a URL.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpOutput {
    /// Where to post (falcosidekick: `http://falcosidekick:2801/`); off
    /// when absent.
    pub url: Option<String>,
    /// Alerts less severe are not sent. Default `debug` (all, as Falco).
    pub min_priority: Option<String>,
    /// Sent with every request (`Authorization: Bearer ...`).
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    /// PEM CA bundle to trust; the host name is still verified.
    pub ca_file: Option<PathBuf>,
    /// Do not verify the server certificate (diagnosis only).
    #[serde(default)]
    pub tls_insecure: bool,
    /// Per request. Default 10.
    pub timeout_s: Option<u64>,
    /// Alerts per request: 1 (default) posts each alert as Falco does,
    /// more post a JSON array.
    pub batch_size: Option<usize>,
    /// Alerts waiting at most; more are dropped and counted. Default 10000.
    pub queue_size: Option<usize>,
    /// Raise `mamori internal: output down` after this long unreachable.
    /// Default 300.
    pub down_alert_s: Option<u64>,
}

/// `outputs.alertmanager`: alerts posted to Prometheus Alertmanager.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerOutput {
    /// `http://alertmanager:9093` (the API path is added); off when absent.
    pub url: Option<String>,
    /// Alerts less severe are not sent. Default `warning`.
    pub min_priority: Option<String>,
    /// Fixed labels on every alert (`cluster: prod`).
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// Fields whose values become labels (`fd.name` → `fd_name`).
    #[serde(default)]
    pub fields_as_labels: Vec<String>,
    /// Kibana's base URL: each alert links to itself there.
    pub kibana_url: Option<String>,
    /// Sent with every request (`Authorization: Bearer ...`).
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    /// PEM CA bundle to trust; the host name is still verified.
    pub ca_file: Option<PathBuf>,
    /// Do not verify the server certificate (diagnosis only).
    #[serde(default)]
    pub tls_insecure: bool,
    /// Per request. Default 10.
    pub timeout_s: Option<u64>,
    /// Alerts per request. Default 100.
    pub batch_size: Option<usize>,
    /// Alerts waiting at most; more are dropped and counted. Default 10000.
    pub queue_size: Option<usize>,
    /// Raise `mamori internal: output down` after this long unreachable.
    /// Default 300.
    pub down_alert_s: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamOutput {
    #[serde(default = "yes")]
    pub enabled: bool,
    pub format: Option<FormatName>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileOutput {
    pub path: PathBuf,
    pub format: Option<FormatName>,
    /// Rotate past this size (MiB); 0 never rotates. Default 100.
    pub max_size_mib: Option<u64>,
    /// Rotated files kept. Default 5.
    pub keep: Option<u32>,
}

/// `outputs.elasticsearch`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElasticsearchOutput {
    /// `https://host:9200`; user info in it is used as basic auth.
    pub url: Option<String>,
    /// Data stream namespace: `logs-mamori.alerts-<namespace>`.
    pub namespace: Option<String>,
    /// `data_stream` (default) or `daily` indices for clusters without
    /// data streams.
    pub index: Option<IndexMode>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    /// Name of the environment variable holding the password.
    pub password_env: Option<String>,
    /// File holding an API key (`id:key` or the encoded form).
    pub api_key_file: Option<PathBuf>,
    pub api_key_env: Option<String>,
    /// PEM CA bundle to trust; the host name is still verified.
    pub ca_file: Option<PathBuf>,
    /// Do not verify the server certificate (diagnosis only).
    #[serde(default)]
    pub tls_insecure: bool,
    pub spool_dir: Option<PathBuf>,
    pub spool_max_mib: Option<u64>,
    pub batch_size: Option<usize>,
    pub batch_max_mib: Option<usize>,
    pub flush_interval_ms: Option<u64>,
    pub timeout_s: Option<u64>,
    pub drain_timeout_s: Option<u64>,
    /// Raise `mamori internal: output down` after this long unreachable.
    /// Default 300.
    pub down_alert_s: Option<u64>,
    /// Install templates at start when missing. Default true.
    pub setup: Option<bool>,
    /// Seconds between the agent's status documents
    /// (`metrics-mamori.status-<namespace>`); 0 sends none. Default 30.
    pub status_interval_s: Option<u64>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum IndexMode {
    DataStream,
    Daily,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RuleMatching {
    First,
    All,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FormatName {
    Json,
    Text,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capture {
    /// Ring buffer size, MiB (power of two).
    pub ring_mib: Option<u32>,
    /// Bytes of environment captured at exec (0 disables).
    pub env_bytes: Option<u32>,
    /// Bytes of the command line captured at exec (1 to 4096).
    pub args_bytes: Option<u32>,
    /// Bytes of socket data captured per send or receive for rules that
    /// read `evt.buffer` (0 to 128; default 80, Falco's snap length).
    pub buffer_bytes: Option<u32>,
    /// Turn on the kernel's BPF run-time statistics, for
    /// `mamori_bpf_program_*` (a few ns per program run; for measuring).
    pub bpf_stats: Option<bool>,
    /// Watch calls of syscalls the kernel does not implement (they fail
    /// with ENOSYS) through a program on every syscall of the host.
    pub watch_unimplemented: Option<bool>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("-o {arg}: {message}")]
    Override { arg: String, message: String },
    #[error("{path}: `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

/// Reads and validates a configuration file.
pub fn load(path: &std::path::Path) -> Result<File, Error> {
    load_with(Some(path), &[])
}

/// The file (if any) with `-o key.path=value` overrides applied, checked.
/// Values are YAML (`-o capture.ring_mib=16`, `-o rules=[/a,/b]`).
pub fn load_with(path: Option<&std::path::Path>, overrides: &[String]) -> Result<File, Error> {
    let text = match path {
        Some(p) => std::fs::read_to_string(p).map_err(|source| Error::Read {
            path: p.to_owned(),
            source,
        })?,
        None => String::new(),
    };
    let shown = path.unwrap_or(std::path::Path::new("(command line)"));
    if overrides.is_empty() {
        return parse(&text, shown);
    }
    let mut tree: serde_json::Value = if text.trim().is_empty() {
        serde_json::json!({})
    } else {
        serde_saphyr::from_str(&text).map_err(|e| Error::Parse {
            path: shown.to_owned(),
            message: e.to_string(),
        })?
    };
    for arg in overrides {
        apply_override(&mut tree, arg)?;
    }
    let file: File = serde_json::from_value(tree).map_err(|e| Error::Parse {
        path: shown.to_owned(),
        message: format!("{e} (with the -o overrides applied)"),
    })?;
    validate(file, shown)
}

/// Sets `a.b.c` in `tree` to the YAML value after `=`.
fn apply_override(tree: &mut serde_json::Value, arg: &str) -> Result<(), Error> {
    let err = |message: &str| Error::Override {
        arg: arg.to_owned(),
        message: message.to_owned(),
    };
    let (key, value) = arg
        .split_once('=')
        .ok_or_else(|| err("expected KEY=VALUE, such as outputs.stdout.format=json"))?;
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(err("empty key part"));
    }
    let value: serde_json::Value = if value.is_empty() {
        serde_json::Value::Null
    } else {
        serde_saphyr::from_str(value).unwrap_or_else(|_| serde_json::Value::String(value.into()))
    };
    let mut node = tree;
    for (i, part) in parts.iter().enumerate() {
        if node.is_null() {
            *node = serde_json::json!({});
        }
        let Some(map) = node.as_object_mut() else {
            return Err(err(&format!("`{}` is not a section", parts[..i].join("."))));
        };
        if i == parts.len() - 1 {
            map.insert((*part).to_owned(), value);
            return Ok(());
        }
        node = map
            .entry((*part).to_owned())
            .or_insert_with(|| serde_json::json!({}));
    }
    Ok(())
}

pub fn parse(text: &str, path: &std::path::Path) -> Result<File, Error> {
    let file: File = if text.trim().is_empty() {
        File::default()
    } else {
        serde_saphyr::from_str(text).map_err(|e| Error::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?
    };
    validate(file, path)
}

/// Checks of values that their types do not express.
fn validate(file: File, path: &std::path::Path) -> Result<File, Error> {
    for e in &file.append_output {
        if let Some(bad) = e.extra_fields.iter().find(|f| extra_field(f).is_none()) {
            return Err(Error::Invalid {
                path: path.to_owned(),
                key: "append_output.extra_fields".into(),
                message: format!(
                    "{bad} is neither a field name nor a map of one `name: format` (a string)"
                ),
            });
        }
    }
    if let Some(cm) = &file.rules_configmap
        && !file.rules.contains(&cm.directory)
    {
        return Err(Error::Invalid {
            path: path.to_owned(),
            key: "rules_configmap.directory".into(),
            message: format!(
                "{} is not one of `rules`: name the directory the ConfigMap is mounted at",
                cm.directory.display()
            ),
        });
    }
    if file.state.fd_table_mib == Some(0) {
        return Err(Error::Invalid {
            path: path.to_owned(),
            key: "state.fd_table_mib".into(),
            message: "0 would keep no descriptor: give at least 1".into(),
        });
    }
    if let Some(mib) = file.capture.ring_mib
        && (!(1..=1024).contains(&mib) || !mib.is_power_of_two())
    {
        return Err(Error::Invalid {
            path: path.to_owned(),
            key: "capture.ring_mib".into(),
            message: format!("{mib} is not a power of two between 1 and 1024"),
        });
    }
    if let Some(args) = file.capture.args_bytes
        && !(1..=mamori_common::MAX_STR as u32).contains(&args)
    {
        return Err(Error::Invalid {
            path: path.to_owned(),
            key: "capture.args_bytes".into(),
            message: format!("{args} is not between 1 and {}", mamori_common::MAX_STR),
        });
    }
    if let Some(b) = file.capture.buffer_bytes
        && b > mamori_common::MAX_BYTES as u32
    {
        return Err(Error::Invalid {
            path: path.to_owned(),
            key: "capture.buffer_bytes".into(),
            message: format!("{b} is above the limit of {}", mamori_common::MAX_BYTES),
        });
    }
    if let Some(env) = file.capture.env_bytes
        && env > mamori_common::MAX_STR as u32
    {
        return Err(Error::Invalid {
            path: path.to_owned(),
            key: "capture.env_bytes".into(),
            message: format!("{env} is above the limit of {}", mamori_common::MAX_STR),
        });
    }
    Ok(file)
}

#[cfg(test)]
mod tests;
