//! Reading `rule` items and their exceptions.

use super::{
    ExceptionSpec, OneOrMany, RuleSpec, ValueElem, boolean, get, name, overrides, scalar, strings,
    warn_unknown,
};
use crate::{
    diag::{Diagnostics, Pos, SourceFile},
    priority::Priority,
    yaml::{Node, Scalar},
};

const RULE_KEYS: &[&str] = &[
    "rule",
    "desc",
    "condition",
    "output",
    "priority",
    "tags",
    "enabled",
    "source",
    "exceptions",
    "warn_evttypes",
    "skip-if-unknown-filter",
    "capture",
    "capture_duration",
    "append",
    "override",
];

pub(super) fn read_rule(
    src: &SourceFile,
    map: &[(Scalar, Node)],
    pos: Pos,
    diags: &mut Diagnostics,
) -> Option<RuleSpec> {
    let name = name(src, map, "rule", pos, diags)?;
    let item = format!("rule '{}'", name.text);
    warn_unknown(src, map, RULE_KEYS, &item, diags);
    let mut r = RuleSpec {
        pos,
        desc: scalar(src, map, "desc", &item, diags),
        condition: scalar(src, map, "condition", &item, diags),
        output: scalar(src, map, "output", &item, diags),
        enabled: boolean(src, map, "enabled", &item, diags),
        warn_evttypes: boolean(src, map, "warn_evttypes", &item, diags),
        skip_if_unknown_filter: boolean(src, map, "skip-if-unknown-filter", &item, diags),
        capture: boolean(src, map, "capture", &item, diags),
        append: boolean(src, map, "append", &item, diags).unwrap_or(false),
        source: get(map, "source")
            .and_then(Node::as_scalar)
            .map(|s| s.text.clone()),
        overrides: overrides(src, map, &item, diags),
        keys: map
            .iter()
            .map(|(k, _)| k.text.clone())
            .filter(|k| !matches!(k.as_str(), "rule" | "append" | "override"))
            .collect(),
        ..Default::default()
    };
    if let Some(n) = get(map, "priority") {
        match n.as_scalar().and_then(|s| Priority::parse(&s.text)) {
            Some(p) => r.priority = Some((p, n.pos())),
            None => diags.error(
                src,
                n.pos(),
                Some(item.clone()),
                "priority must be one of EMERGENCY, ALERT, CRITICAL, ERROR, WARNING, NOTICE, INFORMATIONAL (INFO), DEBUG",
            ),
        }
    }
    if let Some(n) = get(map, "capture_duration") {
        match n.as_scalar().and_then(|s| s.text.parse::<i64>().ok()) {
            Some(v) => r.capture_duration = Some(v),
            None => diags.error(
                src,
                n.pos(),
                Some(item.clone()),
                "capture_duration must be an integer",
            ),
        }
    }
    if let Some(n) = get(map, "tags") {
        r.tags =
            strings(src, n, "tags", &item, diags).map(|v| v.into_iter().map(|s| s.text).collect());
    }
    if let Some(n) = get(map, "exceptions") {
        r.exceptions = read_exceptions(src, n, &item, diags);
    }
    if r.append && !r.overrides.is_empty() {
        diags.error(
            src,
            pos,
            Some(item),
            "`append` and `override` cannot be used together",
        );
        return None;
    }
    r.name = Some(name);
    Some(r)
}

fn one_or_many(
    src: &SourceFile,
    n: &Node,
    what: &str,
    item: &str,
    diags: &mut Diagnostics,
) -> Option<OneOrMany> {
    match n {
        Node::Scalar(s) => Some(OneOrMany::One(s.clone())),
        Node::Seq(..) => strings(src, n, what, item, diags).map(OneOrMany::Many),
        Node::Map(..) => {
            diags.error(
                src,
                n.pos(),
                Some(item.into()),
                format!("exception {what} must be a string or a list"),
            );
            None
        }
    }
}

fn read_exceptions(
    src: &SourceFile,
    node: &Node,
    item: &str,
    diags: &mut Diagnostics,
) -> Option<Vec<ExceptionSpec>> {
    let Node::Seq(entries, _) = node else {
        diags.error(
            src,
            node.pos(),
            Some(item.into()),
            "`exceptions` must be a list",
        );
        return None;
    };
    let mut out = Vec::new();
    for e in entries {
        let Node::Map(map, pos) = e else {
            diags.error(
                src,
                e.pos(),
                Some(item.into()),
                "an exception must be a mapping",
            );
            continue;
        };
        let Some(name) = name(src, map, "name", *pos, diags) else {
            continue;
        };
        warn_unknown(
            src,
            map,
            &["name", "fields", "comps", "values"],
            item,
            diags,
        );
        let fields = get(map, "fields").and_then(|n| one_or_many(src, n, "fields", item, diags));
        let comps = get(map, "comps").and_then(|n| one_or_many(src, n, "comps", item, diags));
        let mut values = Vec::new();
        if let Some(v) = get(map, "values") {
            match v {
                Node::Seq(vals, _) => {
                    for val in vals {
                        match val {
                            Node::Scalar(s) => values.push(vec![ValueElem::One(s.clone())]),
                            Node::Seq(tuple, _) => {
                                let mut t = Vec::new();
                                for el in tuple {
                                    match el {
                                        Node::Scalar(s) => t.push(ValueElem::One(s.clone())),
                                        Node::Seq(..) => {
                                            if let Some(l) =
                                                strings(src, el, "exception values", item, diags)
                                            {
                                                t.push(ValueElem::List(l, el.pos()));
                                            }
                                        }
                                        Node::Map(..) => diags.error(
                                            src,
                                            el.pos(),
                                            Some(item.into()),
                                            "an exception value cannot be a mapping",
                                        ),
                                    }
                                }
                                values.push(t);
                            }
                            Node::Map(..) => diags.error(
                                src,
                                val.pos(),
                                Some(item.into()),
                                "an exception value cannot be a mapping",
                            ),
                        }
                    }
                }
                Node::Scalar(s) if s.text.is_empty() => {}
                other => diags.error(
                    src,
                    other.pos(),
                    Some(item.into()),
                    "exception `values` must be a list",
                ),
            }
        }
        out.push(ExceptionSpec {
            name,
            fields,
            comps,
            values,
            pos: *pos,
        });
    }
    Some(out)
}
