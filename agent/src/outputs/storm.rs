//! Storm control: a token bucket per rule in front of every output, so one
//! noisy rule (or an attacker making one fire on purpose) cannot flood the
//! outputs and bury everything else. Nothing is lost silently: what a
//! bucket suppresses is counted per rule and reported by a summary alert
//! (count, first and last time) every interval and at shutdown. Internal
//! alerts (loss, outputs down, tampering) are never suppressed.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use crate::{
    alert::{Alert, FieldValue, Priority, Source},
    time::rfc3339_nanos,
};

/// A bucket: `rate` alerts per second sustained, `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limit {
    pub rate: f64,
    pub burst: f64,
}

/// Storm control's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Every rule's bucket unless `rules` names it; `None`: off.
    pub default: Option<Limit>,
    /// Buckets of named rules (`None`: that rule is never limited).
    pub rules: Vec<(String, Option<Limit>)>,
    /// How often suppressed alerts are summarised.
    pub summary_interval: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            default: Some(Limit {
                rate: 10.0,
                burst: 1000.0,
            }),
            rules: Vec::new(),
            summary_interval: Duration::from_secs(60),
        }
    }
}

/// `storm_control` → settings; a bad value names its key.
pub fn settings(
    c: &crate::config::StormControl,
    file: &std::path::Path,
) -> Result<Settings, crate::config::Error> {
    let bad = |key: String, message: &str| crate::config::Error::Invalid {
        path: file.to_owned(),
        key,
        message: message.to_owned(),
    };
    let defaults = Settings::default();
    let base = defaults.default.unwrap_or(Limit {
        rate: 10.0,
        burst: 1000.0,
    });
    let limit = |key: &str, rate: Option<f64>, burst: Option<u32>, base: Limit| {
        let rate = rate.unwrap_or(base.rate);
        if !rate.is_finite() || rate < 0.0 {
            return Err(bad(
                format!("{key}.rate"),
                "must be a number of alerts per second, 0 or more",
            ));
        }
        let burst = burst.map_or(base.burst, f64::from);
        if burst < 1.0 {
            return Err(bad(format!("{key}.burst"), "must be at least 1"));
        }
        Ok(Limit { rate, burst })
    };
    let default_limit = limit("storm_control", c.rate, c.burst, base)?;
    let mut rules = Vec::new();
    for (rule, r) in &c.rules {
        let key = format!("storm_control.rules.{rule}");
        let l = if r.enabled == Some(false) {
            None
        } else {
            Some(limit(&key, r.rate, r.burst, default_limit)?)
        };
        rules.push((rule.clone(), l));
    }
    let interval = c.summary_interval_s.unwrap_or(60);
    if interval == 0 {
        return Err(bad(
            "storm_control.summary_interval_s".into(),
            "must be at least 1",
        ));
    }
    Ok(Settings {
        default: (c.enabled != Some(false)).then_some(default_limit),
        rules,
        summary_interval: Duration::from_secs(interval),
    })
}

/// Rules with a bucket, at most: rule names come from the operator's
/// files, so this is never reached in practice; past it new rules pass
/// unlimited rather than grow the table.
const MAX_RULES: usize = 10_000;

struct Bucket {
    limit: Limit,
    tokens: f64,
    refilled: Instant,
    /// Suppressed since the last summary, and when the first and last were
    /// raised (ns since the epoch).
    suppressed: u64,
    first_ns: u64,
    last_ns: u64,
}

pub struct Storm {
    settings: Settings,
    buckets: HashMap<String, Bucket>,
    last_summary: Instant,
    hostname: String,
}

/// What [`Storm::admit`] decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Suppressed,
}

impl Storm {
    pub fn new(settings: Settings, hostname: &str) -> Self {
        Self {
            settings,
            buckets: HashMap::new(),
            last_summary: Instant::now(),
            hostname: hostname.to_owned(),
        }
    }

    fn limit_of(&self, rule: &str) -> Option<Limit> {
        match self.settings.rules.iter().find(|(r, _)| r == rule) {
            Some((_, limit)) => *limit,
            None => self.settings.default,
        }
    }

