//! The HTTP outputs' sections of the config file → their settings, every
//! error naming its key.

use std::{collections::BTreeMap, path::Path, time::Duration};

use super::{Endpoint, Settings};
use crate::{
    alert::Priority,
    config::{AlertmanagerOutput, Error, HttpOutput},
    outputs::{alertmanager, falco_http, identity::Identity},
};

/// The options every HTTP output has, as written.
pub struct Common<'a> {
    pub url: &'a str,
    pub min_priority: Option<&'a str>,
    pub headers: &'a BTreeMap<String, String>,
    pub ca_file: Option<&'a Path>,
    pub tls_insecure: bool,
    pub timeout_s: Option<u64>,
    pub batch_size: Option<usize>,
    pub queue_size: Option<usize>,
    pub down_alert_s: Option<u64>,
}

/// The [`Common`] part of an output's section (`AlertmanagerOutput`,
/// `HttpOutput`: the same delivery keys), with its URL and batch size.
macro_rules! common {
    ($c:expr, $url:expr, $batch:expr) => {
        Common {
            url: $url,
            min_priority: $c.min_priority.as_deref(),
            headers: &$c.headers,
            ca_file: $c.ca_file.as_deref(),
            tls_insecure: $c.tls_insecure,
            timeout_s: $c.timeout_s,
            batch_size: $batch,
            queue_size: $c.queue_size,
            down_alert_s: $c.down_alert_s,
        }
    };
}

/// A bad value of `<section>.<key>`.
fn invalid(file: &Path, section: &str, key: &str, message: String) -> Error {
    Error::Invalid {
        path: file.to_owned(),
        key: format!("{section}.{key}"),
        message,
    }
}

/// Settings of the output `name` configured in `section` (the delivery
/// part; the encoder is the output's own). `api_path` is appended to the
/// URL's path when it is not already there.
pub fn settings(
    name: &'static str,
    section: &str,
    c: &Common<'_>,
    api_path: &str,
    default_min: Priority,
    file: &Path,
) -> Result<Settings, Error> {
    let bad = |key: &str, m: String| invalid(file, section, key, m);
    let mut url =
        reqwest::Url::parse(c.url).map_err(|e| bad("url", format!("{:?}: {e}", c.url)))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("url", format!("{:?}: not http or https", c.url)));
    }
    if !api_path.is_empty() && !url.path().ends_with(api_path) {
        let path = format!("{}{api_path}", url.path().trim_end_matches('/'));
        url.set_path(&path);
    }
    let min_priority = match c.min_priority {
        None => default_min,
        Some(p) => Priority::parse(p).ok_or_else(|| {
            bad(
                "min_priority",
                format!("{p:?} is not a priority (emergency, alert, critical, error, warning, notice, informational, debug)"),
            )
        })?,
    };
    for (k, v) in c.headers {
        Endpoint::check_header(k, v).map_err(|m| bad("headers", m))?;
    }
    if let Some(ca) = c.ca_file
        && !ca.is_file()
    {
        return Err(bad(
            "ca_file",
            format!("{} is not a readable file", ca.display()),
        ));
    }
    let positive = |key: &str, v: Option<usize>, default: usize| match v {
        Some(0) => Err(bad(key, "must be at least 1".into())),
        Some(n) => Ok(n),
        None => Ok(default),
    };
    let endpoint = Endpoint {
        url,
        headers: c
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        ca_file: c.ca_file.map(Path::to_owned),
        insecure: c.tls_insecure,
        timeout: Duration::from_secs(c.timeout_s.unwrap_or(10).max(1)),
    };
    let mut s = Settings::new(name, endpoint);
    s.min_priority = min_priority;
    s.batch_size = positive("batch_size", c.batch_size, s.batch_size)?;
    s.queue_size = positive("queue_size", c.queue_size, s.queue_size)?;
    if let Some(d) = c.down_alert_s {
        s.down_alert_after = Duration::from_secs(d);
    }
    Ok(s)
}

/// `outputs.alertmanager`: `None` when it has no URL (output off).
pub fn alertmanager(
    c: &AlertmanagerOutput,
    file: &Path,
) -> Result<Option<(Settings, alertmanager::Encoder)>, Error> {
    const SECTION: &str = "outputs.alertmanager";
    let Some(url) = c.url.as_deref() else {
        return Ok(None);
    };
    let common = common!(c, url, c.batch_size);
    let settings = settings(
        "alertmanager",
        SECTION,
        &common,
        "/api/v2/alerts",
        Priority::Warning,
        file,
    )?;
    for k in c.labels.keys() {
        if alertmanager::label_name(k) != *k {
            return Err(invalid(
                file,
                SECTION,
                "labels",
                format!("{k:?} is not a label name (letters, digits and _, not first a digit)"),
            ));
        }
    }
    if let Some(k) = &c.kibana_url
        && reqwest::Url::parse(k).is_err()
    {
        return Err(invalid(
            file,
            SECTION,
            "kibana_url",
            format!("{k:?} is not a URL"),
        ));
    }
    let encoder = alertmanager::Encoder {
        labels: c
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        fields_as_labels: c
            .fields_as_labels
            .iter()
            .map(|f| (f.clone(), alertmanager::label_name(f)))
            .collect(),
        kibana_url: c.kibana_url.clone(),
        ..Default::default()
    };
    Ok(Some((settings, encoder)))
}

