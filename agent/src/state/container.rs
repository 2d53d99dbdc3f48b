//! Containers: identity from cgroup names, metadata from the runtime.
//!
//! Runtimes name a container's cgroup after its id: `libpod-<id>.scope`
//! (podman), `docker-<id>.scope` or `/docker/<id>` (docker),
//! `cri-containerd-<id>.scope` or `.../<id>` (containerd), `crio-<id>.scope`
//! (CRI-O). The kernel reports the cgroup's leaf name and its parent's at
//! exec; the id is the 64-hex-digit run in either.
//!
//! Metadata ([`runtime::lookup`]) is read on a thread of its own when a
//! container is first seen; the detector holds that container's events
//! until it arrives, at most [`METADATA_WAIT`], so conditions on
//! `container.image` are right from the container's first exec.

use std::{
    collections::VecDeque,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use rustc_hash::FxHashMap as HashMap;
use tokio::sync::mpsc;

use super::{
    cri,
    runtime::{self, Metadata},
};
use crate::{
    event::Text,
    telemetry::exposition::{self, Families},
};

/// How long a container's events wait for its metadata.
pub const METADATA_WAIT: Duration = Duration::from_millis(500);
/// Lookups running at once, at most: a flood of new (or fake) containers
/// cannot start threads without bound; past it a container's metadata is
/// unknown (counted in `mamori_container_lookups_refused`).
pub const MAX_IN_FLIGHT: usize = 32;
/// After a hold ran out (the runtime did not answer in time), events are
/// not held again for this long: a slow or hostile runtime delays the
/// stream at most once per period, and events of other containers and of
/// the host flow on.
pub const HOLD_BACKOFF: Duration = Duration::from_secs(30);
/// Containers remembered; past it the oldest are forgotten (and looked up
/// again if they show up).
pub const CAPACITY: usize = 16_384;

/// A container a process runs in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Container {
    /// The full 64-hex id.
    pub full_id: Arc<str>,
    /// podman, docker, containerd, cri-o.
    pub runtime: &'static str,
}

impl Container {
    /// The 12-character id Falco shows.
    pub fn id(&self) -> &str {
        &self.full_id[..12.min(self.full_id.len())]
    }
}

/// Parses a container from the cgroup leaf and parent names.
pub fn from_cgroup(leaf: Option<&Text>, parent: Option<&Text>) -> Option<Container> {
    for name in [leaf, parent].into_iter().flatten() {
        let s = name.to_str_lossy();
        if s.contains("conmon") {
            return None; // podman's monitor process, not the container
        }
        if let Some(id) = hex_run(&s) {
            let runtime = if s.starts_with("libpod") {
                "podman"
            } else if s.starts_with("docker") {
                "docker"
            } else if s.starts_with("crio") {
                "cri-o"
            } else {
                "containerd"
            };
            return Some(Container {
                full_id: Arc::from(id),
                runtime,
            });
        }
    }
    None
}

/// The first run of exactly 64 lowercase hex digits.
fn hex_run(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && (b[i].is_ascii_digit() || (b'a'..=b'f').contains(&b[i])) {
            i += 1;
        }
        if i - start == 64 {
            return Some(&s[start..i]);
        }
        i += 1;
    }
    None
}

/// What is known of a container's metadata.
#[derive(Clone, Debug)]
pub enum Meta {
    Pending {
        since: Instant,
    },
    Known(Arc<Metadata>),
    /// The runtime's state had nothing (the container is gone, or its
    /// runtime keeps state where mamori does not look).
    Unknown,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    pub lookups: AtomicU64,
    pub found: AtomicU64,
    pub not_found: AtomicU64,
    /// Events that waited for metadata, and for how long in total.
    pub held_events: AtomicU64,
    pub held_ns: AtomicU64,
    /// Metadata still missing when the wait ran out.
    pub wait_expired: AtomicU64,
    /// Lookups not started: [`MAX_IN_FLIGHT`] were running.
    pub refused: AtomicU64,
    pub known: AtomicU64,
}

type Answer = (Arc<str>, Option<Metadata>);

