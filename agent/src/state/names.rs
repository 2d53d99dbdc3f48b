//! Domain names the rules compare `fd.sip.name`, `fd.cip.name`,
//! `fd.lip.name` and `fd.rip.name` with, resolved by the agent as Falco
//! does: the names a rule names are looked up through the host's resolver
//! (`/etc/hosts`, `/etc/resolv.conf`, via getaddrinfo) now and every
//! [`REFRESH`], and an address has a name when it is one of the name's
//! current addresses. Reverse lookups would let whoever controls an
//! address's PTR record choose its name; forward lookups of the rules'
//! own names cannot be steered that way.

use std::{
    collections::{BTreeSet, HashMap},
    net::IpAddr,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::Duration,
};

use tokio::sync::Notify;
use tracing::{debug, warn};

/// How often every name is looked up again (a short TTL: addresses of
/// cloud endpoints and Kubernetes services move).
pub const REFRESH: Duration = Duration::from_secs(30);
/// Names resolved at most; more in the rules are left unresolved (and
/// reported).
pub const MAX_NAMES: usize = 256;
/// Addresses kept per name.
pub const MAX_ADDRS: usize = 32;
/// How long one lookup may take.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// The names the rules want and the addresses they have, shared by the
/// detector (which reads) and the resolver task (which writes).
#[derive(Clone, Default)]
pub struct Names(Arc<Inner>);

#[derive(Default)]
struct Inner {
    wanted: Mutex<BTreeSet<String>>,
    by_ip: RwLock<HashMap<IpAddr, Vec<Arc<str>>>>,
    changed: Notify,
    /// Names whose last lookup failed (each warned of once until it
    /// resolves again).
    failing: Mutex<BTreeSet<String>>,
    /// Lookups that failed (no such name, resolver unreachable).
    failed: AtomicU64,
    /// Names the rules named beyond [`MAX_NAMES`].
    dropped: AtomicU64,
}

impl Names {
    /// Sets the names to resolve (those the loaded rules compare with);
    /// the resolver looks them up at once.
    pub fn want(&self, names: BTreeSet<String>) {
        let mut names = names;
        if names.len() > MAX_NAMES {
            let extra = names.len() - MAX_NAMES;
            warn!(
                names = names.len(),
                max = MAX_NAMES,
                "the rules compare addresses with more domain names than are resolved; {extra} stay unresolved"
            );
            self.0.dropped.store(extra as u64, Relaxed);
            names = names.into_iter().take(MAX_NAMES).collect();
        }
        let mut w = self.0.wanted.lock().unwrap_or_else(|e| e.into_inner());
        if *w != names {
            *w = names;
            drop(w);
            self.0.changed.notify_one();
        }
    }

    /// The wanted names `ip` is currently an address of.
    pub fn of(&self, ip: &IpAddr) -> Option<Vec<Arc<str>>> {
        let map = self.0.by_ip.read().unwrap_or_else(|e| e.into_inner());
        map.get(ip).cloned()
    }

    /// Lookups that failed, and names not resolved for the cap.
    pub fn counts(&self) -> (u64, u64) {
        (self.0.failed.load(Relaxed), self.0.dropped.load(Relaxed))
    }

    /// Looks every wanted name up and replaces the table with the
    /// answers. A name whose lookup fails keeps no address.
    pub async fn refresh(&self) {
        let wanted: Vec<String> = {
            let w = self.0.wanted.lock().unwrap_or_else(|e| e.into_inner());
            w.iter().cloned().collect()
        };
        let mut by_ip: HashMap<IpAddr, Vec<Arc<str>>> = HashMap::new();
        for name in wanted {
            let lookup = tokio::net::lookup_host((name.as_str(), 0));
            let addrs: BTreeSet<IpAddr> = match tokio::time::timeout(LOOKUP_TIMEOUT, lookup).await {
                Ok(Ok(a)) => a.map(|s| canonical(s.ip())).take(MAX_ADDRS).collect(),
                answer => {
                    self.0.failed.fetch_add(1, Relaxed);
                    let mut failing = self.0.failing.lock().unwrap_or_else(|e| e.into_inner());
                    if failing.insert(name.clone()) {
                        let why = match answer {
                            Ok(Err(e)) => e.to_string(),
                            _ => "timed out".into(),
                        };
                        warn!(
                            name,
                            error = why,
                            "a domain name in the rules does not resolve: fd.*ip.name never matches it until it does"
                        );
                    }
                    continue;
                }
            };
            self.0
                .failing
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&name);
            let name: Arc<str> = name.into();
            for ip in addrs {
                by_ip.entry(ip).or_default().push(name.clone());
            }
        }
        *self.0.by_ip.write().unwrap_or_else(|e| e.into_inner()) = by_ip;
    }

    /// Resolves the wanted names every [`REFRESH`], and at once when they
    /// change.
    pub async fn resolve_forever(self) {
        loop {
            self.refresh().await;
            let n = self.0.wanted.lock().map(|w| w.len()).unwrap_or(0);
            if n > 0 {
                debug!(names = n, "domain names in the rules resolved");
            }
            tokio::select! {
                () = tokio::time::sleep(REFRESH) => {}
                () = self.0.changed.notified() => {}
            }
        }
    }
}

/// An IPv4 address however it came (`::ffff:a.b.c.d` is the IPv4 one).
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_name_is_found_by_its_current_addresses() {
        let names = Names::default();
        names.want(["localhost".to_owned()].into());
        names.refresh().await;
        let got = names.of(&"127.0.0.1".parse().unwrap()).unwrap();
        assert_eq!(got.iter().map(|n| &**n).collect::<Vec<_>>(), ["localhost"]);
        assert!(names.of(&"127.0.0.2".parse().unwrap()).is_none());
        // No longer wanted: no longer known after the next refresh.
        names.want(BTreeSet::new());
        names.refresh().await;
        assert!(names.of(&"127.0.0.1".parse().unwrap()).is_none());
    }

    #[tokio::test]
    async fn a_name_that_does_not_resolve_is_counted_and_has_no_address() {
        let names = Names::default();
        names.want(["mamori-no-such-name.invalid".to_owned()].into());
        names.refresh().await;
        assert_eq!(names.counts().0, 1);
    }

    #[test]
    fn mapped_ipv4_is_ipv4() {
        let ip: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(canonical(ip), "10.1.2.3".parse::<IpAddr>().unwrap());
    }
}
