//! `container.*` and `k8s.*` from the runtime's metadata. Fields the
//! runtime state cannot give (IPs, CNI results, and the deprecated fields
//! that needed Kubernetes' API server) are absent.

use mamori_rules::{Field as F, FieldArg, Value, value::glob};

use crate::state::runtime::{Metadata, Mount};

/// A field of a container with metadata `m`; `now_ns` is the event's time.
pub fn field<'a>(m: &'a Metadata, field: F, arg: &FieldArg, now_ns: u64) -> Option<Value<'a>> {
    let text = |s: &'a str| (!s.is_empty()).then(|| Value::str(s.as_bytes()));
    let (repo, tag, digest) = m.image_parts();
    let pod = m.pod.as_ref();
    Some(match field {
        F::ContainerName => text(&m.name)?,
        F::ContainerImage => text(&m.image)?,
        F::ContainerImageId => text(&m.image_id)?,
        F::ContainerImageRepository => text(repo)?,
        F::ContainerImageTag => text(tag)?,
        F::ContainerImageDigest => text(digest)?,
        F::ContainerPrivileged => Value::Bool(m.privileged?),
        F::ContainerHostPid => Value::Bool(m.host_pid?),
        F::ContainerHostNetwork => Value::Bool(m.host_network?),
        F::ContainerHostIpc => Value::Bool(m.host_ipc?),
        F::ContainerStartTs => Value::Int(m.created_ns? as i64),
        F::ContainerDuration => Value::Int(now_ns.saturating_sub(m.created_ns?) as i64),
        F::ContainerMounts => {
            Value::owned(m.mounts.iter().map(describe).collect::<Vec<_>>().join(","))
        }
        // `[N]` or `[source glob]`.
        F::ContainerMount => Value::owned(describe(mount(m, arg, |x| &x.source)?)),
        // The source of the mount whose destination matches, and the
        // other way round, as in Falco.
        F::ContainerMountSource => text(&mount(m, arg, |x| &x.dest)?.source)?,
        F::ContainerMountDest => text(&mount(m, arg, |x| &x.source)?.dest)?,
        F::ContainerMountMode => Value::owned(mount(m, arg, |x| &x.source)?.mode.clone()),
        F::ContainerMountRdwr => Value::owned(mount(m, arg, |x| &x.source)?.rdwr.to_string()),
        F::ContainerMountPropagation => text(&mount(m, arg, |x| &x.source)?.propagation)?,
        F::ContainerLabel => label(&m.labels, arg)?,
        F::ContainerLabels => labels(&m.labels)?,
        F::K8sPodName => text(&pod?.name)?,
        F::K8sNsName => text(&pod?.namespace)?,
        F::K8sPodUid | F::K8sPodId => text(&pod?.uid)?,
        F::K8sPodFullSandboxId => text(&pod?.sandbox_id)?,
        F::K8sPodSandboxId => {
            let id = &pod?.sandbox_id;
            text(&id[..12.min(id.len())])?
        }
        F::K8sPodLabel => label(&pod?.labels, arg)?,
        F::ContainerIp => text(m.ips.first()?)?,
        F::ContainerCniJson => text(&m.cni_json)?,
        F::K8sPodIp => {
            pod?;
            text(m.ips.first()?)?
        }
        F::K8sPodCniJson => {
            pod?;
            text(&m.cni_json)?
        }
        F::K8sPodLabels => labels(&pod?.labels)?,
        _ => return None,
    })
}

/// Falco's `source:dest:mode:rdwr:propagation`.
fn describe(x: &Mount) -> String {
    format!(
        "{}:{}:{}:{}:{}",
        x.source, x.dest, x.mode, x.rdwr, x.propagation
    )
}

/// The mount at index `[N]`, or the first whose `key` matches `[glob]`.
fn mount<'a>(m: &'a Metadata, arg: &FieldArg, key: impl Fn(&Mount) -> &str) -> Option<&'a Mount> {
    match arg {
        FieldArg::Index(i) => m.mounts.get(*i as usize),
        FieldArg::Key(k) => match k.parse::<usize>() {
            Ok(i) => m.mounts.get(i),
            Err(_) => m
                .mounts
                .iter()
                .find(|x| glob(k.as_bytes(), key(x).as_bytes(), false)),
        },
        FieldArg::None => None,
    }
}

