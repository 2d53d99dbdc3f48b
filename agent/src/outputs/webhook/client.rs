//! One HTTP endpoint: its URL, headers, TLS trust and timeout, and what an
//! answer means for the alerts in a request.

use std::{path::PathBuf, time::Duration};

use anyhow::Context;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

/// Where and how to post.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub url: reqwest::Url,
    /// Sent with every request (`Authorization`, routing keys...).
    pub headers: Vec<(String, String)>,
    /// A PEM bundle to trust besides the usual roots; the host name is
    /// still verified.
    pub ca_file: Option<PathBuf>,
    /// Do not verify the server's certificate (diagnosis only).
    pub insecure: bool,
    /// For the whole request, connection included.
    pub timeout: Duration,
}

impl Endpoint {
    /// Checks a header as a request would carry it.
    pub fn check_header(name: &str, value: &str) -> Result<(), String> {
        HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("{name:?} is not a valid header name"))?;
        HeaderValue::from_str(value)
            .map_err(|_| format!("the value of {name} is not a valid header value"))?;
        Ok(())
    }
}

/// What became of a request.
#[derive(Debug)]
pub enum Failure {
    /// Not delivered, may be later: no connection, a timeout, 408, 429,
    /// or a 5xx.
    Retry(String),
    /// The receiver refused the alerts (another 4xx, a redirect): sending
    /// them again cannot help.
    Refused(String),
}

pub struct Client {
    http: reqwest::Client,
    url: reqwest::Url,
}

impl Client {
    pub fn new(e: &Endpoint) -> anyhow::Result<Self> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in &e.headers {
            let n = HeaderName::from_bytes(name.as_bytes())
                .with_context(|| format!("header name {name:?}"))?;
            let mut v =
                HeaderValue::from_str(value).with_context(|| format!("header {name}'s value"))?;
            v.set_sensitive(true);
            headers.insert(n, v);
        }
        let mut b = reqwest::Client::builder()
            .timeout(e.timeout)
            .connect_timeout(e.timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("mamori/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers);
        if e.insecure {
            b = b.danger_accept_invalid_certs(true);
        } else if let Some(path) = &e.ca_file {
            let pem = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("{}: not a PEM certificate bundle", path.display()))?;
            anyhow::ensure!(
                !certs.is_empty(),
                "{}: no certificate in it",
                path.display()
            );
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        Ok(Self {
            http: b.build().context("HTTP client")?,
            url: e.url.clone(),
        })
    }

    /// Posts `body`.
    pub async fn post(&self, body: Vec<u8>) -> Result<(), Failure> {
        let resp = self
            .http
            .post(self.url.clone())
            .body(body)
            .send()
            .await
            .map_err(|e| Failure::Retry(error_chain(&e)))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        // The start of the answer says why; never more (a hostile
        // receiver cannot fill the log).
        let text = resp.text().await.unwrap_or_default();
        let why = format!(
            "{status}: {}",
            crate::outputs::format::escape_controls(&text.chars().take(300).collect::<String>())
        );
        let code = status.as_u16();
        if status.is_server_error() || code == 408 || code == 429 {
            Err(Failure::Retry(why))
        } else {
            Err(Failure::Refused(why))
        }
    }
}

/// An error with its causes (reqwest's top level says only "error sending
/// request").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}
