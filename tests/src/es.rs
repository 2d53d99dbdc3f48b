//! A real Elasticsearch for the output tests: the shared node that
//! `cargo xtask test` starts (`MAMORI_TEST_ES_URL`), or a dedicated node a
//! test starts and stops itself (outages), both from the launcher that
//! `cargo xtask es build` installs.

use std::{
    fs,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::agent::{Agent, repo_rules};

/// Where `cargo xtask es build` installs the launcher.
pub const DIST: &str = "/var/lib/mamori-es/dist";

/// The shared node's URL.
pub fn shared_url() -> String {
    std::env::var("MAMORI_TEST_ES_URL").unwrap_or_else(|_| {
        panic!("MAMORI_TEST_ES_URL is not set: run the tests with `cargo xtask test` (it starts Elasticsearch), or `cargo xtask es start` and export it")
    })
}

/// An HTTP request to the node; returns status and body.
pub fn http(method: &str, url: &str, body: Option<&str>) -> Option<(u16, String)> {
    crate::http::request(method, url, body)
}

/// A JSON request that must succeed.
pub fn json(method: &str, url: &str, body: Option<&Value>) -> Value {
    let text = body.map(Value::to_string);
    let (status, body) =
        http(method, url, text.as_deref()).unwrap_or_else(|| panic!("{method} {url}: no answer"));
    assert!(
        (200..300).contains(&status),
        "{method} {url}: {status} {body}"
    );
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

/// Documents of `index` matching `query`, after a refresh.
pub fn search(url: &str, index: &str, query: Value, size: usize) -> Vec<Value> {
    let _ = http("POST", &format!("{url}/{index}/_refresh"), None);
    let Some((200, body)) = http(
        "POST",
        &format!("{url}/{index}/_search"),
        Some(&serde_json::json!({"query": query, "size": size}).to_string()),
    ) else {
        return Vec::new();
    };
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    v["hits"]["hits"]
        .as_array()
        .map(|h| h.iter().map(|d| d["_source"].clone()).collect())
        .unwrap_or_default()
}

/// How many documents of `index` match `query` (0 when the index is missing).
pub fn count(url: &str, index: &str, query: Value) -> u64 {
    let _ = http("POST", &format!("{url}/{index}/_refresh"), None);
    match http(
        "POST",
        &format!("{url}/{index}/_count"),
        Some(&serde_json::json!({"query": query}).to_string()),
    ) {
        Some((200, body)) => serde_json::from_str::<Value>(&body).unwrap_or(Value::Null)["count"]
            .as_u64()
            .unwrap_or(0),
        _ => 0,
    }
}

/// Waits up to `secs` for `f` to hold.
pub fn wait_until(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(
            Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A dedicated node, stopped on drop.
pub struct Node {
    child: Option<Child>,
    pub home: PathBuf,
    pub port: u16,
    pub url: String,
}

impl Node {
    /// Starts a node with its data in `home` on `port` and waits for it.
    pub fn start(home: &Path, port: u16) -> Self {
        Self::start_with(home, port, &[])
    }

    /// As `start`, with more launcher arguments (`--tls-port`...).
    pub fn start_with(home: &Path, port: u16, extra: &[&str]) -> Self {
        let run = Path::new(DIST).join("run.sh");
        assert!(
            run.exists(),
            "{} is missing: run `cargo xtask es build`",
            run.display()
        );
        let _ = fs::remove_file(home.join("url"));
        let log = fs::File::create(home.with_extension("log")).unwrap();
        let child = Command::new(run)
            .arg(home)
            .arg(port.to_string())
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap();
        let mut node = Self {
            child: Some(child),
            home: home.to_owned(),
            port,
            url: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(url) = fs::read_to_string(home.join("url")) {
                node.url = url.trim().to_owned();
                break;
            }
            if let Some(c) = node.child.as_mut() {
                assert!(
                    c.try_wait().unwrap().is_none(),
                    "the Elasticsearch node exited; see {}",
                    home.with_extension("log").display()
                );
            }
            assert!(Instant::now() < deadline, "Elasticsearch did not start");
            std::thread::sleep(Duration::from_millis(200));
        }
        // Green enough to write to.
        json(
            "GET",
            &format!(
                "{}/_cluster/health?wait_for_status=yellow&timeout=60s",
                node.url
            ),
            None,
        );
        node
    }

    /// The launcher's pid, which leads the node's process group.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The HTTPS front's URL (`https://localhost:PORT`), when started with one.
    pub fn tls_url(&self) -> Option<String> {
        fs::read_to_string(self.home.join("tls-url"))
            .ok()
            .map(|u| u.trim().to_owned())
    }

    /// Stops the node (SIGTERM to its process group) and waits.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SAFETY: signalling the group we created.
        unsafe { libc::kill(-(child.id() as i32), libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                // SAFETY: as above.
                unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
    }
}

// Helpers of the output tests: scratch space, config, rules, the agent.

/// A scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mamori-es-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

/// A config sending to `url` in `namespace`, spooling in `dir/spool`,
/// flushing every 100 ms unless `extra` says otherwise. Storm control is
/// off: the delivery tests raise a thousand alerts of one rule at once and
/// count them all.
pub fn config(dir: &Path, url: &str, namespace: &str, extra: &str) -> PathBuf {
    let path = dir.join("mamori.yaml");
    let flush = if extra.contains("flush_interval_ms") {
        ""
    } else {
        "    flush_interval_ms: 100\n"
    };
    fs::write(
        &path,
        format!(
            "storm_control: {{enabled: false}}\n\
             outputs:\n  elasticsearch:\n    url: {url}\n    namespace: {namespace}\n    \
             spool_dir: {}\n{flush}{extra}",
            dir.join("spool").display()
        ),
    )
    .unwrap();
    path
}

/// Test rules: the default ones plus a connect rule for network fields.
pub fn rules(dir: &Path, port: u16) -> Vec<String> {
    let extra = dir.join("extra.yaml");
    fs::write(
        &extra,
        format!(
            "- rule: Test outbound connection\n  desc: the e2e test's connect\n  \
             condition: evt.type = connect and proc.name = mamori-actor and fd.rport = {port}\n  \
             output: connect to %fd.rip:%fd.rport by %proc.name\n  priority: ERROR\n  \
             tags: [network, T1071, mitre_command_and_control]\n"
        ),
    )
    .unwrap();
    vec![
        "-r".into(),
        repo_rules().to_str().unwrap().into(),
        "-r".into(),
        extra.to_str().unwrap().into(),
    ]
}

/// Rules that fire on nothing but this test's own file: the returned
/// marker (`dir/marker`), opened. Delivery tests count alerts and spool
/// entries; with these rules nothing else on the host can add to what they
/// count.
pub fn marker_rules(dir: &Path) -> (Vec<String>, String) {
    let marker = dir.join("marker");
    fs::write(&marker, "x").unwrap();
    let marker = marker.to_str().unwrap().to_owned();
    let path = dir.join("marker-rules.yaml");
    fs::write(
        &path,
        format!(
            "- rule: Test marker read\n  desc: the delivery test opened its own marker file\n  \
             condition: evt.type in (open, openat, openat2) and fd.name = \"{marker}\"\n  \
             output: marker %fd.name read by %proc.name (proc.pid=%proc.pid)\n  \
             priority: WARNING\n  tags: [filesystem, T1005, mitre_collection]\n"
        ),
    )
    .unwrap();
    (vec!["-r".into(), path.to_str().unwrap().into()], marker)
}

/// The agent with config `cfg` and rules arguments `rules`.
pub fn start_agent(cfg: &Path, rules: &[String]) -> Agent {
    let mut args: Vec<&str> = vec!["-c", cfg.to_str().unwrap()];
    args.extend(rules.iter().map(String::as_str));
    Agent::start(&args)
}

/// A query for the alerts of process `pid`.
pub fn by_pid(pid: u32) -> Value {
    json!({"term": {"process.pid": pid}})
}
