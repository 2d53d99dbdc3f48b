//! Is each pipeline stage making progress? A stage beats when it finishes
//! a unit of work; it is stuck when work has waited for it longer than
//! [`STUCK_AFTER`] without a beat. `/healthz` fails then, so Kubernetes
//! restarts a wedged agent; an idle agent, or one held back by the stage
//! after it, is not stuck.

use std::{
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use super::exposition::{self, Families};

pub const STUCK_AFTER: Duration = Duration::from_secs(30);

fn epoch() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

/// A stage's beat: the time of its last progress.
#[derive(Clone, Debug)]
pub struct Heartbeat(Arc<AtomicU64>);

impl Heartbeat {
    pub fn beat(&self) {
        self.0
            .store(epoch().elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn age(&self, now: Instant) -> Duration {
        let at = Duration::from_millis(self.0.load(Ordering::Relaxed));
        now.saturating_duration_since(epoch() + at)
    }
}

/// Whether work is waiting for a stage (a queue with items in it, or a
/// stage that should be polling because nothing holds it back).
pub type Waiting = Box<dyn Fn() -> bool + Send + Sync>;

struct Stage {
    name: &'static str,
    beat: Heartbeat,
    waiting: Waiting,
}

#[derive(Default)]
pub struct Liveness {
    stages: Mutex<Vec<Stage>>,
}

impl Liveness {
    /// Registers a stage; it counts as having just made progress.
    pub fn stage(&self, name: &'static str, waiting: Waiting) -> Heartbeat {
        let beat = Heartbeat(Arc::default());
        beat.beat();
        if let Ok(mut v) = self.stages.lock() {
            v.push(Stage {
                name,
                beat: beat.clone(),
                waiting,
            });
        }
        beat
    }

    /// Stages with work waiting and no progress for `STUCK_AFTER`.
    pub fn stuck(&self) -> Vec<&'static str> {
        self.stuck_at(Instant::now())
    }

    fn stuck_at(&self, now: Instant) -> Vec<&'static str> {
        let Ok(v) = self.stages.lock() else {
            return Vec::new();
        };
        v.iter()
            .filter(|s| (s.waiting)() && s.beat.age(now) >= STUCK_AFTER)
            .map(|s| s.name)
            .collect()
    }

    /// `mamori_stage_*` for `/metrics`.
    pub fn families(&self, f: &mut Families<'_>) -> exposition::Result {
        let Ok(v) = self.stages.lock() else {
            return Ok(());
        };
        let now = Instant::now();
        f.gauges(
            "mamori_stage_progress_age_seconds",
            "Seconds since each pipeline stage last made progress.",
            v.iter()
                .map(|s| ([("stage", s.name)], s.beat.age(now).as_secs_f64())),
        )?;
        f.gauges(
            "mamori_stage_work_waiting",
            "1 when work is waiting for the stage.",
            v.iter()
                .map(|s| ([("stage", s.name)], u64::from((s.waiting)()))),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;

    #[test]
    fn stuck_means_waiting_work_and_no_progress() {
        let l = Liveness::default();
        let busy = Arc::new(AtomicBool::new(false));
        let b = busy.clone();
        let beat = l.stage("detect", Box::new(move || b.load(Ordering::Relaxed)));
        l.stage("idle", Box::new(|| false));
        let later = Instant::now() + STUCK_AFTER + Duration::from_secs(1);
        assert!(
            l.stuck_at(later).is_empty(),
            "no work waiting: idle, not stuck"
        );
        busy.store(true, Ordering::Relaxed);
        assert!(
            l.stuck_at(Instant::now()).is_empty(),
            "waiting, but it just beat"
        );
        assert_eq!(l.stuck_at(later), vec!["detect"]);
        beat.beat();
        assert!(l.stuck_at(Instant::now()).is_empty());
        let l = Arc::new(l);
        let text = exposition::encode(&[Arc::new(move |f: &mut Families<'_>| l.families(f))]);
        assert!(
            text.contains("mamori_stage_work_waiting{stage=\"detect\"} 1"),
            "{text}"
        );
    }
}
