//! Rules-file items as written: the YAML tree read into typed specs, with
//! positions. Shape errors (a missing name, a list where a string belongs)
//! are reported here; meaning is checked later.
//!
//! Unknown keys are warnings, as in Falco; key order does not matter.

use crate::{
    diag::{Diagnostics, Pos, SourceFile},
    priority::Priority,
    yaml::{Node, Scalar},
};

/// `append` or `replace`, for one overridden key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverrideOp {
    Append,
    Replace,
}

#[derive(Clone, Debug)]
pub struct ListSpec {
    pub name: Scalar,
    pub items: Vec<Scalar>,
    pub append: bool,
    pub override_items: Option<OverrideOp>,
    pub pos: Pos,
}

#[derive(Clone, Debug)]
pub struct MacroSpec {
    pub name: Scalar,
    pub condition: Option<Scalar>,
    pub append: bool,
    pub override_condition: Option<OverrideOp>,
    pub source: Option<String>,
    pub pos: Pos,
}

/// `fields` or `comps` of an exception: one or a list.
#[derive(Clone, Debug)]
pub enum OneOrMany {
    One(Scalar),
    Many(Vec<Scalar>),
}

/// One element of an exception value tuple: a value or a list of values.
#[derive(Clone, Debug)]
pub enum ValueElem {
    One(Scalar),
    List(Vec<Scalar>, Pos),
}

#[derive(Clone, Debug)]
pub struct ExceptionSpec {
    pub name: Scalar,
    pub fields: Option<OneOrMany>,
    pub comps: Option<OneOrMany>,
    /// Each value: a tuple (for list `fields`) or a single element.
    pub values: Vec<Vec<ValueElem>>,
    pub pos: Pos,
}

#[derive(Clone, Debug, Default)]
pub struct RuleSpec {
    pub name: Option<Scalar>,
    pub pos: Pos,
    pub desc: Option<Scalar>,
    pub condition: Option<Scalar>,
    pub output: Option<Scalar>,
    pub priority: Option<(Priority, Pos)>,
    pub tags: Option<Vec<String>>,
    pub enabled: Option<bool>,
    pub source: Option<String>,
    pub exceptions: Option<Vec<ExceptionSpec>>,
    pub warn_evttypes: Option<bool>,
    pub skip_if_unknown_filter: Option<bool>,
    pub capture: Option<bool>,
    pub capture_duration: Option<i64>,
    pub append: bool,
    /// `override:` entries: key, operation, position.
    pub overrides: Vec<(String, OverrideOp, Pos)>,
    /// Keys present besides `rule`, `append` and `override`.
    pub keys: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct PluginReq {
    pub name: String,
    pub version: String,
    pub alternatives: Vec<(String, String)>,
    pub pos: Pos,
}

#[derive(Clone, Debug)]
pub enum Item {
    RequiredEngineVersion { version: String, pos: Pos },
    RequiredPlugins(Vec<PluginReq>),
    List(ListSpec),
    Macro(MacroSpec),
    Rule(Box<RuleSpec>),
}

/// Reads the items of one file. Problems go to `diags`; items that cannot
/// be read are left out.
mod rule;

use rule::read_rule;

pub fn read_items(src: &SourceFile, docs: &[Node], diags: &mut Diagnostics) -> Vec<Item> {
    let mut items = Vec::new();
    for doc in docs {
        let Node::Seq(entries, _) = doc else {
            if !matches!(doc, Node::Scalar(s) if s.text.is_empty() || s.text == "~" || s.text == "null")
            {
                diags.error(src, doc.pos(), None, "a rules file must be a list of items");
            }
            continue;
        };
        for entry in entries {
            if let Some(item) = read_item(src, entry, diags) {
                items.push(item);
            }
        }
    }
    items
}

fn read_item(src: &SourceFile, entry: &Node, diags: &mut Diagnostics) -> Option<Item> {
    let Node::Map(map, pos) = entry else {
        diags.error(
            src,
            entry.pos(),
            None,
            format!("an item must be a mapping, not {}", entry.kind()),
        );
        return None;
    };
    let pos = *pos;
    let has = |k: &str| map.iter().any(|(key, _)| key.text == k);
    if has("required_engine_version") {
        let v = get(map, "required_engine_version")?;
        let Some(s) = v.as_scalar() else {
            diags.error(
                src,
                v.pos(),
                None,
                "required_engine_version must be a version",
            );
            return None;
        };
        return Some(Item::RequiredEngineVersion {
            version: s.text.clone(),
            pos: s.pos,
        });
    }
    if has("required_plugin_versions") {
        return read_plugins(src, get(map, "required_plugin_versions")?, diags)
            .map(Item::RequiredPlugins);
    }
    if has("list") {
        return read_list(src, map, pos, diags).map(Item::List);
    }
    if has("macro") {
        return read_macro(src, map, pos, diags).map(Item::Macro);
    }
    if has("rule") {
        return read_rule(src, map, pos, diags).map(|r| Item::Rule(Box::new(r)));
    }
    let keys: Vec<&str> = map.iter().map(|(k, _)| k.text.as_str()).collect();
    diags.warn(
        src,
        pos,
        None,
        format!("unknown item with keys {keys:?}, skipped"),
    );
    None
}

fn get<'a>(map: &'a [(Scalar, Node)], key: &str) -> Option<&'a Node> {
    map.iter().find(|(k, _)| k.text == key).map(|(_, v)| v)
}

