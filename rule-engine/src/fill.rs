//! How fully mamori fills each field. A rule that depends on a field mamori
//! never fills would load and never fire without a word; instead the load
//! reports it (naming rule, field and reason), and `mamori fields` shows
//! every field's state.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::{
    check::CExpr,
    collect::Collected,
    compile::Slots,
    diag::{Diagnostics, SourceFile},
    fields::{Field, FieldDef},
    ruleset::Rule,
};

/// Whether mamori gives a field a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "when", rename_all = "lowercase")]
pub enum Fill {
    /// Whenever the event has the thing the field describes.
    Filled,
    /// Only in the circumstances given.
    Partial(&'static str),
    /// Never, for the reason given: a condition that needs a value from it
    /// never holds, and an output shows `<NA>`.
    Never(&'static str),
}

const RUNTIME: &str = "for containers of podman, containerd and CRI-O whose state the agent can read (their state directories or CRI socket)";
const POD: &str = "for pods run by containerd (asked through its CRI socket) and CRI-O";
const CNI: &str = "from the CNI plugins' result cache (/var/lib/cni/results): pods of containerd and CRI-O, podman containers on CNI networks; not host-network containers or netavark networks";
const NO_API: &str =
    "deprecated in Falco; needs the Kubernetes API server, which the agent does not ask";
const EXE_FACTS: &str = "for processes started while the agent runs (read from the executable's inode at exec, not for those found in /proc at start); the layers where the kernel's BTF has overlayfs";
const NO_STREAMS: &str =
    "the standard streams of a new process are not looked up in its descriptor table yet";

impl Fill {
    /// How mamori fills `f`.
    pub const fn of(f: Field) -> Fill {
        use Field as F;
        match f {
            F::EvtCpu => Fill::Never("the CPU of an event is not recorded"),
            F::EvtBuffer => Fill::Partial(
                "for sendto, recvfrom, sendmsg and recvmsg (their first buffer): the first capture.buffer_bytes bytes (default 80), when the rules the agent starts with read evt.buffer; not for read, write or io_uring",
            ),
            F::ProcIsExeWritable
            | F::ProcIsExeUpperLayer
            | F::ProcIsExeLowerLayer
            | F::ProcExeInoCtime
            | F::ProcExeInoMtime
            | F::ProcExeInoCtimeDurationProcStart => Fill::Partial(EXE_FACTS),
            F::ProcFdopencount => Fill::Never("the number of open descriptors is not counted"),
            F::ProcStdinType
            | F::ProcStdinName
            | F::ProcStdoutType
            | F::ProcStdoutName
            | F::ProcStderrType
            | F::ProcStderrName => Fill::Never(NO_STREAMS),
            F::ThreadCapInheritable => Fill::Never("the inheritable capability set is not read"),
            F::FdCipName | F::FdSipName | F::FdLipName | F::FdRipName => Fill::Partial(
                "with the names rules compare it with (= or in), looked up through the host's resolver every 30 s; other names are not known",
            ),
            F::ContainerIp | F::ContainerCniJson | F::K8sPodIp | F::K8sPodCniJson => {
                Fill::Partial(CNI)
            }
            F::K8sRcName | F::K8sRsName | F::K8sSvcName | F::K8sDeploymentName => {
                Fill::Never(NO_API)
            }
            F::ContainerName
            | F::ContainerImage
            | F::ContainerImageId
            | F::ContainerImageRepository
            | F::ContainerImageTag
            | F::ContainerImageDigest
            | F::ContainerPrivileged
            | F::ContainerMounts
            | F::ContainerMount
            | F::ContainerMountSource
            | F::ContainerMountDest
            | F::ContainerMountMode
            | F::ContainerMountRdwr
            | F::ContainerMountPropagation
            | F::ContainerStartTs
            | F::ContainerDuration
            | F::ContainerHostPid
            | F::ContainerHostNetwork
            | F::ContainerHostIpc => Fill::Partial(RUNTIME),
            F::ContainerLabel | F::ContainerLabels => Fill::Partial(
                "for containers of containerd and CRI-O (their CRI labels); podman's are not read",
            ),
            F::K8sNsName
            | F::K8sPodName
            | F::K8sPodId
            | F::K8sPodUid
            | F::K8sPodSandboxId
            | F::K8sPodFullSandboxId
            | F::K8sPodLabel
            | F::K8sPodLabels => Fill::Partial(POD),
            _ => Fill::Filled,
        }
    }

    /// The reason a field is never filled.
    pub const fn never(self) -> Option<&'static str> {
        match self {
            Fill::Never(why) => Some(why),
            _ => None,
        }
    }
}

/// A field a rule depends on that mamori never fills.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unfilled {
    pub rule: String,
    pub enabled: bool,
    pub field: &'static str,
    /// In the condition (the rule may never fire), else only the output.
    pub in_condition: bool,
    pub reason: &'static str,
}

/// Finds the fields each rule reads (in its condition, exceptions or
/// output) that mamori never fills, and warns of those of enabled rules.
pub(crate) fn unfilled_uses(
    files: &[SourceFile],
    collected: &Collected,
    rules: &[Rule],
    conditions: &[Option<CExpr>],
    slots: &Slots,
    diags: &mut Diagnostics,
) -> Vec<Unfilled> {
    let mut out = Vec::new();
    for ((def, rule), cond) in collected.rules.iter().zip(rules).zip(conditions) {
        if cond.is_none() {
            continue;
        }
        let mut in_cond = BTreeSet::new();
        if let Some(c) = cond {
            condition_fields(c, &mut in_cond);
        }
        let in_output: BTreeSet<Field> = rule
            .format
            .iter()
            .flat_map(crate::format::Format::slots)
            .filter_map(|s| slots.list.get(s as usize).map(|x| x.0))
            .collect();
        for field in in_cond.union(&in_output) {
            let Some(reason) = Fill::of(*field).never() else {
                continue;
            };
            let name = FieldDef::get(*field).name;
            let in_condition = in_cond.contains(field);
            let effect = if in_condition {
                "a comparison that needs its value never holds"
            } else {
                "the output shows <NA> for it"
            };
            // A disabled rule is listed, not warned of: enabling it later
            // (in another file) warns then.
            if rule.enabled {
                diags.warn(
                    &files[def.file],
                    def.pos,
                    Some(format!("rule '{}'", def.name)),
                    format!("uses {name}, which mamori does not fill ({reason}): {effect}"),
                );
            }
            out.push(Unfilled {
                rule: def.name.clone(),
                enabled: rule.enabled,
                field: name,
                in_condition,
                reason,
            });
        }
    }
    out
}

/// The fields a checked condition reads.
pub(crate) fn condition_fields(c: &CExpr, out: &mut BTreeSet<Field>) {
    use crate::check::{CExpr, CRhs};
    match c {
        CExpr::And(v) | CExpr::Or(v) => v.iter().for_each(|x| condition_fields(x, out)),
        CExpr::Not(x) => condition_fields(x, out),
        CExpr::Const(_) => {}
        CExpr::Cmp(cmp) => {
            out.insert(cmp.lhs.field);
            if let CRhs::Field(f) = &cmp.rhs {
                out.insert(f.field);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::FIELDS;

    #[test]
    fn every_never_filled_field_says_why_and_says_so_in_its_description() {
        for f in FIELDS {
            if let Fill::Never(why) = Fill::of(f.id) {
                assert!(!why.is_empty(), "{}", f.name);
            }
        }
        assert_eq!(Fill::of(Field::ProcName), Fill::Filled);
        assert!(matches!(Fill::of(Field::K8sPodName), Fill::Partial(_)));
    }
}