    /// Whether `alert` goes to the outputs; a suppressed one is counted.
    pub fn admit(&mut self, alert: &Alert, now: Instant) -> Verdict {
        if alert.source == Source::Internal {
            return Verdict::Pass;
        }
        if !self.buckets.contains_key(&alert.rule) {
            let Some(limit) = self.limit_of(&alert.rule) else {
                return Verdict::Pass;
            };
            if self.buckets.len() >= MAX_RULES {
                return Verdict::Pass;
            }
            self.buckets.insert(
                alert.rule.clone(),
                Bucket {
                    limit,
                    tokens: limit.burst,
                    refilled: now,
                    suppressed: 0,
                    first_ns: 0,
                    last_ns: 0,
                },
            );
        }
        let Some(b) = self.buckets.get_mut(&alert.rule) else {
            return Verdict::Pass;
        };
        let elapsed = now.saturating_duration_since(b.refilled).as_secs_f64();
        b.tokens = (b.tokens + elapsed * b.limit.rate).min(b.limit.burst);
        b.refilled = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return Verdict::Pass;
        }
        if b.suppressed == 0 {
            b.first_ns = alert.time_ns;
        }
        b.suppressed += 1;
        b.last_ns = alert.time_ns;
        Verdict::Suppressed
    }

    /// The summaries due (one per rule that suppressed since the last), or
    /// every pending one when `flush` (at shutdown).
    pub fn summaries(&mut self, now: Instant, flush: bool) -> Vec<Alert> {
        if !flush
            && now.saturating_duration_since(self.last_summary) < self.settings.summary_interval
        {
            return Vec::new();
        }
        self.last_summary = now;
        let mut due: Vec<String> = self
            .buckets
            .iter()
            .filter(|(_, b)| b.suppressed > 0)
            .map(|(r, _)| r.clone())
            .collect();
        due.sort();
        let mut out = Vec::with_capacity(due.len());
        for rule in due {
            if let Some(b) = self.buckets.get_mut(&rule) {
                out.push(summary(&rule, b, &self.hostname));
                b.suppressed = 0;
            }
        }
        out
    }
}

/// The name of the summary alert.
pub const SUMMARY_RULE: &str = "mamori internal: alerts suppressed";