/// `outputs.http`: `None` when it has no URL (output off).
pub fn http(c: &HttpOutput, file: &Path) -> Result<Option<(Settings, falco_http::Encoder)>, Error> {
    let Some(url) = c.url.as_deref() else {
        return Ok(None);
    };
    // Falco's way: one alert per request.
    let common = common!(c, url, Some(c.batch_size.unwrap_or(1)));
    let s = settings("http", "outputs.http", &common, "", Priority::Debug, file)?;
    let encoder = falco_http::Encoder {
        array: s.batch_size > 1,
    };
    Ok(Some((s, encoder)))
}

/// Fills in what makes alert ids (read at start, with the host's facts).
pub fn with_identity(mut e: alertmanager::Encoder, id: &Identity) -> alertmanager::Encoder {
    e.host_id.clone_from(&id.host_id);
    e.boot_id.clone_from(&id.boot_id);
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Option<(Settings, alertmanager::Encoder)>, Error> {
        let f = crate::config::parse(yaml, Path::new("m.yaml")).unwrap();
        alertmanager(
            f.outputs.alertmanager.as_ref().unwrap(),
            Path::new("m.yaml"),
        )
    }

    #[test]
    fn defaults_and_the_api_path() {
        let (s, e) = parse("outputs:\n  alertmanager:\n    url: http://am:9093\n")
            .unwrap()
            .unwrap();
        assert_eq!(s.endpoint.url.as_str(), "http://am:9093/api/v2/alerts");
        assert_eq!(s.min_priority, Priority::Warning);
        assert_eq!((s.batch_size, s.queue_size), (100, 10_000));
        assert!(e.labels.is_empty() && e.kibana_url.is_none());
        let (s, _) = parse(
            "outputs:\n  alertmanager:\n    url: https://am.example/prefix/api/v2/alerts\n    min_priority: CRITICAL\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            s.endpoint.url.as_str(),
            "https://am.example/prefix/api/v2/alerts"
        );
        assert_eq!(s.min_priority, Priority::Critical);
        assert!(parse("outputs:\n  alertmanager: {}\n").unwrap().is_none());
    }

    #[test]
    fn bad_values_name_their_key() {
        for (yaml, key) in [
            ("url: 'am:9093'", "outputs.alertmanager.url"),
            ("url: ftp://am", "outputs.alertmanager.url"),
            (
                "{url: 'http://am', min_priority: warn}",
                "outputs.alertmanager.min_priority",
            ),
            (
                "{url: 'http://am', labels: {'a-b': x}}",
                "outputs.alertmanager.labels",
            ),
            (
                "{url: 'http://am', headers: {'a b': x}}",
                "outputs.alertmanager.headers",
            ),
            (
                "{url: 'http://am', ca_file: /nonexistent}",
                "outputs.alertmanager.ca_file",
            ),
            (
                "{url: 'http://am', batch_size: 0}",
                "outputs.alertmanager.batch_size",
            ),
        ] {
            let yaml = if yaml.starts_with('{') {
                format!("outputs:\n  alertmanager: {yaml}\n")
            } else {
                format!("outputs:\n  alertmanager:\n    {yaml}\n")
            };
            let e = parse(&yaml)
                .err()
                .unwrap_or_else(|| panic!("{yaml} accepted"));
            assert!(e.to_string().contains(&format!("`{key}`")), "{yaml}: {e}");
        }
    }

    #[test]
    fn the_http_output_posts_each_alert_to_its_url_as_falco_does() {
        let parse_http = |yaml: &str| {
            let f = crate::config::parse(yaml, Path::new("m.yaml")).unwrap();
            http(f.outputs.http.as_ref().unwrap(), Path::new("m.yaml"))
        };
        let (s, e) = parse_http("outputs:\n  http:\n    url: http://sidekick:2801/\n")
            .unwrap()
            .unwrap();
        assert_eq!(s.endpoint.url.as_str(), "http://sidekick:2801/");
        assert_eq!((s.batch_size, s.min_priority), (1, Priority::Debug));
        assert!(!e.array);
        let (s, e) = parse_http("outputs:\n  http: {url: 'https://h/in', batch_size: 50}\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            (s.endpoint.url.as_str(), s.batch_size),
            ("https://h/in", 50)
        );
        assert!(e.array);
        let err = parse_http("outputs:\n  http: {url: 'https://h/in', min_priority: loud}\n")
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("`outputs.http.min_priority`"),
            "{err}"
        );
    }

    #[test]
    fn fields_become_label_names() {
        let (_, e) = parse(
            "outputs:\n  alertmanager:\n    url: http://am:9093\n    fields_as_labels: [fd.name, 'proc.aname[2]']\n    labels: {cluster: prod}\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            e.fields_as_labels,
            vec![
                ("fd.name".to_owned(), "fd_name".to_owned()),
                ("proc.aname[2]".to_owned(), "proc_aname_2_".to_owned())
            ]
        );
        assert_eq!(e.labels, vec![("cluster".to_owned(), "prod".to_owned())]);
    }
}
