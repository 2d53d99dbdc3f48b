//! Loading files into a [`RuleSet`], and evaluating events against it.

use std::collections::BTreeSet;

use rustc_hash::FxHashMap as HashMap;

use crate::{
    check::{CExpr, Checker},
    collect::{Collected, Collector, RuleDef},
    compile::{self, Node, Slots},
    diag::{Diagnostic, Diagnostics, SourceFile},
    eval::{Cache, Extract, eval},
    fields::{Field, FieldArg},
    fill::{self, Unfilled},
    format::{Format, Rendered},
    guard::{self, Bits, Guards},
    prefilter::{OpenPrefilter, admits_failure, rule_guard},
    priority::Priority,
    spec,
    types::{self, Types},
    value::Value,
    yaml,
};

mod queries;

/// Falco's `rule_matching`: stop at the first matching rule (default), or
/// report every matching rule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MatchMode {
    #[default]
    First,
    All,
}

/// A loaded rule.
#[derive(Debug)]
pub struct Rule {
    pub name: String,
    pub desc: String,
    pub priority: Priority,
    pub tags: Vec<String>,
    pub enabled: bool,
    /// Event types the condition can match.
    pub types: Types,
    /// File and line of the definition.
    pub file: String,
    pub line: u32,
    pub(crate) format: Option<Format>,
}

/// Counts for `rules validate`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    pub rules: usize,
    pub enabled_rules: usize,
    pub macros: usize,
    pub lists: usize,
}

/// The result of a load: a ruleset when there are no errors, and every
/// diagnostic either way.
#[derive(Debug)]
pub struct LoadResult {
    pub ruleset: Option<RuleSet>,
    pub diagnostics: Vec<Diagnostic>,
    pub stats: Stats,
    /// Fields rules depend on that mamori never fills (for an enabled rule
    /// each is also a warning).
    pub unfilled: Vec<Unfilled>,
}

/// One rule in a bucket.
#[derive(Debug)]
struct Entry {
    rule: u32,
    /// On an open: the rule's terms in its bucket's [`Guards`]; the
    /// condition is evaluated only for events that admit one of them.
    guard: Option<Bits>,
    node: Node,
}

/// Compiled rules, indexed by event type.
#[derive(Debug)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    slots: Vec<(Field, FieldArg)>,
    type_ids: HashMap<&'static str, u16>,
    type_names: Vec<&'static str>,
    /// Per event type id: the enabled rules that can match it, in rule
    /// order, each with its condition specialised for that type.
    buckets: Vec<Vec<Entry>>,
    /// The guards of each bucket's rules (see [`crate::guard`]).
    guards: Vec<Guards>,
    /// Slots of `fd.name` and `evt.rawres`, which the guards read.
    guard_slots: (u16, u16),
    pub mode: MatchMode,
    /// The definitions as loaded, for [`RuleSet::explain`].
    collected: Collected,
    /// What an open must look like for some rule to match it.
    prefilter: OpenPrefilter,
    /// Event types some rule may match when the call failed.
    failures_read: BTreeSet<&'static str>,
    /// The fields enabled rules read, in conditions or outputs.
    fields_read: BTreeSet<Field>,
}