/// Containers learnt so far, by the kernel's cgroup id (so events of
/// processes the table does not know still find their container), and
/// their metadata by full id.
pub struct Containers {
    by_cgroup: HashMap<u64, Container>,
    cgroup_order: VecDeque<u64>,
    meta: HashMap<Arc<str>, Meta>,
    meta_order: VecDeque<Arc<str>>,
    /// Where runtime state is read; `None`: no lookups (tests, replay).
    root: Option<PathBuf>,
    cri: Option<CriAccess>,
    answers_tx: mpsc::UnboundedSender<Answer>,
    answers: mpsc::UnboundedReceiver<Answer>,
    pub stats: Arc<Stats>,
    /// Ids whose metadata arrived, when recording.
    journal: Option<Vec<Arc<str>>>,
    /// Lookups running now.
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
    /// No holding until then (a hold ran out: see [`HOLD_BACKOFF`]).
    no_hold_until: Option<Instant>,
}

/// How lookups reach the runtimes' CRI sockets.
#[derive(Clone)]
struct CriAccess {
    /// The agent's runtime, for the async client.
    handle: tokio::runtime::Handle,
    /// Tried in order; the first that exists is used.
    sockets: Vec<PathBuf>,
}

impl CriAccess {
    /// Asks the runtime's CRI service; `m` is what the files said.
    fn enrich(&self, id: &str, m: Option<Metadata>) -> Option<Metadata> {
        let Some(socket) = self.sockets.iter().find(|s| s.exists()) else {
            return m;
        };
        let mut out = m.clone().unwrap_or_default();
        let asked = self.handle.block_on(async {
            let client = cri::Client::connect(socket).await?;
            cri::enrich(&client, id, &mut out).await
        });
        match asked {
            Ok(true) => Some(out),
            Ok(false) => m,
            Err(e) => {
                tracing::debug!(error = %e, container = id, "CRI lookup failed");
                m
            }
        }
    }
}

impl Default for Containers {
    fn default() -> Self {
        Self::new(None, Vec::new())
    }
}

impl Containers {
    /// `root`: the host's root, where runtimes keep their state;
    /// `cri_sockets`: CRI sockets to ask (default: containerd's and
    /// CRI-O's usual ones under `root`).
    pub fn new(root: Option<PathBuf>, cri_sockets: Vec<PathBuf>) -> Self {
        let (answers_tx, answers) = mpsc::unbounded_channel();
        let cri = match (&root, tokio::runtime::Handle::try_current()) {
            (Some(root), Ok(handle)) => Some(CriAccess {
                handle,
                sockets: if cri_sockets.is_empty() {
                    cri::DEFAULT_SOCKETS.iter().map(|s| root.join(s)).collect()
                } else {
                    cri_sockets
                },
            }),
            _ => None,
        };
        Self {
            by_cgroup: HashMap::default(),
            cgroup_order: VecDeque::new(),
            meta: HashMap::default(),
            meta_order: VecDeque::new(),
            root,
            cri,
            answers_tx,
            answers,
            stats: Arc::default(),
            journal: None,
            in_flight: Arc::default(),
            no_hold_until: None,
        }
    }

    /// Remembers `c` under its cgroup and starts its metadata lookup.
    pub fn learn(&mut self, cgroup_id: u64, c: Container) {
        self.request(&c);
        if cgroup_id != 0 && self.by_cgroup.insert(cgroup_id, c).is_none() {
            self.cgroup_order.push_back(cgroup_id);
            if self.cgroup_order.len() > CAPACITY
                && let Some(old) = self.cgroup_order.pop_front()
            {
                self.by_cgroup.remove(&old);
            }
        }
    }

    pub fn by_cgroup(&self, cgroup_id: u64) -> Option<&Container> {
        self.by_cgroup.get(&cgroup_id)
    }