fn label<'a>(labels: &'a [(String, String)], arg: &FieldArg) -> Option<Value<'a>> {
    let FieldArg::Key(k) = arg else { return None };
    labels
        .iter()
        .find(|(name, _)| name == k)
        .map(|(_, v)| Value::str(v.as_bytes()))
}

fn labels(labels: &[(String, String)]) -> Option<Value<'static>> {
    (!labels.is_empty()).then(|| {
        Value::owned(
            labels
                .iter()
                .map(|(k, v)| format!("{k}:{v}"))
                .collect::<Vec<_>>()
                .join(","),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::runtime::Pod;

    fn meta() -> Metadata {
        Metadata {
            name: "web".into(),
            image: "registry.local:5000/team/web:2.1".into(),
            privileged: Some(false),
            mounts: vec![
                Mount {
                    source: "/var/run/docker.sock".into(),
                    dest: "/run/docker.sock".into(),
                    rdwr: true,
                    propagation: "rprivate".into(),
                    ..Mount::default()
                },
                Mount {
                    source: "/proc".into(),
                    dest: "/host/proc".into(),
                    rdwr: false,
                    ..Mount::default()
                },
            ],
            created_ns: Some(1_000),
            pod: Some(Pod {
                name: "web-1".into(),
                namespace: "shop".into(),
                sandbox_id: "5e1b0c0e7d2f4a3b9c8d".into(),
                labels: vec![("app".into(), "web".into())],
                ..Pod::default()
            }),
            ..Metadata::default()
        }
    }

    fn get(f: F, arg: FieldArg) -> Option<String> {
        field(&meta(), f, &arg, 5_000).map(|v| v.render())
    }

    #[test]
    fn image_and_pod_fields() {
        assert_eq!(
            get(F::ContainerImageRepository, FieldArg::None).unwrap(),
            "registry.local:5000/team/web"
        );
        assert_eq!(get(F::ContainerImageTag, FieldArg::None).unwrap(), "2.1");
        assert_eq!(get(F::ContainerImageDigest, FieldArg::None), None);
        assert_eq!(
            get(F::ContainerPrivileged, FieldArg::None).unwrap(),
            "false"
        );
        assert_eq!(get(F::ContainerDuration, FieldArg::None).unwrap(), "4000");
        assert_eq!(get(F::K8sNsName, FieldArg::None).unwrap(), "shop");
        assert_eq!(
            get(F::K8sPodSandboxId, FieldArg::None).unwrap(),
            "5e1b0c0e7d2f"
        );
        assert_eq!(
            get(F::K8sPodLabel, FieldArg::Key("app".into())).unwrap(),
            "web"
        );
        assert_eq!(get(F::K8sPodLabels, FieldArg::None).unwrap(), "app:web");
        assert_eq!(get(F::ContainerIp, FieldArg::None), None);
    }

    #[test]
    fn mounts_by_index_and_glob() {
        assert_eq!(
            get(F::ContainerMounts, FieldArg::None).unwrap(),
            "/var/run/docker.sock:/run/docker.sock::true:rprivate,/proc:/host/proc::false:"
        );
        assert_eq!(
            get(F::ContainerMountDest, FieldArg::Key("/proc*".into())).unwrap(),
            "/host/proc"
        );
        assert_eq!(
            get(
                F::ContainerMountSource,
                FieldArg::Key("/run/docker.sock".into())
            )
            .unwrap(),
            "/var/run/docker.sock"
        );
        assert_eq!(
            get(F::ContainerMountRdwr, FieldArg::Key("1".into())).unwrap(),
            "false"
        );
        assert_eq!(
            get(F::ContainerMount, FieldArg::Index(0)).unwrap(),
            "/var/run/docker.sock:/run/docker.sock::true:rprivate"
        );
        assert_eq!(
            get(F::ContainerMountDest, FieldArg::Key("/etc*".into())),
            None
        );
    }
}
