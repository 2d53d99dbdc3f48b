//! The rules' domain names (`fd.sip.name = NAME`) handed to the state's
//! resolver, once before events are evaluated and then in a task.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use mamori_rules::RuleSet;

use crate::{
    state::names::Names,
    telemetry::{exposition::Families, metrics::Metrics},
};

/// The domain names the rules compare `fd.*ip.name` with (as they are
/// written: names are not case-folded, as in Falco).
pub fn names_in(rules: &RuleSet) -> BTreeSet<String> {
    use mamori_rules::Field as F;
    [F::FdSipName, F::FdCipName, F::FdLipName, F::FdRipName]
        .into_iter()
        .flat_map(|f| rules.compared_strings(f))
        .filter_map(|b| String::from_utf8(b).ok())
        .filter(|n| !n.is_empty())
        .collect()
}

/// Resolves the rules' domain names once before events are evaluated
/// (bounded: a resolver that does not answer delays the start by at most
/// a few seconds), then every [`crate::state::names::REFRESH`] in a task.
pub async fn resolve(names: &Names, rules: &RuleSet, metrics: &Metrics) {
    names.want(names_in(rules));
    let _ = tokio::time::timeout(Duration::from_secs(3), names.refresh()).await;
    tokio::spawn(names.clone().resolve_forever());
    let n = names.clone();
    metrics.add_source(Arc::new(move |f: &mut Families<'_>| {
        let (failed, dropped) = n.counts();
        f.counter(
            "mamori_name_lookups_failed",
            "Lookups of domain names in the rules (fd.sip.name...) that failed.",
            failed,
        )?;
        f.gauge(
            "mamori_names_unresolved",
            "Domain names in the rules beyond the resolver's cap, left unresolved.",
            dropped as i64,
        )
    }));
}
