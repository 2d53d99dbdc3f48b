//! `outputs.elasticsearch` → the Elasticsearch output's settings, with
//! every error naming its key. Secrets are read here (from files or
//! environment variables), once, at start.

use std::{path::Path, time::Duration};

use super::{
    Settings,
    bulk::Target,
    client::{Auth, Connection, Secret},
};
use crate::config::{ElasticsearchOutput, Error, IndexMode};

/// Where the spool lives unless configured.
pub const DEFAULT_SPOOL_DIR: &str = "/var/lib/mamori/spool";

/// Flags that override the file.
#[derive(Debug, Default)]
pub struct Overrides {
    pub url: Option<String>,
    pub spool_dir: Option<std::path::PathBuf>,
}

/// The output's settings; `None` when no URL is configured (output off).
pub fn settings(
    c: &ElasticsearchOutput,
    flags: &Overrides,
    file: &Path,
) -> Result<Option<Settings>, Error> {
    let invalid = |key: &'static str, message: String| Error::Invalid {
        path: file.to_owned(),
        key: key.into(),
        message,
    };
    let Some(url) = flags.url.clone().or_else(|| c.url.clone()) else {
        return Ok(None);
    };
    let (url, url_auth) =
        Connection::parse_url(&url).map_err(|m| invalid("outputs.elasticsearch.url", m))?;
    let auth = auth(c, url_auth).map_err(|(key, m)| invalid(key, m))?;
    if let Some(ca) = &c.ca_file
        && !ca.is_file()
    {
        return Err(invalid(
            "outputs.elasticsearch.ca_file",
            format!("{} is not a readable file", ca.display()),
        ));
    }
    let namespace = c.namespace.clone().unwrap_or_else(|| "default".into());
    check_namespace(&namespace).map_err(|m| invalid("outputs.elasticsearch.namespace", m))?;
    let timeout = Duration::from_secs(c.timeout_s.unwrap_or(30).max(1));
    let connection = Connection {
        url,
        auth,
        ca_file: c.ca_file.clone(),
        insecure: c.tls_insecure,
        timeout,
    };
    let spool_dir = flags
        .spool_dir
        .clone()
        .or_else(|| c.spool_dir.clone())
        .unwrap_or_else(|| DEFAULT_SPOOL_DIR.into());
    let mut s = Settings::new(connection, spool_dir);
    s.target = match c.index.unwrap_or(IndexMode::DataStream) {
        IndexMode::DataStream => Target::DataStream { namespace },
        IndexMode::Daily => Target::Daily { namespace },
    };
    tune(&mut s, c).map_err(|(key, m)| invalid(key, m))?;
    Ok(Some(s))
}

