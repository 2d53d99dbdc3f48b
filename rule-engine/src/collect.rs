//! Applies the items of every file in order: definitions, legacy `append`,
//! `override` (append/replace on exactly the keys Falco allows), and
//! enable/disable toggles. The result is the final set of lists, macros and
//! rules, in first-definition order.

use std::collections::HashMap;

use crate::{
    diag::{Diagnostics, Pos, SourceFile},
    priority::Priority,
    spec::{ExceptionSpec, Item, ListSpec, MacroSpec, OverrideOp, RuleSpec},
    yaml::Scalar,
};

/// Condition text assembled from one or more fragments (appends), with the
/// origin of each fragment so any offset maps back to file, line, column.
#[derive(Clone, Debug, Default)]
pub struct Text {
    pub text: String,
    /// `(start offset in text, fragment, file index)`.
    parts: Vec<(usize, Scalar, usize)>,
}

impl Text {
    pub fn new(s: &Scalar, file: usize) -> Self {
        Self {
            text: s.text.clone(),
            parts: vec![(0, s.clone(), file)],
        }
    }

    /// Text from outside any rules file (the agent's configuration).
    pub fn plain(s: &str) -> Self {
        Self {
            text: s.to_owned(),
            parts: Vec::new(),
        }
    }

    /// Appends a fragment, separated by a space (Falco's textual append).
    pub fn append(&mut self, s: &Scalar, file: usize) {
        self.text.push(' ');
        self.parts.push((self.text.len(), s.clone(), file));
        self.text.push_str(&s.text);
    }

    /// `(file index, position)` of byte `offset`.
    pub fn locate(&self, offset: usize) -> (usize, Pos) {
        let Some((start, s, file)) = self.parts.iter().rev().find(|(st, ..)| *st <= offset) else {
            return (0, Pos::default());
        };
        (*file, s.pos_at(offset - start))
    }

    pub fn start(&self) -> (usize, Pos) {
        self.locate(0)
    }
}

#[derive(Clone, Debug)]
pub struct ListDef {
    pub name: String,
    pub items: Vec<Scalar>,
    pub file: usize,
    pub pos: Pos,
}

#[derive(Clone, Debug)]
pub struct MacroDef {
    pub name: String,
    pub condition: Text,
    pub file: usize,
    pub pos: Pos,
}

#[derive(Clone, Debug)]
pub struct RuleDef {
    pub name: String,
    pub file: usize,
    pub pos: Pos,
    pub desc: String,
    pub condition: Text,
    pub output: Text,
    pub priority: Priority,
    pub tags: Vec<String>,
    pub enabled: bool,
    pub exceptions: Vec<(ExceptionSpec, usize)>,
    pub warn_evttypes: bool,
    pub skip_if_unknown_filter: bool,
}

/// Everything defined, after all files.
#[derive(Debug, Default)]
pub struct Collected {
    pub lists: Vec<ListDef>,
    pub macros: Vec<MacroDef>,
    pub rules: Vec<RuleDef>,
    list_idx: HashMap<String, usize>,
    macro_idx: HashMap<String, usize>,
    rule_idx: HashMap<String, usize>,
}

impl Collected {
    pub fn list(&self, name: &str) -> Option<&ListDef> {
        self.list_idx.get(name).map(|&i| &self.lists[i])
    }

    pub fn macro_def(&self, name: &str) -> Option<&MacroDef> {
        self.macro_idx.get(name).map(|&i| &self.macros[i])
    }
}

/// The engine version mamori implements, for `required_engine_version`.
pub const ENGINE_VERSION: (u64, u64, u64) = (0, 63, 0);

/// Plugins whose fields mamori provides itself.
const BUILT_IN_PLUGINS: &[&str] = &["container"];

/// Sources mamori evaluates.
const SOURCES: &[&str] = &["syscall"];

/// Adds a definition, or replaces the earlier one of that name in place
/// (keeping its position in evaluation order).
fn define<T>(defs: &mut Vec<T>, index: &mut HashMap<String, usize>, name: String, def: T) {
    match index.get(&name) {
        Some(&i) => defs[i] = def,
        None => {
            index.insert(name, defs.len());
            defs.push(def);
        }
    }
}

pub struct Collector<'a> {
    pub files: &'a [SourceFile],
    pub diags: &'a mut Diagnostics,
    pub out: Collected,
}