    /// Starts a lookup unless one was made (or lookups are off).
    pub fn request(&mut self, c: &Container) {
        let full_id = &c.full_id;
        let Some(root) = &self.root else { return };
        if self.meta.contains_key(full_id) {
            return;
        }
        let busy = self.in_flight.load(Relaxed) >= MAX_IN_FLIGHT;
        self.meta.insert(
            full_id.clone(),
            if busy {
                Meta::Unknown
            } else {
                Meta::Pending {
                    since: Instant::now(),
                }
            },
        );
        self.meta_order.push_back(full_id.clone());
        if self.meta_order.len() > CAPACITY
            && let Some(old) = self.meta_order.pop_front()
        {
            self.meta.remove(&old);
        }
        if busy {
            Stats::bump(&self.stats.refused);
            return;
        }
        Stats::bump(&self.stats.lookups);
        self.in_flight.fetch_add(1, Relaxed);
        let in_flight = self.in_flight.clone();
        let (root, id, tx) = (root.clone(), full_id.clone(), self.answers_tx.clone());
        // Kubernetes runtimes also answer over CRI (pod labels live there).
        let cri = self
            .cri
            .clone()
            .filter(|_| matches!(c.runtime, "containerd" | "cri-o"));
        let spawned = std::thread::Builder::new()
            .name("mamori-container".into())
            .spawn(move || {
                let mut m = runtime::lookup(&root, &id);
                if let Some(cri) = cri {
                    m = cri.enrich(&id, m);
                }
                if let Some(m) = &mut m {
                    super::cni::attach(&root, &id, m);
                }
                in_flight.fetch_sub(1, Relaxed);
                let _ = tx.send((id, m));
            });
        if spawned.is_err() {
            self.in_flight.fetch_sub(1, Relaxed);
            self.meta.insert(full_id.clone(), Meta::Unknown);
        }
    }

    /// Takes in the lookups that finished.
    pub fn absorb(&mut self) {
        while let Ok(answer) = self.answers.try_recv() {
            self.settle(answer);
        }
    }

    /// Waits for the next lookup to finish (cancel-safe).
    pub async fn next_answer(&mut self) {
        if let Some(answer) = self.answers.recv().await {
            self.settle(answer);
        }
    }

    fn settle(&mut self, (id, m): Answer) {
        // An answer for a container forgotten meanwhile is dropped.
        let Some(slot) = self.meta.get_mut(&id) else {
            return;
        };
        *slot = match m {
            Some(m) => {
                Stats::bump(&self.stats.found);
                if let Some(j) = &mut self.journal {
                    j.push(id.clone());
                }
                Meta::Known(Arc::new(m))
            }
            None => {
                Stats::bump(&self.stats.not_found);
                Meta::Unknown
            }
        };
        self.stats.known.store(self.meta.len() as u64, Relaxed);
    }

    /// Metadata known without a lookup (replay, rules tests).
    pub fn insert_metadata(&mut self, full_id: &str, m: Metadata) {
        let id: Arc<str> = full_id.into();
        if self
            .meta
            .insert(id.clone(), Meta::Known(Arc::new(m)))
            .is_none()
        {
            self.meta_order.push_back(id);
        }
    }

    /// Starts noting the containers whose metadata arrives (recording).
    pub fn keep_journal(&mut self) {
        self.journal = Some(Vec::new());
    }

    /// The containers whose metadata arrived since the last call.
    pub fn take_journal(&mut self) -> Vec<Arc<str>> {
        self.journal
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Every container with known metadata.
    pub fn known(&self) -> impl Iterator<Item = (&str, &Metadata)> {
        self.meta.iter().filter_map(|(id, m)| match m {
            Meta::Known(m) => Some((&**id, &**m)),
            _ => None,
        })
    }

    pub fn meta(&self, full_id: &str) -> Option<&Meta> {
        self.meta.get(full_id)
    }

    pub fn metadata(&self, full_id: &str) -> Option<&Metadata> {
        match self.meta.get(full_id)? {
            Meta::Known(m) => Some(m),
            _ => None,
        }
    }

    /// Until when an event of this container should wait for metadata
    /// (`None`: not at all — known, unknown, or holding is backed off).
    pub fn wait_deadline(&self, full_id: &str) -> Option<Instant> {
        if self.no_hold_until.is_some_and(|t| Instant::now() < t) {
            return None;
        }
        match self.meta.get(full_id)? {
            Meta::Pending { since } => Some(*since + METADATA_WAIT),
            _ => None,
        }
    }

    /// A hold ran out: the runtime is slow or does not answer. Events are
    /// not held again for [`HOLD_BACKOFF`].
    pub fn hold_expired(&mut self) {
        Stats::bump(&self.stats.wait_expired);
        self.no_hold_until = Some(Instant::now() + HOLD_BACKOFF);
    }

    pub fn len(&self) -> usize {
        self.by_cgroup.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_cgroup.is_empty()
    }
}

impl Stats {
    fn bump(c: &AtomicU64) {
        c.fetch_add(1, Relaxed);
    }