/// A problem with the key that names it.
type KeyError = (&'static str, String);

/// The credentials: an API key, or a user name and password, from files,
/// named variables, the default variables or the URL itself; never two
/// kinds at once.
fn auth(c: &ElasticsearchOutput, url_auth: Option<Auth>) -> Result<Auth, KeyError> {
    let password = secret(
        c.password_file.as_deref(),
        c.password_env.as_deref(),
        "MAMORI_ES_PASSWORD",
    )
    .map_err(|m| {
        let key = if c.password_file.is_none() && c.password_env.is_some() {
            "outputs.elasticsearch.password_env"
        } else {
            "outputs.elasticsearch.password_file"
        };
        (key, m)
    })?;
    let api_key = secret(
        c.api_key_file.as_deref(),
        c.api_key_env.as_deref(),
        "MAMORI_ES_API_KEY",
    )
    .map_err(|m| {
        let key = if c.api_key_file.is_none() && c.api_key_env.is_some() {
            "outputs.elasticsearch.api_key_env"
        } else {
            "outputs.elasticsearch.api_key_file"
        };
        (key, m)
    })?;
    let username = c.username.clone().or_else(|| {
        std::env::var("MAMORI_ES_USERNAME")
            .ok()
            .filter(|u| !u.is_empty())
    });
    Ok(match (username, password, api_key, url_auth) {
        (_, _, Some(_), Some(_)) | (Some(_), _, Some(_), _) => {
            return Err((
                "outputs.elasticsearch.api_key_file",
                "set either an API key or a user name and password, not both".into(),
            ));
        }
        (_, _, Some(key), None) => Auth::ApiKey(key),
        (Some(username), Some(password), None, _) => Auth::Basic { username, password },
        (Some(_), None, None, _) => {
            return Err((
                "outputs.elasticsearch.password_file",
                "a user name is set but no password (password_file, password_env or MAMORI_ES_PASSWORD)".into(),
            ));
        }
        (None, Some(_), None, None) => {
            return Err((
                "outputs.elasticsearch.username",
                "a password is set but no user name".into(),
            ));
        }
        (None, _, None, Some(a)) => a,
        (None, None, None, None) => Auth::None,
    })
}

/// Limits and timings, each checked against its range.
fn tune(s: &mut Settings, c: &ElasticsearchOutput) -> Result<(), KeyError> {
    if let Some(mib) = c.spool_max_mib {
        if mib < 1 {
            return Err((
                "outputs.elasticsearch.spool_max_mib",
                "must be at least 1".into(),
            ));
        }
        s.spool_max_bytes = mib << 20;
    }
    if let Some(n) = c.batch_size {
        if !(1..=10_000).contains(&n) {
            return Err((
                "outputs.elasticsearch.batch_size",
                format!("{n} is not between 1 and 10000"),
            ));
        }
        s.batching.docs = n;
    }
    if let Some(mib) = c.batch_max_mib {
        if !(1..=100).contains(&mib) {
            return Err((
                "outputs.elasticsearch.batch_max_mib",
                format!("{mib} is not between 1 and 100"),
            ));
        }
        s.batching.bytes = mib << 20;
    }
    if let Some(ms) = c.flush_interval_ms {
        s.batching.flush_interval = Duration::from_millis(ms);
    }
    if let Some(secs) = c.drain_timeout_s {
        s.drain_timeout = Duration::from_secs(secs);
    }
    if let Some(secs) = c.down_alert_s {
        s.down_alert_after = Duration::from_secs(secs);
    }
    if let Some(setup) = c.setup {
        s.setup = setup;
    }
    if let Some(secs) = c.status_interval_s {
        s.status_interval = (secs > 0).then(|| Duration::from_secs(secs));
    }
    Ok(())
}

/// A secret from a file, else a named environment variable, else the
/// default variable. Surrounding whitespace is dropped.
fn secret(
    file: Option<&Path>,
    env: Option<&str>,
    default_env: &str,
) -> Result<Option<Secret>, String> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let text = text.trim();
        if text.is_empty() {
            return Err(format!("{} is empty", path.display()));
        }
        return Ok(Some(Secret::new(text)));
    }
    if let Some(name) = env {
        return match std::env::var(name) {
            Ok(v) if !v.trim().is_empty() => Ok(Some(Secret::new(v.trim()))),
            _ => Err(format!("environment variable {name} is not set")),
        };
    }
    Ok(std::env::var(default_env)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(|v| Secret::new(v.trim())))
}