fn warn_unknown(
    src: &SourceFile,
    map: &[(Scalar, Node)],
    known: &[&str],
    item: &str,
    diags: &mut Diagnostics,
) {
    for (k, _) in map {
        if !known.contains(&k.text.as_str()) {
            diags.warn(
                src,
                k.pos,
                Some(item.to_owned()),
                format!("unknown key `{}`, ignored", k.text),
            );
        }
    }
}

/// A required name: a non-empty scalar.
fn name(
    src: &SourceFile,
    map: &[(Scalar, Node)],
    key: &str,
    pos: Pos,
    diags: &mut Diagnostics,
) -> Option<Scalar> {
    match get(map, key) {
        Some(Node::Scalar(s)) if !s.text.trim().is_empty() => Some(s.clone()),
        Some(n) => {
            diags.error(
                src,
                n.pos(),
                None,
                format!("`{key}` must be a non-empty name"),
            );
            None
        }
        None => {
            diags.error(src, pos, None, format!("missing `{key}`"));
            None
        }
    }
}

fn scalar(
    src: &SourceFile,
    map: &[(Scalar, Node)],
    key: &str,
    item: &str,
    diags: &mut Diagnostics,
) -> Option<Scalar> {
    match get(map, key)? {
        Node::Scalar(s) => Some(s.clone()),
        n => {
            diags.error(
                src,
                n.pos(),
                Some(item.into()),
                format!("`{key}` must be a string, not {}", n.kind()),
            );
            None
        }
    }
}

fn boolean(
    src: &SourceFile,
    map: &[(Scalar, Node)],
    key: &str,
    item: &str,
    diags: &mut Diagnostics,
) -> Option<bool> {
    let n = get(map, key)?;
    match n.as_scalar().map(|s| s.text.as_str()) {
        Some("true" | "True" | "TRUE" | "yes") => Some(true),
        Some("false" | "False" | "FALSE" | "no") => Some(false),
        _ => {
            diags.error(
                src,
                n.pos(),
                Some(item.into()),
                format!("`{key}` must be true or false"),
            );
            None
        }
    }
}

fn strings(
    src: &SourceFile,
    node: &Node,
    what: &str,
    item: &str,
    diags: &mut Diagnostics,
) -> Option<Vec<Scalar>> {
    match node {
        Node::Seq(v, _) => {
            let mut out = Vec::with_capacity(v.len());
            for n in v {
                match n {
                    Node::Scalar(s) => out.push(s.clone()),
                    other => {
                        diags.error(
                            src,
                            other.pos(),
                            Some(item.into()),
                            format!("{what} must be strings, not {}", other.kind()),
                        );
                        return None;
                    }
                }
            }
            Some(out)
        }
        // An empty value (`items:`) is an empty list.
        Node::Scalar(s) if s.text.is_empty() || s.text == "~" || s.text == "null" => {
            Some(Vec::new())
        }
        other => {
            diags.error(
                src,
                other.pos(),
                Some(item.into()),
                format!("{what} must be a list, not {}", other.kind()),
            );
            None
        }
    }
}

