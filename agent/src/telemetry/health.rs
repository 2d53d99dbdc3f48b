//! `GET /healthz`, `/readyz` and `/metrics` (axum on hyper, HTTP/1.1).
//! Any other path is 404; any other method on these, 405.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Router,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use tokio::net::TcpListener;
use tracing::{info, warn};

use super::metrics::Metrics;

/// The content type of the exposition (OpenMetrics text, which
/// Prometheus reads).
const OPENMETRICS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const CLASSIC_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Binds first, so the caller learns of a bad address at start-up.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let listener = TcpListener::bind(addr).await?;
    info!(addr = %listener.local_addr()?, "health endpoints listening");
    Ok(listener)
}

/// Serves until the task is dropped.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    if let Err(e) = axum::serve(listener, router(metrics)).await {
        warn!(error = %e, "health endpoints stopped");
    }
}

fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(prometheus))
        .with_state(metrics)
}

async fn healthz(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    match m.liveness.stuck() {
        stuck if stuck.is_empty() => (StatusCode::OK, "ok\n".to_owned()),
        stuck => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("stuck: {}\n", stuck.join(", ")),
        ),
    }
}

async fn readyz(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    if m.ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

/// OpenMetrics when the scraper asks for it (Prometheus does), else the
/// classic text format, which every tool reads.
async fn prometheus(
    State(m): State<Arc<Metrics>>,
    headers: axum::http::HeaderMap,
) -> impl IntoResponse {
    let wants_openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let text = m.render();
    if wants_openmetrics {
        ([(header::CONTENT_TYPE, OPENMETRICS_TEXT)], text)
    } else {
        (
            [(header::CONTENT_TYPE, CLASSIC_TEXT)],
            super::exposition::classic_text(&text),
        )
    }
}

#[cfg(test)]
mod tests {
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpStream,
    };

    use super::*;

    async fn request(addr: SocketAddr, method: &str, path: &str) -> String {
        request_with(addr, method, path, "").await
    }

    async fn request_with(addr: SocketAddr, method: &str, path: &str, headers: &str) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(
            format!("{method} {path} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn serves_the_three_routes_on_loopback() {
        let metrics = Arc::new(Metrics::new(&["openat"]));
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, metrics.clone()));
        let get = |path| request(addr, "GET", path);
        assert!(get("/healthz").await.starts_with("HTTP/1.1 200"));
        assert!(get("/readyz").await.starts_with("HTTP/1.1 503"));
        metrics.set_attached();
        metrics.set_rules("x", 1);
        assert!(get("/readyz").await.starts_with("HTTP/1.1 200"));
        // Without asking: the classic format, counters named by their samples.
        let m = get("/metrics").await;
        assert!(m.contains("mamori_ready 1"), "{m}");
        assert!(m.to_lowercase().contains(CLASSIC_TEXT), "{m}");
        assert!(!m.contains("# EOF"), "{m}");
        assert!(
            m.contains("# TYPE mamori_rules_reload_failures_total counter"),
            "{m}"
        );
        // As Prometheus asks: OpenMetrics.
        let om = request_with(
            addr,
            "GET",
            "/metrics",
            "Accept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5\r\n",
        )
        .await;
        assert!(om.to_lowercase().contains(OPENMETRICS_TEXT), "{om}");
        assert!(om.contains("# EOF"), "{om}");
        assert!(get("/nope").await.starts_with("HTTP/1.1 404"));
        let post = request(addr, "POST", "/metrics").await;
        assert!(post.starts_with("HTTP/1.1 405"), "{post}");
    }
}
