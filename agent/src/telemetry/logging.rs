//! Log set-up: human-readable to stderr by default, JSON on request.
//! Per-event facts go to metrics, never to logs.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `level` is a `tracing` filter
/// (`info`, `debug`, `mamori=debug,aya=warn`...); `RUST_LOG` overrides it.
pub fn init(level: &str, json: bool) {
    // kube_client logs every failed request as an error; the rules
    // ConfigMap watch gets the same error and logs it with its context.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!("aya=warn,aya_obj=warn,kube_client=off,{level}"))
    });
    // Colours only for a person at a terminal, never into files or
    // container logs.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
