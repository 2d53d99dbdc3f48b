//! The `/metrics` exposition, encoded by prometheus-client (OpenMetrics
//! text). Stages keep their own atomics, which their hot paths bump; on a
//! scrape each registered [`Source`] reads them into [`Families`]. Nothing
//! here is on an event's path.

use std::{fmt, sync::Arc};

use prometheus_client::{
    collector::Collector,
    encoding::{
        DescriptorEncoder, EncodeCounterValue, EncodeGaugeValue, EncodeLabelSet, EncodeMetric,
        NoLabelSet,
    },
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
    registry::Registry,
};

pub type Result = std::result::Result<(), fmt::Error>;

/// A stage's families, read on every scrape.
pub type Source = Arc<dyn Fn(&mut Families<'_>) -> Result + Send + Sync>;

/// Where a [`Source`] writes its families. Counter names are given without
/// `_total`: the encoder appends it to the sample, as OpenMetrics wants.
pub struct Families<'a>(DescriptorEncoder<'a>);

impl Families<'_> {
    pub fn counter(&mut self, name: &str, help: &str, v: impl EncodeCounterValue) -> Result {
        let enc = self
            .0
            .encode_descriptor(name, help, None, MetricType::Counter)?;
        ConstCounter::new(v).encode(enc)
    }

    pub fn gauge(&mut self, name: &str, help: &str, v: impl EncodeGaugeValue) -> Result {
        let enc = self
            .0
            .encode_descriptor(name, help, None, MetricType::Gauge)?;
        ConstGauge::new(v).encode(enc)
    }

    /// A counter family: one sample per label set. Label values must be
    /// [`escape`]d when they may hold quotes, backslashes or newlines.
    pub fn counters<L: EncodeLabelSet, V: EncodeCounterValue>(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = (L, V)>,
    ) -> Result {
        let mut enc = self
            .0
            .encode_descriptor(name, help, None, MetricType::Counter)?;
        for (labels, v) in samples {
            ConstCounter::new(v).encode(enc.encode_family(&labels)?)?;
        }
        Ok(())
    }

    /// A gauge family: one sample per label set.
    pub fn gauges<L: EncodeLabelSet, V: EncodeGaugeValue>(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = (L, V)>,
    ) -> Result {
        let mut enc = self
            .0
            .encode_descriptor(name, help, None, MetricType::Gauge)?;
        for (labels, v) in samples {
            ConstGauge::new(v).encode(enc.encode_family(&labels)?)?;
        }
        Ok(())
    }

    /// A histogram from per-bucket (not cumulative) counts, the last bucket
    /// bounded by `f64::MAX` (`+Inf`).
    pub fn histogram(
        &mut self,
        name: &str,
        help: &str,
        sum: f64,
        count: u64,
        buckets: &[(f64, u64)],
    ) -> Result {
        let mut enc = self
            .0
            .encode_descriptor(name, help, None, MetricType::Histogram)?;
        enc.encode_histogram::<NoLabelSet>(sum, count, buckets, None)
    }
}

/// A label value as the text format needs it (prometheus-client writes
/// values as given): a hostile rule name cannot break the exposition.
pub fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The exposition of `sources`, in order, with its `# EOF`.
pub fn encode(sources: &[Source]) -> String {
    let mut registry = Registry::default();
    for s in sources {
        registry.register_collector(Box::new(SourceCollector(s.clone())));
    }
    let mut out = String::new();
    // Writing to a String cannot fail; a source's own error ends the text early.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

/// The same exposition in Prometheus' classic text format (version
/// 0.0.4), for scrapers and linters that do not ask for OpenMetrics
/// (`promtool check metrics`, curl): a counter's `# HELP` and `# TYPE` name
/// its samples (`x_total`), and there is no `# EOF`.
pub fn classic_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    // A family's HELP comes before its TYPE: held until the type is known.
    let mut help: Option<(&str, &str)> = None;
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = rest.split_once(' ').or(Some((rest, "")));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let named = if kind == "counter" {
                format!("{name}_total")
            } else {
                name.to_owned()
            };
            if let Some((_, text)) = help.take().filter(|(h, _)| *h == name) {
                out.push_str(&format!("# HELP {named} {text}\n"));
            }
            out.push_str(&format!("# TYPE {named} {kind}\n"));
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

struct SourceCollector(Source);

impl fmt::Debug for SourceCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SourceCollector")
    }
}

impl Collector for SourceCollector {
    fn encode(&self, encoder: DescriptorEncoder<'_>) -> Result {
        (self.0)(&mut Families(encoder))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_classic_format_names_counters_by_their_samples() {
        let om = "# HELP x_events Events seen.\n# TYPE x_events counter\n\
                  x_events_total{type=\"a\"} 3\n# HELP x_ready Ready.\n# TYPE x_ready gauge\n\
                  x_ready 1\n# EOF\n";
        assert_eq!(
            classic_text(om),
            "# HELP x_events_total Events seen.\n# TYPE x_events_total counter\n\
             x_events_total{type=\"a\"} 3\n# HELP x_ready Ready.\n# TYPE x_ready gauge\n\
             x_ready 1\n"
        );
    }

    #[test]
    fn families_encode_as_openmetrics() {
        let s: Source = Arc::new(|f: &mut Families<'_>| {
            f.counter("x_events", "Events.", 3u64)?;
            f.gauge("x_ready", "Ready.", 1u64)?;
            f.counters(
                "x_alerts",
                "Alerts.",
                [([("rule", escape("a \"b\"\nc"))], 2u64)],
            )?;
            f.histogram(
                "x_seconds",
                "Time.",
                1.5,
                3,
                &[(0.1, 1), (1.0, 2), (f64::MAX, 0)],
            )
        });
        let text = encode(&[s]);
        for line in [
            "# TYPE x_events counter",
            "x_events_total 3",
            "# TYPE x_ready gauge",
            "x_ready 1",
            "x_alerts_total{rule=\"a \\\"b\\\"\\nc\"} 2",
            "x_seconds_bucket{le=\"1.0\"} 3",
            "x_seconds_bucket{le=\"+Inf\"} 3",
            "x_seconds_count 3",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
    }
}
