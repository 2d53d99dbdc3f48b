//! Falco's `http_output`: the alert JSON Falco prints, posted as is, so
//! falcosidekick and everything built for Falco's webhooks take mamori's
//! alerts unchanged. Falco posts one alert per request; with a batch size
//! above 1 a request carries a JSON array of them.

use std::sync::Arc;

use serde_json::Value;

use super::{format, webhook};
use crate::alert::Alert;

#[derive(Clone, Copy, Debug, Default)]
pub struct Encoder {
    /// A JSON array per request (batch size > 1), else one object.
    pub array: bool,
}

impl webhook::Encoder for Encoder {
    fn encode(&self, batch: &[Arc<Alert>]) -> Vec<u8> {
        let body = if self.array {
            Value::Array(batch.iter().map(|a| format::falco_value(a)).collect())
        } else {
            // The delivery makes batches of one when the size is 1.
            batch
                .first()
                .map(|a| format::falco_value(a))
                .unwrap_or_default()
        };
        serde_json::to_vec(&body).unwrap_or_default()
    }
}
