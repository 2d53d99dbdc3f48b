//! The cluster's certificates and kubeconfigs, made with openssl: one CA,
//! a serving certificate for the API server and the kubelet, a client
//! certificate per component (its user and group are the subject's CN and
//! O, as the API server reads them) and the service-account signing key.
//! ECDSA P-256 keys: a few milliseconds each.

use std::{fs, path::Path};

use super::{NODE_IP, NODE_NAME};
use crate::cmd;

/// The components that talk to the API server, with their user and group.
pub const CLIENTS: &[(&str, &str, &str)] = &[
    ("admin", "kubernetes-admin", "system:masters"),
    ("controller-manager", "system:kube-controller-manager", ""),
    ("scheduler", "system:kube-scheduler", ""),
    ("kubelet", "system:node:mamori-node", "system:nodes"),
    // The API server's own client certificate, to reach the kubelets.
    (
        "apiserver-kubelet",
        "kube-apiserver-kubelet-client",
        "system:masters",
    ),
];

pub fn make(dir: &Path) -> anyhow::Result<()> {
    debug_assert!(CLIENTS.iter().any(|c| c.1.ends_with(NODE_NAME)));
    fs::create_dir_all(dir)?;
    let p = |f: &str| dir.join(f).to_string_lossy().into_owned();
    key(&p("ca.key"))?;
    cmd::quiet(
        "openssl",
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            &p("ca.key"),
            "-out",
            &p("ca.crt"),
            "-days",
            "30",
            "-subj",
            "/CN=mamori-test-cluster-ca",
        ],
    )?;
    let serving = format!(
        "subjectAltName=DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,\
         DNS:kubernetes.default.svc.cluster.local,DNS:localhost,DNS:{NODE_NAME},\
         IP:127.0.0.1,IP:{NODE_IP},IP:10.96.0.1\nextendedKeyUsage=serverAuth"
    );
    signed(dir, "apiserver", "/CN=kube-apiserver", &serving)?;
    signed(
        dir,
        "kubelet-serving",
        &format!("/CN={NODE_NAME}"),
        &serving,
    )?;
    for (name, user, group) in CLIENTS {
        let subject = if group.is_empty() {
            format!("/CN={user}")
        } else {
            format!("/O={group}/CN={user}")
        };
        signed(dir, name, &subject, "extendedKeyUsage=clientAuth")?;
    }
    key(&p("sa.key"))?;
    cmd::quiet(
        "openssl",
        &["ec", "-in", &p("sa.key"), "-pubout", "-out", &p("sa.pub")],
    )?;
    Ok(())
}

fn key(path: &str) -> anyhow::Result<()> {
    cmd::quiet(
        "openssl",
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            path,
        ],
    )
    .map(drop)
}

fn signed(dir: &Path, name: &str, subject: &str, extensions: &str) -> anyhow::Result<()> {
    let p = |f: &str| dir.join(f).to_string_lossy().into_owned();
    let (k, csr, crt, ext) = (
        p(&format!("{name}.key")),
        p(&format!("{name}.csr")),
        p(&format!("{name}.crt")),
        p(&format!("{name}.ext")),
    );
    key(&k)?;
    cmd::quiet(
        "openssl",
        &["req", "-new", "-key", &k, "-out", &csr, "-subj", subject],
    )?;
    fs::write(&ext, format!("{extensions}\n"))?;
    cmd::quiet(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &p("ca.crt"),
            "-CAkey",
            &p("ca.key"),
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "30",
            "-extfile",
            &ext,
        ],
    )?;
    fs::remove_file(csr)?;
    fs::remove_file(ext)?;
    Ok(())
}

/// A kubeconfig for client certificate `name` against the API server.
pub fn kubeconfig(dir: &Path, name: &str) -> anyhow::Result<String> {
    let path = dir.join(format!("{name}.kubeconfig"));
    let d = dir.display();
    fs::write(
        &path,
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: mamori-test
  cluster:
    certificate-authority: {d}/ca.crt
    server: https://{NODE_IP}:6443
users:
- name: {name}
  user:
    client-certificate: {d}/{name}.crt
    client-key: {d}/{name}.key
contexts:
- name: mamori-test
  context: {{cluster: mamori-test, user: {name}}}
current-context: mamori-test
"
        ),
    )?;
    Ok(path.to_string_lossy().into_owned())
}
