//! Falco's `append_output` (a setting of the agent, not of the rules
//! files): text added to the message and fields added to the output fields
//! of the rules an entry matches, so an operator adds context to every
//! alert (an ancestor, a label, an environment variable) without editing
//! anyone's rules.

use crate::{
    check::Checker,
    collect::{Collected, Text},
    compile::Slots,
    fields::{Field, FieldDef},
    fill::Fill,
    format::Format,
    ruleset::Rule,
};

/// One entry of `append_output`, applied in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppendOutput {
    /// `match.rule`: only the rule of this name.
    pub rule: Option<String>,
    /// `match.source`: only rules of this source (mamori's are `syscall`).
    pub source: Option<String>,
    /// `match.tags`: only rules that have every one of these tags.
    pub tags: Vec<String>,
    /// Appended to the message, after a space (`%field`s allowed).
    pub extra_output: Option<String>,
    /// Added to the output fields only, never to the message.
    pub extra_fields: Vec<ExtraField>,
}

/// A field of `extra_fields`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExtraField {
    /// A field by its name (`proc.aname[2]`), shown under that name.
    Field(String),
    /// `name: format`: the format rendered, shown under `name`.
    Named { name: String, format: String },
}

impl AppendOutput {
    fn matches(&self, rule: &Rule) -> bool {
        self.rule.as_ref().is_none_or(|r| *r == rule.name)
            && self.source.as_deref().is_none_or(|s| s == "syscall")
            && self.tags.iter().all(|t| rule.tags.contains(t))
    }
}

/// Applies `entries` to the formats of `rules`; an entry with a field that
/// does not exist is an error naming it (`append_output[1].extra_fields[0]`),
/// one with a field mamori never fills a warning. Returns the warnings.
pub(crate) fn apply(
    entries: &[AppendOutput],
    rules: &mut [Rule],
    collected: &Collected,
    slots: &mut Slots,
) -> Result<Vec<String>, String> {
    let mut checker = Checker::new(collected);
    let mut warnings = Vec::new();
    let mut parse = |key: &str, text: &str, fields: &mut Vec<Field>| {
        let text = Text::plain(text);
        let f =
            Format::parse(&text, &mut checker, slots).map_err(|(_, _, m)| format!("{key}: {m}"))?;
        fields.extend(
            f.slots()
                .into_iter()
                .filter_map(|s| slots.list.get(s as usize).map(|x| x.0)),
        );
        Ok::<_, String>(f)
    };
    for (i, e) in entries.iter().enumerate() {
        let key = format!("append_output[{i}]");
        // Compiled once to check the entry, once per rule it matches.
        let mut used = Vec::new();
        let mut compile = |used: &mut Vec<Field>| -> Result<Extra, String> {
            let text = e
                .extra_output
                .as_deref()
                .map(|t| parse(&format!("{key}.extra_output"), t, used))
                .transpose()?;
            let mut fields = Vec::new();
            for (j, x) in e.extra_fields.iter().enumerate() {
                let key = format!("{key}.extra_fields[{j}]");
                fields.push(match x {
                    ExtraField::Field(name) => {
                        let f = parse(&key, &format!("%{name}"), used)?;
                        if f.lone_field().is_none() {
                            return Err(format!("{key}: `{name}` is not one field"));
                        }
                        (name.clone(), f)
                    }
                    ExtraField::Named { name, format } => {
                        (name.clone(), parse(&key, format, used)?)
                    }
                });
            }
            Ok(Extra { text, fields })
        };
        compile(&mut used)?;
        for field in used {
            if let Some(why) = Fill::of(field).never() {
                warnings.push(format!(
                    "{key} shows {}, which mamori does not fill ({why}): it is null in every alert",
                    FieldDef::get(field).name
                ));
            }
        }
        if let Some(src) = e.source.as_deref().filter(|s| *s != "syscall") {
            warnings.push(format!(
                "{key}: source `{src}` is not supported by mamori; the entry matches no rule"
            ));
        }
        for rule in rules.iter_mut().filter(|r| e.matches(r)) {
            let extra = compile(&mut Vec::new())?;
            if let Some(format) = &mut rule.format {
                format.append(extra.text, extra.fields);
            }
        }
    }
    Ok(warnings)
}

/// One entry compiled for one rule.
struct Extra {
    text: Option<Format>,
    fields: Vec<(String, Format)>,
}
