//! The configuration file (`-c mamori.yaml`): serde structs with
//! `deny_unknown_fields`, so a misspelt key is an error naming it, then
//! validated into typed settings. Command-line flags override the file.

use std::{net::SocketAddr, path::PathBuf};

use serde::Deserialize;

pub mod elasticsearch;

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
    #[serde(default)]
    pub outputs: Outputs,
    #[serde(default)]
    pub capture: Capture,
    #[serde(default)]
    pub containers: Containers,
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
    /// Install templates at start when missing. Default true.
    pub setup: Option<bool>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum IndexMode {
    DataStream,
    Daily,
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
    #[error("{path}: `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        key: &'static str,
        message: String,
    },
}

/// Reads and validates a configuration file.
pub fn load(path: &std::path::Path) -> Result<File, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text, path)
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
    if let Some(mib) = file.capture.ring_mib
        && (!(1..=1024).contains(&mib) || !mib.is_power_of_two())
    {
        return Err(Error::Invalid {
            path: path.to_owned(),
            key: "capture.ring_mib",
            message: format!("{mib} is not a power of two between 1 and 1024"),
        });
    }
    if let Some(env) = file.capture.env_bytes
        && env > mamori_common::MAX_STR as u32
    {
        return Err(Error::Invalid {
            path: path.to_owned(),
            key: "capture.env_bytes",
            message: format!("{env} is above the limit of {}", mamori_common::MAX_STR),
        });
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn parses_every_key() {
        let f = parse(
            "rules: [/etc/mamori/rules]\nhealth_addr: 127.0.0.1:8765\nlog_level: debug\n\
             outputs:\n  stdout: {format: text}\n  file: {path: /var/log/mamori.json}\n\
             capture: {ring_mib: 16, env_bytes: 0}\n\
             containers: {cri_sockets: [/run/k3s/containerd/containerd.sock]}\n",
            Path::new("m.yaml"),
        )
        .unwrap();
        assert_eq!(f.rules, vec![PathBuf::from("/etc/mamori/rules")]);
        assert_eq!(f.health_addr, Some("127.0.0.1:8765".parse().unwrap()));
        assert_eq!(f.outputs.stdout.unwrap().format, Some(FormatName::Text));
        assert_eq!(f.capture.ring_mib, Some(16));
        assert_eq!(
            f.containers.cri_sockets,
            vec![PathBuf::from("/run/k3s/containerd/containerd.sock")]
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let e = parse("outputs:\n  stdot: {}\n", Path::new("m.yaml")).unwrap_err();
        assert!(e.to_string().contains("stdot"), "{e}");
        let e = parse("capture: {ring_mib: 3}\n", Path::new("m.yaml")).unwrap_err();
        assert!(e.to_string().contains("capture.ring_mib"), "{e}");
        let e = parse("containers: {cri_socket: /x}\n", Path::new("m.yaml")).unwrap_err();
        assert!(e.to_string().contains("cri_socket"), "{e}");
        let e = parse("health_addr: nowhere\n", Path::new("m.yaml")).unwrap_err();
        assert!(e.to_string().contains("m.yaml"), "{e}");
    }
}
