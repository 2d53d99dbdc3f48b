//! mamori: an eBPF host runtime security agent.
//!
//! Data flows one way: `capture` (kernel programs, ring buffer, decode) →
//! detection → `outputs`. `app` wires the stages; `cli`, `config` and
//! `telemetry` sit beside the pipeline.

pub mod alert;
pub mod app;
pub mod capture;
pub mod cli;
pub mod commands;
pub mod config;
pub mod detect;
pub mod event;
pub mod outputs;
pub mod prefilter;
pub mod record;
pub mod reload;
pub mod rules_files;
pub mod rulestest;
pub mod state;
pub mod telemetry;
pub mod time;
