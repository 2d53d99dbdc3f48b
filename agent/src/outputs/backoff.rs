//! Retry delays shared by the outputs that deliver over the network.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// Retry delays: `initial * 2^attempt`, capped at `max`, each scaled by a
/// random factor in [0.5, 1) so many agents do not retry in step.
#[derive(Clone, Debug)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The delays of one run of failures. backon's jitter adds up to the
    /// delay itself ([1, 2) times it): halving both ends gives [0.5, 1).
    pub fn delays(&self) -> <ExponentialBuilder as BackoffBuilder>::Backoff {
        ExponentialBuilder::default()
            .with_min_delay(self.initial / 2)
            .with_max_delay(self.max / 2)
            .with_jitter()
            .without_max_times()
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_are_jittered_below_each_step() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
        };
        let mut runs = Vec::new();
        for _ in 0..20 {
            let d: Vec<Duration> = b.delays().take(8).collect();
            for (i, d) in d.iter().enumerate() {
                let step = (b.initial * (1 << i)).min(b.max);
                assert!(
                    *d >= step / 2 && *d < step,
                    "attempt {i}: {d:?} for {step:?}"
                );
            }
            runs.push(d);
        }
        assert!(runs.iter().any(|r| r != &runs[0]), "no jitter: {runs:?}");
    }
}
