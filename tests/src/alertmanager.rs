//! A real Prometheus Alertmanager for the on-call output tests (built by
//! `cargo xtask prometheus`), on loopback, with one route: every alert in
//! its own group, sent at once to the test's webhook receiver. Stopped
//! (killed) on drop.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::{agent::free_port, http::request};

pub const BIN: &str = "/var/lib/mamori-tools/bin/alertmanager";

pub struct Alertmanager {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Alertmanager {
    /// Configured to send to `webhook` (a URL), not started.
    pub fn new(webhook: &str) -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("mamori-am-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).unwrap();
        // group_by '...': every label set its own group, so each alert is
        // notified by itself; group_wait 0s: at once.
        let config = format!(
            "route:\n  receiver: test\n  group_by: ['...']\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 4h\n\
             receivers:\n  - name: test\n    webhook_configs:\n      - url: {webhook}\n        send_resolved: false\n"
        );
        std::fs::write(dir.join("alertmanager.yml"), config).unwrap();
        Self {
            port,
            dir,
            child: None,
        }
    }

    /// Configured and started.
    pub fn start(webhook: &str) -> Self {
        let mut am = Self::new(webhook);
        am.up();
        am
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts it (on the same port and storage as before) and waits until
    /// it is ready.
    pub fn up(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new(BIN)
            .arg(format!(
                "--config.file={}",
                self.dir.join("alertmanager.yml").display()
            ))
            .arg(format!(
                "--storage.path={}",
                self.dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{}", self.port))
            // No cluster: no gossip port, no peers to wait for.
            .arg("--cluster.listen-address=")
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{BIN} ({e}): cargo xtask prometheus builds it"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !request("GET", &format!("{}/-/ready", self.url()), None)
            .is_some_and(|(s, _)| s == 200)
        {
            assert!(Instant::now() < deadline, "Alertmanager never became ready");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills it: connections are refused until `up`.
    pub fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The alerts it holds (`GET /api/v2/alerts`), silenced ones included.
    pub fn alerts(&self) -> Vec<serde_json::Value> {
        let (status, body) = request(
            "GET",
            &format!("{}/api/v2/alerts?silenced=true&inhibited=true", self.url()),
            None,
        )
        .expect("Alertmanager answers");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Silences alerts whose label `name` equals `value` for an hour; the
    /// silence's id.
    pub fn silence(&self, name: &str, value: &str) -> String {
        let now = jiff::Timestamp::now();
        let minutes = |m: i64| jiff::SignedDuration::from_mins(m);
        let body = serde_json::json!({
            "matchers": [{"name": name, "value": value, "isRegex": false, "isEqual": true}],
            "startsAt": (now - minutes(1)).to_string(),
            "endsAt": (now + minutes(60)).to_string(),
            "createdBy": "mamori e2e",
            "comment": "the silence test",
        });
        let (status, resp) = request(
            "POST",
            &format!("{}/api/v2/silences", self.url()),
            Some(&body.to_string()),
        )
        .expect("Alertmanager answers");
        assert_eq!(status, 200, "{resp}");
        serde_json::from_str::<serde_json::Value>(&resp).unwrap()["silenceID"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        self.down();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
