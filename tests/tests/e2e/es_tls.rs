//! The Elasticsearch output over TLS with credentials, against the real
//! node behind the launcher's HTTPS front: the right CA and password
//! deliver; a wrong CA, password or host name is a clear error, the
//! alerts stay in the spool, and no secret reaches the log or metrics.

use std::{
    fs,
    path::{Path, PathBuf},
};

use mamori_e2e::{
    agent::{Agent, free_port},
    es::{Node, by_pid, config, count, marker_rules, scratch, start_agent, wait_until},
    openssl, run_actor, sign_into_store,
};

/// Test certificates made with openssl: a CA, a server certificate for
/// `localhost` signed by it (in a PKCS#12 store for the node's HTTPS
/// front), and an unrelated CA.
struct Certs {
    ca: PathBuf,
    other_ca: PathBuf,
    server_p12: PathBuf,
}

fn make_certs(dir: &Path) -> Certs {
    let days = ["-days", "2"];
    for ca in ["ca", "other-ca"] {
        let mut a = vec!["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj"];
        let subj = format!("/CN=mamori test {ca}");
        let key = format!("{ca}.key");
        let crt = format!("{ca}.pem");
        a.extend([subj.as_str(), "-keyout", &key, "-out", &crt]);
        a.extend(days);
        openssl(dir, &a);
    }
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    sign_into_store(dir, "server", "DNS:localhost");
    let mut p = fs::metadata(dir.join("other-ca.pem"))
        .unwrap()
        .permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut p, 0o644);
    fs::set_permissions(dir.join("other-ca.pem"), p).unwrap();
    Certs {
        ca: dir.join("ca.pem"),
        other_ca: dir.join("other-ca.pem"),
        server_p12: dir.join("server.p12"),
    }
}

/// TLS with a custom CA and host name verification, basic auth and API
/// keys; wrong credentials, a wrong CA or a wrong host name give a clear
/// error, never show the secret, and keep the alerts in the spool.
#[test]
fn tls_and_credentials() {
    let dir = scratch("tls");
    let certs = make_certs(&dir);
    let tls_port = free_port();
    let node = Node::start_with(
        &dir.join("node"),
        free_port(),
        &[
            "--tls-port",
            &tls_port.to_string(),
            "--keystore",
            certs.server_p12.to_str().unwrap(),
            "--keystore-pass",
            "storepw",
            "--user",
            "elastic",
            "--password",
            "right-Pa55word",
            "--api-key",
            "key1:Sup3rSecretKey",
        ],
    );
    let https = node.tls_url().unwrap();
    assert_eq!(https, format!("https://localhost:{tls_port}"));
    let secret = |name: &str, value: &str| {
        let p = dir.join(name);
        fs::write(&p, format!("{value}\n")).unwrap();
        p.display().to_string()
    };
    let good_pw = secret("pw", "right-Pa55word");
    let bad_pw = secret("bad-pw", "wrong-Pa55word");
    let key = secret("key", "key1:Sup3rSecretKey");

    // Each case: its own namespace and spool; (extra config, delivers?,
    // what the log must say when it does not).
    let cases: [(&str, String, Option<&str>); 5] = [
        (
            "basic",
            format!(
                "    username: elastic\n    password_file: {good_pw}\n    ca_file: {}\n",
                certs.ca.display()
            ),
            None,
        ),
        (
            "apikey",
            format!(
                "    api_key_file: {key}\n    ca_file: {}\n",
                certs.ca.display()
            ),
            None,
        ),
        (
            "badpw",
            format!(
                "    username: elastic\n    password_file: {bad_pw}\n    ca_file: {}\n",
                certs.ca.display()
            ),
            Some("401"),
        ),
        (
            "badca",
            format!(
                "    username: elastic\n    password_file: {good_pw}\n    ca_file: {}\n",
                certs.other_ca.display()
            ),
            Some("certificate"),
        ),
        (
            "badhost",
            format!(
                "    username: elastic\n    password_file: {good_pw}\n    ca_file: {}\n",
                certs.ca.display()
            ),
            Some("certificate"),
        ),
    ];
    // (case, pid of the process whose alert it sent)
    let mut pids = Vec::new();
    for (name, extra, failure) in cases {
        let case_dir = dir.join(name);
        fs::create_dir_all(&case_dir).unwrap();
        let url = if name == "badhost" {
            format!("https://127.0.0.1:{tls_port}")
        } else {
            https.clone()
        };
        let cfg = config(&case_dir, &url, name, &extra);
        let (rules, marker) = marker_rules(&case_dir);
        let mut args: Vec<&str> = vec!["-c", cfg.to_str().unwrap()];
        args.extend(rules.iter().map(String::as_str));
        let agent = Agent::start_logged(&args);
        let pid = run_actor(&["open", &marker], Some(true)).pid;
        pids.push((name, pid));
        let index = format!("logs-mamori.alerts-{name}");
        let log = match failure {
            None => {
                wait_until(30, &format!("{name}: the alert delivered over TLS"), || {
                    count(&node.url, &index, by_pid(pid)) == 1
                });
                let log = agent.log();
                assert!(agent.stop().success());
                log
            }
            Some(expected) => {
                wait_until(30, &format!("{name}: a delivery error in the log"), || {
                    agent.log().contains("Elasticsearch delivery failing")
                        && agent.metric("mamori_elasticsearch_spooled_total") >= Some(1.0)
                });
                let log = agent.log();
                let line = log
                    .lines()
                    .find(|l| l.contains("Elasticsearch delivery failing"))
                    .unwrap();
                assert!(line.contains(expected), "{name}: {line}");
                assert!(
                    agent.metric("mamori_elasticsearch_indexed_total") == Some(0.0),
                    "{name}: nothing delivered"
                );
                assert_eq!(agent.metric("mamori_elasticsearch_connected"), Some(0.0));
                assert!(agent.stop().success());
                assert_eq!(count(&node.url, &index, by_pid(pid)), 0);
                // Still in the spool after the stop.
                let reopened = mamori::outputs::spool::Spool::open(
                    &case_dir.join("spool"),
                    mamori::outputs::spool::Limits::with_max(1 << 30),
                )
                .unwrap();
                assert!(reopened.pending() >= 1, "{name}: kept in the spool");
                log
            }
        };
        for s in ["right-Pa55word", "wrong-Pa55word", "Sup3rSecretKey"] {
            assert!(!log.contains(s), "{name}: a secret in the log");
        }
    }

    // The alert the wrong password could not deliver is still in its
    // spool: with the right password it arrives.
    let case_dir = dir.join("badpw");
    let cfg = config(
        &case_dir,
        &https,
        "badpw",
        &format!(
            "    username: elastic\n    password_file: {good_pw}\n    ca_file: {}\n",
            certs.ca.display()
        ),
    );
    let agent = start_agent(&cfg, &marker_rules(&case_dir).0);
    let (_, pid) = pids.iter().find(|(name, _)| *name == "badpw").unwrap();
    wait_until(
        30,
        "the spooled alert delivered with the right password",
        || count(&node.url, "logs-mamori.alerts-badpw", by_pid(*pid)) == 1,
    );
    assert!(agent.stop().success());
}
