//! The connection to Elasticsearch: the `elasticsearch` crate's transport
//! with mamori's credentials and TLS settings, used as a thin HTTP layer
//! (mamori builds its own `_bulk` bodies and reads the answers itself).
//!
//! Credentials never reach logs or errors: the URL kept for messages has
//! no user info, secrets are [`Secret`]s, and errors carry only the URL,
//! the status and Elasticsearch's own reason.

use std::{fmt, path::PathBuf, time::Duration};

use bytes::Bytes;
use elasticsearch::{
    Elasticsearch,
    auth::Credentials,
    cert::{Certificate, CertificateValidation},
    http::{
        Method, StatusCode,
        headers::{CONTENT_TYPE, HeaderMap, HeaderValue},
        transport::{SingleNodeConnectionPool, TransportBuilder},
    },
};
use url::Url;

/// A secret string: shown as `***` by `Debug` and `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How to authenticate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    None,
    Basic {
        username: String,
        password: Secret,
    },
    /// `id:key`, or the base64 `encoded` form Elasticsearch returns.
    ApiKey(Secret),
}

/// Everything needed to connect.
#[derive(Clone, Debug)]
pub struct Connection {
    /// Without user info (moved into `auth`).
    pub url: Url,
    pub auth: Auth,
    /// PEM CA bundle to trust (hostname verification stays on).
    pub ca_file: Option<PathBuf>,
    /// Skip certificate verification: for diagnosis only.
    pub insecure: bool,
    pub timeout: Duration,
}

impl Connection {
    /// Parses `url`; user info in it becomes basic auth (and leaves the URL).
    pub fn parse_url(url: &str) -> Result<(Url, Option<Auth>), String> {
        let mut u = Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err(format!("scheme must be http or https, not {}", u.scheme()));
        }
        let auth = (!u.username().is_empty()).then(|| Auth::Basic {
            username: pct_decode(u.username()),
            password: Secret::new(pct_decode(u.password().unwrap_or(""))),
        });
        let _ = u.set_username("");
        let _ = u.set_password(None);
        Ok((u, auth))
    }
}

fn pct_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// A failed request. `Display` is safe to log.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Could not reach Elasticsearch, or no answer in time: retry later.
    #[error("cannot reach Elasticsearch at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// Elasticsearch answered with an error status.
    #[error("Elasticsearch at {url} answered {status} to {what}: {reason}")]
    Status {
        url: String,
        what: String,
        status: u16,
        reason: String,
    },
    #[error("Elasticsearch connection settings: {0}")]
    Config(String),
}

impl Error {
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Worth retrying as is: network trouble, overload, server errors.
    pub fn retryable(&self) -> bool {
        match self {
            Error::Unreachable { .. } => true,
            Error::Status { status, .. } => *status == 429 || *status >= 500,
            Error::Config(_) => false,
        }
    }
}

/// A connected client.
#[derive(Clone)]
pub struct Client {
    es: Elasticsearch,
    /// For messages: the URL without credentials.
    url: String,
    timeout: Duration,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").field("url", &self.url).finish()
    }
}

/// An answer: status and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Elasticsearch's reason for an error answer, short.
    pub fn reason(&self) -> String {
        let Some(v) = self.json() else {
            return String::from_utf8_lossy(&self.body)
                .chars()
                .take(300)
                .collect();
        };
        let e = &v["error"];
        if let Some(s) = e.as_str() {
            return s.to_owned();
        }
        let mut parts = Vec::new();
        let mut cur = e;
        while cur.is_object() {
            let ty = cur["type"].as_str().unwrap_or("error");
            match cur["reason"].as_str() {
                Some(r) => parts.push(format!("{ty}: {r}")),
                None => parts.push(ty.to_owned()),
            }
            cur = &cur["caused_by"];
        }
        if parts.is_empty() {
            String::from_utf8_lossy(&self.body)
                .chars()
                .take(300)
                .collect()
        } else {
            parts.join("; caused by ")
        }
    }
}