    pub fn held(&self, waited: Duration) {
        Self::bump(&self.held_events);
        self.held_ns.fetch_add(waited.as_nanos() as u64, Relaxed);
    }

    /// `mamori_container*` for `/metrics`.
    pub fn families(&self, f: &mut Families<'_>) -> exposition::Result {
        let counters = [
            (
                "mamori_container_lookups",
                "Container metadata lookups started.",
                &self.lookups,
            ),
            (
                "mamori_container_lookups_found",
                "Lookups that found the container's runtime state.",
                &self.found,
            ),
            (
                "mamori_container_lookups_not_found",
                "Lookups that found no runtime state.",
                &self.not_found,
            ),
            (
                "mamori_container_held_events",
                "Events held until their container's metadata arrived.",
                &self.held_events,
            ),
            (
                "mamori_container_wait_expired",
                "Holds that ran out before the metadata arrived.",
                &self.wait_expired,
            ),
            (
                "mamori_container_lookups_refused",
                "Lookups not started because the most that may run at once were running.",
                &self.refused,
            ),
        ];
        for (name, help, c) in counters {
            f.counter(name, help, c.load(Relaxed))?;
        }
        f.counter(
            "mamori_container_held_seconds",
            "Time events spent waiting for container metadata.",
            self.held_ns.load(Relaxed) as f64 / 1e9,
        )?;
        f.gauge(
            "mamori_containers",
            "Containers with metadata remembered.",
            self.known.load(Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f1c8a2be7d9c0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071829";

    #[test]
    fn runtime_naming_schemes() {
        for (leaf, parent, runtime) in [
            (format!("libpod-{ID}.scope"), "machine.slice", "podman"),
            (format!("libpod-{ID}"), "libpod_parent", "podman"),
            (format!("docker-{ID}.scope"), "system.slice", "docker"),
            (ID.to_owned(), "docker", "containerd"),
            (
                format!("cri-containerd-{ID}.scope"),
                "kubepods-besteffort-pod1.slice",
                "containerd",
            ),
            (format!("crio-{ID}.scope"), "kubepods.slice", "cri-o"),
        ] {
            let c =
                from_cgroup(Some(&Text::from(leaf.as_str())), Some(&Text::from(parent))).unwrap();
            assert_eq!(&*c.full_id, ID);
            assert_eq!(c.id(), &ID[..12]);
            assert_eq!(c.runtime, runtime, "{leaf}");
        }
        // A sub-cgroup made inside the container: the id is in the parent.
        let c = from_cgroup(
            Some(&Text::from("container")),
            Some(&Text::from(format!("libpod-{ID}").as_str())),
        )
        .unwrap();
        assert_eq!(&*c.full_id, ID);
    }

    #[test]
    fn host_and_conmon_cgroups_are_not_containers() {
        assert!(
            from_cgroup(
                Some(&Text::from("session-3.scope")),
                Some(&Text::from("user-0.slice"))
            )
            .is_none()
        );
        assert!(
            from_cgroup(
                Some(&Text::from(format!("libpod-conmon-{ID}.scope").as_str())),
                None
            )
            .is_none()
        );
        assert!(from_cgroup(None, None).is_none());
    }

    /// A runtime that accepts connections and never answers: lookups stay
    /// bounded, and once a hold runs out events are not held again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lookups_are_bounded_and_a_silent_runtime_stops_the_holds() {
        let dir = std::env::temp_dir().join(format!("mamori-silent-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("cri.sock");
        let _ = std::fs::remove_file(&sock);
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let mut c = Containers::new(Some(dir.clone()), vec![sock]);
        let id = |i: usize| -> Arc<str> { format!("{:064x}", i + 1).into() };
        for i in 0..MAX_IN_FLIGHT + 8 {
            c.request(&Container {
                full_id: id(i),
                runtime: "containerd",
            });
        }
        assert_eq!(c.stats.refused.load(Relaxed), 8);
        assert_eq!(c.stats.lookups.load(Relaxed), MAX_IN_FLIGHT as u64);
        assert!(matches!(c.meta(&id(MAX_IN_FLIGHT)), Some(Meta::Unknown)));
        assert!(c.wait_deadline(&id(0)).is_some());
        c.hold_expired();
        assert!(c.wait_deadline(&id(0)).is_none(), "holding backs off");
        assert_eq!(c.stats.wait_expired.load(Relaxed), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