/// `override: {key: append|replace}`.
fn overrides(
    src: &SourceFile,
    map: &[(Scalar, Node)],
    item: &str,
    diags: &mut Diagnostics,
) -> Vec<(String, OverrideOp, Pos)> {
    let Some(node) = get(map, "override") else {
        return Vec::new();
    };
    let Node::Map(entries, _) = node else {
        diags.error(
            src,
            node.pos(),
            Some(item.into()),
            "`override` must map keys to append or replace",
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, v) in entries {
        let op = match v.as_scalar().map(|s| s.text.as_str()) {
            Some("append") => OverrideOp::Append,
            Some("replace") => OverrideOp::Replace,
            _ => {
                diags.error(
                    src,
                    v.pos(),
                    Some(item.into()),
                    format!("override of `{}` must be append or replace", k.text),
                );
                continue;
            }
        };
        out.push((k.text.clone(), op, k.pos));
    }
    out
}

/// How a list or macro refines an earlier definition of its one key
/// (`items`, `condition`): legacy `append: true`, or `override: {key: op}`.
/// Other override keys are errors; so is using both forms at once (then the
/// item is refused: `None`).
fn refinement(
    src: &SourceFile,
    map: &[(Scalar, Node)],
    key: &str,
    what: &str,
    pos: Pos,
    item: &str,
    diags: &mut Diagnostics,
) -> Option<(bool, Option<OverrideOp>)> {
    let append = boolean(src, map, "append", item, diags).unwrap_or(false);
    let mut op = None;
    for (k, o, p) in overrides(src, map, item, diags) {
        if k == key {
            op = Some(o);
        } else {
            diags.error(
                src,
                p,
                Some(item.to_owned()),
                format!("{what} cannot override `{k}` (only `{key}`)"),
            );
        }
    }
    if append && op.is_some() {
        diags.error(
            src,
            pos,
            Some(item.to_owned()),
            "`append` and `override` cannot be used together",
        );
        return None;
    }
    Some((append, op))
}

fn read_list(
    src: &SourceFile,
    map: &[(Scalar, Node)],
    pos: Pos,
    diags: &mut Diagnostics,
) -> Option<ListSpec> {
    let name = name(src, map, "list", pos, diags)?;
    let item = format!("list '{}'", name.text);
    warn_unknown(
        src,
        map,
        &["list", "items", "append", "override"],
        &item,
        diags,
    );
    let items = match get(map, "items") {
        Some(n) => strings(src, n, "list items", &item, diags)?,
        None => {
            diags.error(src, pos, Some(item), "missing `items`");
            return None;
        }
    };
    let (append, override_items) = refinement(src, map, "items", "a list", pos, &item, diags)?;
    Some(ListSpec {
        name,
        items,
        append,
        override_items,
        pos,
    })
}

fn read_macro(
    src: &SourceFile,
    map: &[(Scalar, Node)],
    pos: Pos,
    diags: &mut Diagnostics,
) -> Option<MacroSpec> {
    let name = name(src, map, "macro", pos, diags)?;
    let item = format!("macro '{}'", name.text);
    warn_unknown(
        src,
        map,
        &["macro", "condition", "append", "override", "source"],
        &item,
        diags,
    );
    let condition = scalar(src, map, "condition", &item, diags);
    if condition.is_none() && get(map, "condition").is_none() {
        diags.error(src, pos, Some(item), "missing `condition`");
        return None;
    }
    let (append, override_condition) =
        refinement(src, map, "condition", "a macro", pos, &item, diags)?;
    Some(MacroSpec {
        name,
        condition,
        append,
        override_condition,
        source: get(map, "source")
            .and_then(Node::as_scalar)
            .map(|s| s.text.clone()),
        pos,
    })
}

fn read_plugins(src: &SourceFile, node: &Node, diags: &mut Diagnostics) -> Option<Vec<PluginReq>> {
    let Node::Seq(entries, _) = node else {
        diags.error(
            src,
            node.pos(),
            None,
            "required_plugin_versions must be a list",
        );
        return None;
    };
    let mut out = Vec::new();
    for e in entries {
        let Node::Map(map, pos) = e else {
            diags.error(src, e.pos(), None, "a required plugin must be a mapping");
            continue;
        };
        let text = |k: &str, m: &[(Scalar, Node)]| {
            get(m, k).and_then(Node::as_scalar).map(|s| s.text.clone())
        };
        let (Some(name), Some(version)) = (text("name", map), text("version", map)) else {
            diags.error(
                src,
                *pos,
                None,
                "a required plugin needs `name` and `version`",
            );
            continue;
        };
        let mut alternatives = Vec::new();
        if let Some(Node::Seq(alts, _)) = get(map, "alternatives") {
            for a in alts {
                if let Node::Map(am, _) = a
                    && let (Some(n), Some(v)) = (text("name", am), text("version", am))
                {
                    alternatives.push((n, v));
                }
            }
        }
        out.push(PluginReq {
            name,
            version,
            alternatives,
            pos: *pos,
        });
    }
    Some(out)
}