impl<'a> Collector<'a> {
    pub fn new(files: &'a [SourceFile], diags: &'a mut Diagnostics) -> Self {
        Self {
            files,
            diags,
            out: Collected::default(),
        }
    }

    fn src(&self, file: usize) -> &'a SourceFile {
        &self.files[file]
    }

    pub fn apply(&mut self, file: usize, item: Item) {
        match item {
            Item::RequiredEngineVersion { version, pos } => {
                self.engine_version(file, &version, pos)
            }
            Item::RequiredPlugins(reqs) => {
                for r in reqs {
                    let ok = BUILT_IN_PLUGINS.contains(&r.name.as_str())
                        || r.alternatives
                            .iter()
                            .any(|(n, _)| BUILT_IN_PLUGINS.contains(&n.as_str()));
                    if !ok {
                        self.diags.warn(
                            self.src(file),
                            r.pos,
                            None,
                            format!("plugin `{}` {} is not available in mamori; rules that need its fields will be skipped", r.name, r.version),
                        );
                    }
                }
            }
            Item::List(l) => self.list(file, l),
            Item::Macro(m) => self.macro_item(file, m),
            Item::Rule(r) => self.rule(file, *r),
        }
    }

    fn engine_version(&mut self, file: usize, version: &str, pos: Pos) {
        let v = version.trim();
        let parsed = if let Ok(n) = v.parse::<u64>() {
            Some((0, n, 0))
        } else {
            let parts: Vec<_> = v.split('.').map(|p| p.parse::<u64>().ok()).collect();
            match parts.as_slice() {
                [Some(a), Some(b), Some(c)] => Some((*a, *b, *c)),
                _ => None,
            }
        };
        match parsed {
            None => self.diags.error(
                self.src(file),
                pos,
                None,
                format!("required_engine_version `{v}` is not an integer or x.y.z"),
            ),
            Some(req) if req > ENGINE_VERSION => {
                let (a, b, c) = ENGINE_VERSION;
                self.diags.error(
                    self.src(file),
                    pos,
                    None,
                    format!("this file requires engine version {v}; mamori implements {a}.{b}.{c}"),
                );
            }
            Some(_) => {}
        }
    }

    fn list(&mut self, file: usize, l: ListSpec) {
        let name = l.name.text.clone();
        let item = Some(format!("list '{name}'"));
        let op = if l.append {
            Some(OverrideOp::Append)
        } else {
            l.override_items
        };
        match (op, self.out.list_idx.get(&name)) {
            (Some(OverrideOp::Append), Some(&i)) => self.out.lists[i].items.extend(l.items),
            (Some(OverrideOp::Replace), Some(&i)) => self.out.lists[i].items = l.items,
            (Some(_), None) => self.diags.error(
                self.src(file),
                l.pos,
                item,
                "cannot append to or override a list that is not defined",
            ),
            (None, _) => {
                let def = ListDef {
                    name: name.clone(),
                    items: l.items,
                    file,
                    pos: l.pos,
                };
                define(&mut self.out.lists, &mut self.out.list_idx, name, def);
            }
        }
    }

    fn macro_item(&mut self, file: usize, m: MacroSpec) {
        let name = m.name.text.clone();
        let item = Some(format!("macro '{name}'"));
        if let Some(src) = &m.source
            && !SOURCES.contains(&src.as_str())
        {
            self.diags.warn(
                self.src(file),
                m.pos,
                item,
                format!("source `{src}` is not supported by mamori; skipped"),
            );
            return;
        }
        let Some(cond) = m.condition else {
            self.diags
                .error(self.src(file), m.pos, item, "`condition` must be a string");
            return;
        };
        let op = if m.append {
            Some(OverrideOp::Append)
        } else {
            m.override_condition
        };
        match (op, self.out.macro_idx.get(&name)) {
            (Some(OverrideOp::Append), Some(&i)) => {
                self.out.macros[i].condition.append(&cond, file)
            }
            (Some(OverrideOp::Replace), Some(&i)) => {
                self.out.macros[i].condition = Text::new(&cond, file)
            }
            (Some(_), None) => self.diags.error(
                self.src(file),
                m.pos,
                item,
                "cannot append to or override a macro that is not defined",
            ),
            (None, _) => {
                let def = MacroDef {
                    name: name.clone(),
                    condition: Text::new(&cond, file),
                    file,
                    pos: m.pos,
                };
                define(&mut self.out.macros, &mut self.out.macro_idx, name, def);
            }
        }
    }

    fn rule(&mut self, file: usize, r: RuleSpec) {
        let Some(name_s) = r.name.clone() else { return };
        let name = name_s.text.clone();
        let item = Some(format!("rule '{name}'"));
        if let Some(src) = &r.source
            && !SOURCES.contains(&src.as_str())
        {
            self.diags.warn(
                self.src(file),
                r.pos,
                item,
                format!("source `{src}` is not supported by mamori; skipped"),
            );
            return;
        }
        let existing = self.out.rule_idx.get(&name).copied();
        if r.append {
            self.legacy_append(file, r, existing);
            return;
        }
        if !r.overrides.is_empty() {
            self.overrides(file, r, existing);
            return;
        }
        // `- rule: X` + `enabled:` only: toggle an existing rule (deprecated form).
        if r.keys.iter().all(|k| k == "enabled") && r.enabled.is_some() {
            match existing {
                Some(i) => {
                    self.out.rules[i].enabled = r.enabled.unwrap_or(true);
                    self.diags.warn(
                        self.src(file),
                        r.pos,
                        item,
                        "enabling/disabling with only `enabled` is deprecated; use `override: {enabled: replace}`",
                    );
                }
                None => self.diags.error(
                    self.src(file),
                    r.pos,
                    item,
                    "cannot enable or disable a rule that is not defined",
                ),
            }
            return;
        }
        let mut missing = Vec::new();
        for (key, present) in [
            ("condition", r.condition.is_some()),
            ("output", r.output.is_some()),
            ("desc", r.desc.is_some()),
            ("priority", r.priority.is_some()),
        ] {
            if !present {
                missing.push(key);
            }
        }
        if !missing.is_empty() {
            self.diags.error(
                self.src(file),
                r.pos,
                item,
                format!("missing required keys: {}", missing.join(", ")),
            );
            return;
        }
        let (Some(cond), Some(output), Some(desc), Some((priority, _))) =
            (&r.condition, &r.output, &r.desc, r.priority)
        else {
            return;
        };
        let def = RuleDef {
            name: name.clone(),
            file,
            pos: r.pos,
            desc: desc.text.trim().to_owned(),
            condition: Text::new(cond, file),
            output: Text::new(output, file),
            priority,
            tags: r.tags.clone().unwrap_or_default(),
            enabled: r.enabled.unwrap_or(true),
            exceptions: r
                .exceptions
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|e| (e, file))
                .collect(),
            warn_evttypes: r.warn_evttypes.unwrap_or(true),
            skip_if_unknown_filter: r.skip_if_unknown_filter.unwrap_or(false),
        };
        define(&mut self.out.rules, &mut self.out.rule_idx, name, def);
    }

    /// `append: true`: the condition is extended; exceptions get more values
    /// (same name) or are added.
    fn legacy_append(&mut self, file: usize, r: RuleSpec, existing: Option<usize>) {
        let name = r.name.as_ref().map(|s| s.text.clone()).unwrap_or_default();
        let item = Some(format!("rule '{name}'"));
        let Some(i) = existing else {
            self.diags.error(
                self.src(file),
                r.pos,
                item,
                "cannot append to a rule that is not defined",
            );
            return;
        };
        for k in &r.keys {
            if !matches!(k.as_str(), "condition" | "exceptions" | "enabled") {
                self.diags.warn(
                    self.src(file),
                    r.pos,
                    item.clone(),
                    format!("`{k}` cannot be appended and is ignored (use override)"),
                );
            }
        }
        if let Some(c) = &r.condition {
            self.out.rules[i].condition.append(c, file);
        }
        if let Some(e) = r.enabled {
            self.out.rules[i].enabled = e;
        }
        if let Some(exc) = r.exceptions {
            self.append_exceptions(i, exc, file);
        }
    }

    fn append_exceptions(&mut self, i: usize, exc: Vec<ExceptionSpec>, file: usize) {
        let src = self.src(file);
        for e in exc {
            let rule = &mut self.out.rules[i];
            if let Some((prev, _)) = rule
                .exceptions
                .iter_mut()
                .find(|(p, _)| p.name.text == e.name.text)
            {
                if e.fields.is_some() || e.comps.is_some() {
                    self.diags.error(
                        src,
                        e.pos,
                        Some(format!("rule '{}'", rule.name)),
                        format!(
                            "appending to exception `{}` may only add values, not fields or comps",
                            e.name.text
                        ),
                    );
                    continue;
                }
                prev.values.extend(e.values);
            } else {
                rule.exceptions.push((e, file));
            }
        }
    }

    fn overrides(&mut self, file: usize, r: RuleSpec, existing: Option<usize>) {
        let name = r.name.as_ref().map(|s| s.text.clone()).unwrap_or_default();
        let item = Some(format!("rule '{name}'"));
        let Some(i) = existing else {
            self.diags.error(
                self.src(file),
                r.pos,
                item,
                "cannot override a rule that is not defined",
            );
            return;
        };
        const APPENDABLE: &[&str] = &["condition", "output", "desc", "tags", "exceptions"];
        const REPLACEABLE: &[&str] = &[
            "condition",
            "output",
            "desc",
            "priority",
            "tags",
            "exceptions",
            "enabled",
            "warn_evttypes",
            "capture",
            "capture_duration",
            "skip-if-unknown-filter",
        ];
        // Every overridden key must be given, and every given key overridden.
        for k in &r.keys {
            if !r.overrides.iter().any(|(o, ..)| o == k) {
                self.diags.error(
                    self.src(file),
                    r.pos,
                    item.clone(),
                    format!("`{k}` is given but not listed under `override`"),
                );
                return;
            }
        }
        for (key, op, pos) in &r.overrides {
            let allowed = match op {
                OverrideOp::Append => APPENDABLE,
                OverrideOp::Replace => REPLACEABLE,
            };
            if !allowed.contains(&key.as_str()) {
                let verb = if *op == OverrideOp::Append {
                    "appended"
                } else {
                    "replaced"
                };
                self.diags.error(
                    self.src(file),
                    *pos,
                    item.clone(),
                    format!("`{key}` cannot be {verb}"),
                );
                continue;
            }
            if !r.keys.contains(key) {
                self.diags.error(
                    self.src(file),
                    *pos,
                    item.clone(),
                    format!("`{key}` is listed under `override` but not given"),
                );
                continue;
            }
            let append = *op == OverrideOp::Append;
            let rule = &mut self.out.rules[i];
            match key.as_str() {
                "condition" | "output" | "desc" => {
                    let Some(s) = (match key.as_str() {
                        "condition" => &r.condition,
                        "output" => &r.output,
                        _ => &r.desc,
                    }) else {
                        continue;
                    };
                    match (key.as_str(), append) {
                        ("condition", true) => rule.condition.append(s, file),
                        ("condition", false) => rule.condition = Text::new(s, file),
                        ("output", true) => rule.output.append(s, file),
                        ("output", false) => rule.output = Text::new(s, file),
                        ("desc", true) => {
                            rule.desc.push(' ');
                            rule.desc.push_str(s.text.trim());
                        }
                        _ => rule.desc = s.text.trim().to_owned(),
                    }
                }
                "tags" => {
                    let tags = r.tags.clone().unwrap_or_default();
                    if append {
                        rule.tags.extend(tags);
                    } else {
                        rule.tags = tags;
                    }
                }
                "exceptions" => {
                    let exc = r.exceptions.clone().unwrap_or_default();
                    if append {
                        self.append_exceptions(i, exc, file);
                    } else {
                        self.out.rules[i].exceptions = exc.into_iter().map(|e| (e, file)).collect();
                    }
                }
                "priority" => {
                    if let Some((p, _)) = r.priority {
                        rule.priority = p;
                    }
                }
                "enabled" => rule.enabled = r.enabled.unwrap_or(rule.enabled),
                "warn_evttypes" => {
                    rule.warn_evttypes = r.warn_evttypes.unwrap_or(rule.warn_evttypes)
                }
                "skip-if-unknown-filter" => {
                    rule.skip_if_unknown_filter = r
                        .skip_if_unknown_filter
                        .unwrap_or(rule.skip_if_unknown_filter);
                }
                _ => {} // capture, capture_duration: accepted, no effect in mamori
            }
        }
    }
}