/// Loads rules files in order: later files refine earlier ones.
/// `event_types` are the event types the caller produces (its captured
/// syscalls, `procexit`...): rules are indexed by them, and a rule that
/// names none of them is reported.
pub fn load(files: &[SourceFile], mode: MatchMode, event_types: &[&'static str]) -> LoadResult {
    let mut diags = Diagnostics::default();
    let collected = collect(files, &mut diags);
    let stats = Stats {
        rules: collected.rules.len(),
        enabled_rules: collected.rules.iter().filter(|r| r.enabled).count(),
        macros: collected.macros.len(),
        lists: collected.lists.len(),
    };
    let mut checker = Checker::new(&collected);
    for (name, e) in checker.parse_macros() {
        diags.error(
            &files[e.file],
            e.pos,
            Some(format!("macro '{name}'")),
            e.message,
        );
    }
    let mut slots = Slots::default();
    let names = event_types.to_vec();
    let (rules, conditions): (Vec<Rule>, Vec<Option<CExpr>>) = collected
        .rules
        .iter()
        .map(|def| compile_rule(files, def, &mut checker, &mut slots, &names, &mut diags))
        .unzip();
    warn_unused(files, &collected, &checker, &mut diags);
    let unfilled = fill::unfilled_uses(files, &collected, &rules, &conditions, &slots, &mut diags);
    let Index {
        buckets,
        guards,
        prefilter,
        failures_read,
    } = index(files, &rules, &conditions, &names, &mut slots, &mut diags);
    let guard_slots = (
        slots.slot(Field::FdName, &FieldArg::None),
        slots.slot(Field::EvtRawRes, &FieldArg::None),
    );
    let mut fields_read = BTreeSet::new();
    for (rule, cond) in rules.iter().zip(&conditions) {
        if let (true, Some(c)) = (rule.enabled, cond) {
            fill::condition_fields(c, &mut fields_read);
            let shown = rule.format.iter().flat_map(Format::slots);
            fields_read.extend(shown.filter_map(|s| slots.list.get(s as usize).map(|x| x.0)));
        }
    }
    let ruleset = (!diags.has_errors()).then(|| RuleSet {
        fields_read,
        guard_slots,
        guards,
        rules,
        slots: slots.list,
        type_ids: names
            .iter()
            .enumerate()
            .map(|(i, n)| (*n, i as u16))
            .collect(),
        type_names: names,
        buckets,
        mode,
        collected,
        prefilter,
        failures_read,
    });
    LoadResult {
        ruleset,
        diagnostics: diags.list,
        stats,
        unfilled,
    }
}

/// Reads every file's items, later files refining earlier ones.
fn collect(files: &[SourceFile], diags: &mut Diagnostics) -> Collected {
    let mut collector = Collector::new(files, diags);
    for (i, f) in files.iter().enumerate() {
        match yaml::parse(&f.text) {
            Ok(docs) => {
                let items = spec::read_items(f, &docs, collector.diags);
                for item in items {
                    collector.apply(i, item);
                }
            }
            Err(e) => collector
                .diags
                .error(f, e.pos, None, format!("YAML: {}", e.message)),
        }
    }
    collector.out
}

/// Checks one rule's condition, exceptions and output; an error makes it
/// disabled (and fails the load unless the rule is disabled already or
/// skips unknown fields).
fn compile_rule(
    files: &[SourceFile],
    def: &RuleDef,
    checker: &mut Checker<'_>,
    slots: &mut Slots,
    names: &[&'static str],
    diags: &mut Diagnostics,
) -> (Rule, Option<CExpr>) {
    let item = Some(format!("rule '{}'", def.name));
    let src = &files[def.file];
    let report = |diags: &mut Diagnostics, e: crate::check::CheckError| {
        let f = &files[e.file];
        if def.skip_if_unknown_filter && e.unknown_field {
            diags.warn(
                f,
                e.pos,
                item.clone(),
                format!("{}; rule skipped (skip-if-unknown-filter)", e.message),
            );
        } else if !def.enabled {
            diags.warn(
                f,
                e.pos,
                item.clone(),
                format!("{} (the rule is disabled)", e.message),
            );
        } else {
            diags.error(f, e.pos, item.clone(), e.message);
        }
    };
    let mut cond = match checker.check(&def.condition) {
        Ok(c) => Some(c),
        Err(e) => {
            report(diags, e);
            None
        }
    };
    for (exc, file) in &def.exceptions {
        match checker.exception(exc, *file) {
            Ok(Some(x)) => {
                cond = cond.map(|c| CExpr::And(vec![c, CExpr::Not(Box::new(x))]));
            }
            Ok(None) => {}
            Err(e) => {
                report(diags, e);
                cond = None;
            }
        }
    }
    let format = match Format::parse(&def.output, checker, slots) {
        Ok(f) => Some(f),
        Err((file, pos, m)) => {
            if def.enabled {
                diags.error(&files[file], pos, item.clone(), m);
            } else {
                diags.warn(
                    &files[file],
                    pos,
                    item.clone(),
                    format!("{m} (the rule is disabled)"),
                );
            }
            None
        }
    };
    let cond = cond.map(types::fold);
    let rule_types = cond
        .as_ref()
        .map_or(Types::Only(BTreeSet::new()), |c| types::types(c).0);
    if let Some(c) = &cond {
        warn_types(diags, src, def, &rule_types, names, c);
    }
    let rule = Rule {
        name: def.name.clone(),
        desc: def.desc.clone(),
        priority: def.priority,
        tags: def.tags.clone(),
        enabled: def.enabled && cond.is_some() && format.is_some(),
        types: rule_types,
        file: src.name.clone(),
        line: def.pos.line,
        format,
    };
    (rule, cond)
}

/// Warns of macros and lists no rule uses.
fn warn_unused(
    files: &[SourceFile],
    collected: &Collected,
    checker: &Checker<'_>,
    diags: &mut Diagnostics,
) {
    for m in &collected.macros {
        if !checker.used_macros.contains_key(&m.name) {
            diags.warn(
                &files[m.file],
                m.pos,
                Some(format!("macro '{}'", m.name)),
                "macro is not used by any rule",
            );
        }
    }
    for l in &collected.lists {
        if !checker.used_lists.contains_key(&l.name) {
            diags.warn(
                &files[l.file],
                l.pos,
                Some(format!("list '{}'", l.name)),
                "list is not used by any rule",
            );
        }
    }
}

/// What `load` indexes: each event type's rules, their guards, the open
/// prefilter, and the types whose failed calls some rule may match.
struct Index {
    buckets: Vec<Vec<Entry>>,
    guards: Vec<Guards>,
    prefilter: OpenPrefilter,
    failures_read: BTreeSet<&'static str>,
}

/// Indexes the enabled rules by event type, specialising each condition
/// for its type and compiling it.
fn index(
    files: &[SourceFile],
    rules: &[Rule],
    conditions: &[Option<CExpr>],
    names: &[&'static str],
    slots: &mut Slots,
    diags: &mut Diagnostics,
) -> Index {
    let mut buckets: Vec<Vec<Entry>> = (0..names.len()).map(|_| Vec::new()).collect();
    let mut guards: Vec<Guards> = (0..names.len()).map(|_| Guards::default()).collect();
    let mut prefilter = OpenPrefilter::default();
    let mut failures_read = BTreeSet::new();
    for (i, (rule, cond)) in rules.iter().zip(conditions).enumerate() {
        let (true, Some(cond)) = (rule.enabled, cond) else {
            continue;
        };
        for (t, name) in names.iter().enumerate() {
            if !rule.types.contains(name) {
                continue;
            }
            let special = types::specialize(cond, name);
            if special == CExpr::Const(false) {
                continue;
            }
            prefilter.add(name, &special);
            if admits_failure(name, &special) {
                failures_read.insert(*name);
            }
            match compile::compile(&special, slots) {
                Ok(node) => buckets[t].push(Entry {
                    rule: i as u32,
                    guard: rule_guard(name, &special).and_then(|g| guards[t].add(&g)),
                    node,
                }),
                Err(e) => {
                    let src = &files
                        .iter()
                        .find(|f| f.name == rule.file)
                        .cloned()
                        .unwrap_or_else(|| SourceFile::new(&rule.file, ""));
                    diags.error(
                        src,
                        crate::diag::Pos {
                            line: rule.line,
                            column: 1,
                        },
                        Some(format!("rule '{}'", rule.name)),
                        e.0,
                    );
                    break;
                }
            }
        }
    }
    Index {
        buckets,
        guards,
        prefilter,
        failures_read,
    }
}

/// Falco's warnings about event types: a rule without an `evt.type`
/// restriction runs on every event; one that names only types mamori does
/// not capture never fires.
fn warn_types(
    diags: &mut Diagnostics,
    src: &SourceFile,
    def: &RuleDef,
    t: &Types,
    names: &[&str],
    cond: &CExpr,
) {
    let item = Some(format!("rule '{}'", def.name));
    match t {
        Types::Any | Types::AllBut(_) if def.warn_evttypes && *cond != CExpr::Const(false) => {
            diags.warn(
                src,
                def.pos,
                item,
                "the condition does not restrict evt.type: it is evaluated for every event (significant cost)",
            );
        }
        Types::Only(set) if !set.is_empty() && !set.iter().any(|s| names.contains(&s.as_str())) => {
            let list: Vec<&str> = set.iter().map(String::as_str).collect();
            diags.warn(
                src,
                def.pos,
                item,
                format!(
                    "matches only event types mamori does not capture ({}); it will not fire",
                    list.join(", ")
                ),
            );
        }
        _ => {}
    }
}

impl RuleSet {
    /// The id of an event type name, for [`RuleSet::evaluate`].
    pub fn type_id(&self, name: &str) -> Option<u16> {
        self.type_ids.get(name).copied()
    }

    pub fn type_name(&self, id: u16) -> Option<&'static str> {
        self.type_names.get(id as usize).copied()
    }

    /// Event types some enabled rule can match: what the kernel must send.
    pub fn needed_event_types(&self) -> BTreeSet<&'static str> {
        self.type_names
            .iter()
            .zip(&self.buckets)
            .filter(|(_, b)| !b.is_empty())
            .map(|(n, _)| *n)
            .collect()
    }

    /// What an open must look like for some enabled rule to match it (see
    /// [`crate::prefilter`]).
    pub fn open_prefilter(&self) -> &OpenPrefilter {
        &self.prefilter
    }

    /// Event types some enabled rule may match when the call failed: the
    /// kernel may drop the failed calls of the others (see
    /// [`crate::prefilter::admits_failure`]).
    pub fn failures_read(&self) -> &BTreeSet<&'static str> {
        &self.failures_read
    }

    /// Applies Falco's `append_output` entries to the rules' outputs;
    /// returns warnings (a field mamori never fills), or the error of an
    /// entry naming its key.
    pub fn append_output(
        &mut self,
        entries: &[crate::AppendOutput],
    ) -> Result<Vec<String>, String> {
        let mut slots = Slots::from_list(std::mem::take(&mut self.slots));
        let result = crate::append::apply(entries, &mut self.rules, &self.collected, &mut slots);
        self.slots = slots.list;
        result
    }

    /// Number of (rule, type) pairs indexed.
    pub fn indexed(&self) -> usize {
        self.buckets.iter().map(Vec::len).sum()
    }

    /// Evaluates an event of type `ty`, calling `hit` for each matching rule
    /// (only the first under [`MatchMode::First`]) with its rendered output.
    pub fn evaluate<'r, E: Extract + ?Sized>(
        &'r self,
        ty: u16,
        ex: &E,
        mut hit: impl FnMut(&'r Rule, Rendered),
    ) {
        let Some(bucket) = self.buckets.get(ty as usize) else {
            return;
        };
        if bucket.is_empty() {
            return;
        }
        let mut cache = Cache::new();
        let mut admitted = None;
        for e in bucket {
            if !self.guard_admits(ty, e, ex, &mut cache, &mut admitted) {
                continue;
            }
            if eval(&e.node, &self.slots, ex, &mut cache) {
                let rule = &self.rules[e.rule as usize];
                let rendered = match &rule.format {
                    Some(f) => f.render(&self.slots, ex, &mut cache),
                    None => Rendered {
                        message: String::new(),
                        fields: Vec::new(),
                    },
                };
                hit(rule, rendered);
                if self.mode == MatchMode::First {
                    return;
                }
            }
        }
    }

    /// Why rule `name` does or does not match the event behind `ex`.
    pub fn explain<E: Extract + ?Sized>(
        &self,
        name: &str,
        ex: &E,
    ) -> Result<crate::explain::Explained, String> {
        crate::explain::explain(&self.collected, name, ex)
    }

    /// Whether entry `e` (of bucket `ty`) is to be evaluated: true without
    /// a guard. `admitted` holds the event's admitted terms once computed.
    #[inline]
    fn guard_admits<'e, E: Extract + ?Sized>(
        &self,
        ty: u16,
        e: &Entry,
        ex: &'e E,
        cache: &mut Cache<'e>,
        admitted: &mut Option<Bits>,
    ) -> bool {
        let Some(mine) = &e.guard else {
            return true;
        };
        let ok = admitted.get_or_insert_with(|| {
            let (name, res) = self.guard_slots;
            let ret = match cache.get(res, &self.slots, ex) {
                Some(Value::Int(r)) => *r,
                // Unknown: as a success, which every term admits.
                _ => 0,
            };
            let path = match cache.get(name, &self.slots, ex) {
                Some(Value::Str(p)) => Some(p.clone()),
                _ => None,
            };
            self.guards[ty as usize].admitted(ret, path.as_deref())
        });
        guard::meets(mine, ok)
    }

    /// Evaluates only whether each rule matches, without rendering (benchmarks, tests).
    pub fn matching<E: Extract + ?Sized>(&self, ty: u16, ex: &E) -> Vec<&str> {
        self.matching_with(ty, ex, true)
    }

    /// [`RuleSet::matching`] with every condition evaluated, guards or
    /// not: the reference the guards are tested against.
    pub fn matching_unguarded<E: Extract + ?Sized>(&self, ty: u16, ex: &E) -> Vec<&str> {
        self.matching_with(ty, ex, false)
    }

    fn matching_with<E: Extract + ?Sized>(&self, ty: u16, ex: &E, guarded: bool) -> Vec<&str> {
        let mut out = Vec::new();
        let Some(bucket) = self.buckets.get(ty as usize) else {
            return out;
        };
        let mut cache = Cache::new();
        let mut admitted = None;
        for e in bucket {
            if guarded && !self.guard_admits(ty, e, ex, &mut cache, &mut admitted) {
                continue;
            }
            if eval(&e.node, &self.slots, ex, &mut cache) {
                out.push(self.rules[e.rule as usize].name.as_str());
                if self.mode == MatchMode::First {
                    break;
                }
            }
        }
        out
    }
}
