//! Plain HTTP for the tests (the agent's endpoints, the test
//! Elasticsearch node): any status is an answer, a transport error is none.

use std::time::Duration;

/// `method url` with an optional body; the status and body, or `None`
/// when nothing answered.
pub fn request(method: &str, url: &str, body: Option<&str>) -> Option<(u16, String)> {
    request_with(method, url, &[], body)
}

/// [`request`] with extra headers.
pub fn request_with(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Option<(u16, String)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let content_type = if url.contains("_bulk") {
        "application/x-ndjson"
    } else {
        "application/json"
    };
    let mut req = ureq::http::Request::builder()
        .method(method)
        .uri(url)
        .header("Content-Type", content_type);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(body.unwrap_or("").to_owned()).ok()?;
    let mut resp = agent.run(req).ok()?;
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(256 << 20)
        .read_to_string()
        .ok()?;
    Some((status, text))
}