impl Client {
    pub fn new(c: &Connection) -> Result<Self, Error> {
        let pool = SingleNodeConnectionPool::new(c.url.clone());
        let mut b = TransportBuilder::new(pool)
            .timeout(c.timeout)
            .enable_meta_header(false)
            .disable_proxy();
        match &c.auth {
            Auth::None => {}
            Auth::Basic { username, password } => {
                b = b.auth(Credentials::Basic(
                    username.clone(),
                    password.expose().to_owned(),
                ));
            }
            Auth::ApiKey(key) => {
                b = b.auth(match key.expose().split_once(':') {
                    Some((id, k)) => Credentials::ApiKey(id.to_owned(), k.to_owned()),
                    None => Credentials::EncodedApiKey(key.expose().to_owned()),
                });
            }
        }
        if c.insecure {
            b = b.cert_validation(CertificateValidation::None);
        } else if let Some(path) = &c.ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                Error::Config(format!("cannot read CA file {}: {e}", path.display()))
            })?;
            let cert = Certificate::from_pem(&pem).map_err(|e| {
                Error::Config(format!(
                    "CA file {} is not PEM certificates: {e}",
                    path.display()
                ))
            })?;
            b = b.cert_validation(CertificateValidation::Full(cert));
        }
        let transport = b
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            es: Elasticsearch::new(transport),
            url: c.url.as_str().trim_end_matches('/').to_owned(),
            timeout: c.timeout,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends one request. Any answer, error statuses included, is an
    /// `Answer`; only transport failures are errors.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        content_type: &'static str,
        body: Option<Bytes>,
    ) -> Result<Answer, Error> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        let resp = self
            .es
            .send(method, path, headers, None::<&()>, body, Some(self.timeout))
            .await
            .map_err(|e| self.unreachable(&e))?;
        let status = resp.status_code();
        let body = resp.bytes().await.map_err(|e| self.unreachable(&e))?;
        Ok(Answer {
            status: status.as_u16(),
            body,
        })
    }

    /// A JSON request whose error answers become `Error::Status`.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Answer, Error> {
        let body = body.map(|b| Bytes::from(b.to_string()));
        let a = self.request(method, path, "application/json", body).await?;
        if a.ok() {
            Ok(a)
        } else {
            Err(self.status_error(&format!("{method:?} {path}"), &a))
        }
    }

    pub fn status_error(&self, what: &str, a: &Answer) -> Error {
        let mut reason = a.reason();
        if a.status == StatusCode::UNAUTHORIZED.as_u16() {
            reason = format!("authentication failed (check the credentials): {reason}");
        } else if a.status == StatusCode::FORBIDDEN.as_u16() {
            reason = format!("not allowed (check the user's or key's privileges): {reason}");
        }
        Error::Status {
            url: self.url.clone(),
            what: what.to_owned(),
            status: a.status,
            reason,
        }
    }

    fn unreachable(&self, e: &dyn std::error::Error) -> Error {
        // The chain holds the useful part ("invalid peer certificate:
        // UnknownIssuer", "Connection refused").
        let mut reason = e.to_string();
        let mut src = e.source();
        while let Some(s) = src {
            let msg = s.to_string();
            if !reason.contains(&msg) {
                reason.push_str(": ");
                reason.push_str(&msg);
            }
            src = s.source();
        }
        Error::Unreachable {
            url: self.url.clone(),
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_info_moves_out_of_the_url() {
        let (u, auth) = Connection::parse_url("https://elastic:s%40cret@es.example:9200/").unwrap();
        assert_eq!(u.as_str(), "https://es.example:9200/");
        assert_eq!(
            auth,
            Some(Auth::Basic {
                username: "elastic".into(),
                password: Secret::new("s@cret"),
            })
        );
        assert!(!format!("{auth:?}").contains("s@cret"));
        assert!(Connection::parse_url("ftp://x").is_err());
        assert!(Connection::parse_url("not a url").is_err());
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn reasons_read_elasticsearch_errors() {
        let a = Answer {
            status: 400,
            body: Bytes::from_static(
                br#"{"error":{"type":"mapper_parsing_exception","reason":"failed to parse","caused_by":{"type":"illegal_argument_exception","reason":"bad"}},"status":400}"#,
            ),
        };
        assert_eq!(
            a.reason(),
            "mapper_parsing_exception: failed to parse; caused by illegal_argument_exception: bad"
        );
        let a = Answer {
            status: 405,
            body: Bytes::from_static(br#"{"error":"Incorrect HTTP method","status":405}"#),
        };
        assert_eq!(a.reason(), "Incorrect HTTP method");
        let a = Answer {
            status: 502,
            body: Bytes::from_static(b"<html>bad gateway</html>"),
        };
        assert_eq!(a.reason(), "<html>bad gateway</html>");
    }

    #[test]
    fn retryable_statuses() {
        let e = |status| Error::Status {
            url: String::new(),
            what: String::new(),
            status,
            reason: String::new(),
        };
        assert!(e(429).retryable() && e(503).retryable() && e(500).retryable());
        assert!(!e(400).retryable() && !e(401).retryable() && !e(404).retryable());
    }
}