fn summary(rule: &str, b: &Bucket, hostname: &str) -> Alert {
    Alert::internal(
        crate::time::now_ns(),
        (
            SUMMARY_RULE,
            "Storm control held back alerts of a rule that fired faster than its \
             limit; this counts them. Every one was raised: see the rule's own \
             alerts before and after.",
        ),
        Priority::Warning,
        format!(
            "{} alerts of rule {rule:?} suppressed by storm control (first {}, last {}; limit {}/s, burst {})",
            b.suppressed,
            rfc3339_nanos(b.first_ns),
            rfc3339_nanos(b.last_ns),
            b.limit.rate,
            b.limit.burst
        ),
        vec![
            ("rule".into(), FieldValue::Str(rule.to_owned())),
            ("suppressed".into(), FieldValue::UInt(b.suppressed)),
            ("first".into(), FieldValue::Str(rfc3339_nanos(b.first_ns))),
            ("last".into(), FieldValue::Str(rfc3339_nanos(b.last_ns))),
        ],
        hostname,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(rule: &str, time_ns: u64) -> Alert {
        let mut a = Alert::internal(
            time_ns,
            (rule, ""),
            Priority::Warning,
            String::new(),
            vec![],
            "h",
        );
        a.source = Source::Syscall;
        a
    }

    fn storm(rate: f64, burst: f64) -> Storm {
        Storm::new(
            Settings {
                default: Some(Limit { rate, burst }),
                rules: vec![
                    (
                        "quiet".into(),
                        Some(Limit {
                            rate: 0.0,
                            burst: 1.0,
                        }),
                    ),
                    ("free".into(), None),
                ],
                summary_interval: Duration::from_secs(60),
            },
            "h",
        )
    }

    #[test]
    fn a_burst_passes_then_the_rate_and_the_rest_is_summarised() {
        let mut s = storm(10.0, 100.0);
        let t0 = Instant::now();
        let mut passed = 0;
        // 100,000 alerts over 10 s.
        for i in 0..100_000u64 {
            let now = t0 + Duration::from_micros(i * 100);
            if s.admit(&alert("noisy", 1_000 + i), now) == Verdict::Pass {
                passed += 1;
            }
        }
        // The burst, plus 10/s for ~10 s.
        assert!((199..=201).contains(&passed), "{passed}");
        assert!(
            s.summaries(t0 + Duration::from_secs(30), false).is_empty(),
            "not due"
        );
        let sum = s.summaries(t0 + Duration::from_secs(61), false);
        assert_eq!(sum.len(), 1);
        let f = &sum[0].output_fields;
        assert_eq!(f[0].1, FieldValue::Str("noisy".into()));
        assert_eq!(f[1].1, FieldValue::UInt(100_000 - passed));
        assert_eq!(sum[0].source, Source::Internal);
        // Counted once: nothing more to say.
        assert!(s.summaries(t0 + Duration::from_secs(200), true).is_empty());
    }

    #[test]
    fn internal_alerts_and_unlimited_rules_always_pass_and_overrides_apply() {
        let mut s = storm(0.0, 1.0);
        let now = Instant::now();
        let internal = Alert::internal(
            1,
            ("mamori internal: event loss", ""),
            Priority::Critical,
            String::new(),
            vec![],
            "h",
        );
        for _ in 0..1000 {
            assert_eq!(s.admit(&internal, now), Verdict::Pass);
            assert_eq!(s.admit(&alert("free", 1), now), Verdict::Pass);
        }
        assert_eq!(s.admit(&alert("quiet", 1), now), Verdict::Pass);
        assert_eq!(s.admit(&alert("quiet", 2), now), Verdict::Suppressed);
        assert_eq!(s.admit(&alert("other", 3), now), Verdict::Pass);
        assert_eq!(s.admit(&alert("other", 4), now), Verdict::Suppressed);
        let sum = s.summaries(now, true);
        assert_eq!(sum.len(), 2);
    }

    #[test]
    fn settings_from_the_file_and_bad_values_named() {
        let parse = |yaml: &str| {
            let f = crate::config::parse(yaml, std::path::Path::new("m.yaml")).unwrap();
            settings(&f.storm_control, std::path::Path::new("m.yaml"))
        };
        assert_eq!(parse("{}").unwrap(), Settings::default());
        let s = parse(
            "storm_control:\n  rate: 2\n  rules:\n    Noisy: {burst: 5}\n    Trusted: {enabled: false}\n",
        )
        .unwrap();
        assert_eq!(
            s.default,
            Some(Limit {
                rate: 2.0,
                burst: 1000.0
            })
        );
        assert_eq!(
            s.rules,
            vec![
                (
                    "Noisy".to_owned(),
                    Some(Limit {
                        rate: 2.0,
                        burst: 5.0
                    })
                ),
                ("Trusted".to_owned(), None)
            ]
        );
        assert_eq!(
            parse("storm_control: {enabled: false}").unwrap().default,
            None
        );
        for (yaml, key) in [
            ("storm_control: {rate: -1}", "`storm_control.rate`"),
            ("storm_control: {burst: 0}", "`storm_control.burst`"),
            (
                "storm_control: {rules: {R: {rate: .nan}}}",
                "`storm_control.rules.R.rate`",
            ),
            (
                "storm_control: {summary_interval_s: 0}",
                "`storm_control.summary_interval_s`",
            ),
        ] {
            let e = parse(yaml)
                .err()
                .unwrap_or_else(|| panic!("{yaml} accepted"));
            assert!(e.to_string().contains(key), "{yaml}: {e}");
        }
    }

    #[test]
    fn off_means_everything_passes() {
        let mut s = Storm::new(
            Settings {
                default: None,
                ..Default::default()
            },
            "h",
        );
        let now = Instant::now();
        for i in 0..10_000 {
            assert_eq!(s.admit(&alert("r", i), now), Verdict::Pass);
        }
        assert!(s.summaries(now, true).is_empty());
    }
}
