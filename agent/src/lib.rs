//! mamori: an eBPF host runtime security agent.
//!
//! Data flows one way: `capture` (kernel programs, ring buffer, decode) →
//! `state` (processes, descriptors, users, containers) → `detect` (rules
//! on an event seen with the state) → `outputs` (stdout, file,
//! Elasticsearch). `event` and `alert` are the data that crosses those
//! boundaries; `app` wires the stages (and the offline pipelines: replay,
//! rules tests); `cli` and `commands` are the command line; `config` and
//! `telemetry` are leaves. `shape_tests.rs` holds the allowed imports and
//! fails on any other; ARCHITECTURE.md has the map.

pub mod alert;
pub mod app;
pub mod capture;
pub mod cli;
pub mod commands;
pub mod config;
pub mod detect;
pub mod event;
pub mod outputs;
pub mod record;
pub mod rules_configmap;
pub mod rules_files;
pub mod state;
pub mod telemetry;
pub mod time;

#[cfg(test)]
#[path = "shape_tests.rs"]
mod shape;
