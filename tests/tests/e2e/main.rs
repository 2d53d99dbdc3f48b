//! The end-to-end tests: the real `mamori` binary, the real eBPF programs
//! in the running kernel, real processes, containers and Elasticsearch.
//! One test binary with a module per area (built and started once); each
//! test is independent and scopes what it asserts to what it did itself.
//! Root only; `cargo xtask test` runs them one at a time. The capture
//! tests, which load the programs into the test process itself, are their
//! own binary (`tests/capture.rs`): their capture is detached before these
//! run, so it costs nothing here.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod alertmanager;
mod alerts;
mod benign;
mod buffer;
mod cli;
mod container_rules;
mod containers;
mod deploy;
mod elasticsearch;
mod es_tls;
mod evasion;
mod fds;
mod http_output;
mod image;
mod kibana;
mod loss;
mod matching;
mod metrics;
mod names;
mod parity;
mod prefilter;
mod reload;
mod replay;
mod status;
mod storm;