/// Elasticsearch's rules for a data stream namespace.
fn check_namespace(ns: &str) -> Result<(), String> {
    if ns.is_empty() || ns.len() > 100 {
        return Err("must be 1 to 100 characters".into());
    }
    if let Some(c) = ns
        .chars()
        .find(|c| c.is_ascii_uppercase() || "-\\/*?\"<>| ,#:".contains(*c) || c.is_whitespace())
    {
        return Err(format!(
            "{ns:?} may not contain {c:?} (lower case, no '-', spaces or \\ / * ? \" < > | , # :)"
        ));
    }
    if ns.starts_with(['_', '+', '.']) {
        return Err(format!("{ns:?} may not start with _ + or ."));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    fn es(yaml: &str) -> Result<Option<Settings>, Error> {
        let f = parse(yaml, Path::new("m.yaml")).unwrap();
        settings(
            f.outputs
                .elasticsearch
                .as_ref()
                .unwrap_or(&Default::default()),
            &Overrides::default(),
            Path::new("m.yaml"),
        )
    }

    #[test]
    fn off_without_a_url() {
        assert!(es("outputs: {}\n").unwrap().is_none());
    }

    #[test]
    fn defaults_and_keys() {
        let s = es("outputs:\n  elasticsearch:\n    url: http://127.0.0.1:9200\n    namespace: prod\n    batch_size: 100\n    flush_interval_ms: 200\n    spool_dir: /tmp/sp\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            s.target,
            Target::DataStream {
                namespace: "prod".into()
            }
        );
        assert_eq!(s.batching.docs, 100);
        assert_eq!(s.batching.flush_interval, Duration::from_millis(200));
        assert_eq!(s.spool_dir, std::path::PathBuf::from("/tmp/sp"));
        assert_eq!(s.connection.auth, Auth::None);
        let s = es("outputs:\n  elasticsearch: {url: 'https://u:p@h:9200', index: daily}\n")
            .unwrap()
            .unwrap();
        assert!(matches!(s.target, Target::Daily { .. }));
        assert!(matches!(s.connection.auth, Auth::Basic { .. }));
        assert_eq!(s.connection.url.as_str(), "https://h:9200/");
    }

    #[test]
    fn errors_name_the_key() {
        for (yaml, key) in [
            ("url: 'ftp://x'", "outputs.elasticsearch.url"),
            (
                "{url: 'http://h', namespace: Prod-1}",
                "outputs.elasticsearch.namespace",
            ),
            (
                "{url: 'http://h', batch_size: 0}",
                "outputs.elasticsearch.batch_size",
            ),
            (
                "{url: 'http://h', username: u, password_file: /nonexistent/pw}",
                "outputs.elasticsearch.password_file",
            ),
            (
                "{url: 'http://h', ca_file: /nonexistent/ca.pem}",
                "outputs.elasticsearch.ca_file",
            ),
            (
                "{url: 'http://h', password_env: MAMORI_TEST_UNSET_VAR}",
                "outputs.elasticsearch.password_env",
            ),
        ] {
            let yaml = if yaml.starts_with('{') {
                format!("outputs:\n  elasticsearch: {yaml}\n")
            } else {
                format!("outputs:\n  elasticsearch:\n    {yaml}\n")
            };
            let e = es(&yaml).unwrap_err().to_string();
            assert!(e.contains(key), "{yaml}: {e}");
        }
        let f = parse(
            "outputs:\n  elasticsearch: {url: 'http://h', pasword_file: x}\n",
            Path::new("m.yaml"),
        );
        assert!(f.unwrap_err().to_string().contains("pasword_file"));
    }

    #[test]
    fn secrets_come_from_files_and_stay_hidden() {
        let dir = std::env::temp_dir().join(format!("mamori-es-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pw = dir.join("pw");
        std::fs::write(&pw, "s3cret\n").unwrap();
        let key = dir.join("key");
        std::fs::write(&key, "id1:k3y\n").unwrap();
        let s = es(&format!(
            "outputs:\n  elasticsearch: {{url: 'http://h', username: elastic, password_file: {}}}\n",
            pw.display()
        ))
        .unwrap()
        .unwrap();
        assert_eq!(
            s.connection.auth,
            Auth::Basic {
                username: "elastic".into(),
                password: Secret::new("s3cret")
            }
        );
        assert!(
            !format!("{s:?}").contains("s3cret"),
            "Debug hides the password"
        );
        let s = es(&format!(
            "outputs:\n  elasticsearch: {{url: 'http://h', api_key_file: {}}}\n",
            key.display()
        ))
        .unwrap()
        .unwrap();
        assert_eq!(s.connection.auth, Auth::ApiKey(Secret::new("id1:k3y")));
        let both = es(&format!(
            "outputs:\n  elasticsearch: {{url: 'http://h', username: u, api_key_file: {}}}\n",
            key.display()
        ));
        assert!(both.unwrap_err().to_string().contains("not both"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
