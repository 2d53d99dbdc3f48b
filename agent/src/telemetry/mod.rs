//! Logging, metrics and the health endpoints. Beside the pipeline: stages
//! report into `Metrics`; nothing here calls a stage.

pub mod exposition;
pub mod health;
pub mod liveness;
pub mod logging;
pub mod metrics;
pub mod samples;
