//! The kernel's open prefilter on real opens: what the rules name still
//! alerts however the file is reached (open, openat, openat2, creat, a
//! relative path, a symlink, "../", a rename, a bind-mounted directory or
//! file, a name longer than the kernel's keys), and what no rule names is
//! dropped in the kernel (counted). Failed path calls (unlink, mkdir...)
//! no rule reads are dropped there too.

use std::{fs, os::unix::fs::symlink, path::Path, process::Command};

use mamori_e2e::{agent::Agent, run_actor};

/// Unmounts on drop, even when the test fails.
struct Mounts(Vec<String>);

impl Drop for Mounts {
    fn drop(&mut self) {
        for m in self.0.iter().rev() {
            let _ = Command::new("umount").arg(m).status();
        }
    }
}

fn bind(from: &Path, to: &Path, mounts: &mut Mounts) {
    let ok = Command::new("mount")
        .arg("--bind")
        .arg(from)
        .arg(to)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mount --bind {} {}", from.display(), to.display());
    mounts.0.push(to.to_str().unwrap().to_owned());
}

fn rule(name: &str, condition: &str) -> String {
    format!(
        "- rule: {name}\n  desc: prefilter test\n  condition: evt.type in (open, openat, openat2, creat) and {condition}\n  \
         output: \"{name} (proc.pid=%proc.pid fd.name=%fd.name fd.nameraw=%fd.nameraw)\"\n  priority: WARNING\n"
    )
}

#[test]
fn watched_opens_alert_however_reached_and_the_rest_are_dropped_in_the_kernel() {
    let dir = std::env::temp_dir().join(format!("mamori-prefilter-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let p = |s: &str| dir.join(s);
    let s = |s: &str| dir.join(s).to_str().unwrap().to_owned();
    for d in ["vault", "alias", "etc", "sub", "conf"] {
        fs::create_dir_all(p(d)).unwrap();
    }
    fs::write(p("vault/secret.key"), "k").unwrap();
    fs::write(p("vault/plain.txt"), "x").unwrap();
    fs::write(p("source.txt"), "s").unwrap();
    fs::write(p("conf/app.conf"), "").unwrap();
    let long = "l".repeat(70) + ".dat";
    fs::write(p(&long), "x").unwrap();
    fs::write(p("tmpname"), "t").unwrap();
    symlink(p("vault/secret.key"), p("link")).unwrap();
    fs::write(p("etc/exact.conf"), "e").unwrap();
    symlink(p("etc/exact.conf"), p("exact-link")).unwrap();
    let mut mounts = Mounts(Vec::new());
    // A directory seen through a bind mount: its files' parent is "alias".
    bind(&p("vault"), &p("alias"), &mut mounts);
    // A file bind-mounted over another: its name is the mountpoint's.
    bind(&p("source.txt"), &p("conf/app.conf"), &mut mounts);

    let rules = p("rules.yaml");
    fs::write(
        &rules,
        [
            // Rules match first-wins, in this order: each open below is
            // meant for exactly one of them.
            rule(
                "Traversal",
                "fd.num >= 0 and fd.nameraw contains ../ and fd.directory endswith /vault and fd.filename = secret.key",
            ),
            rule(
                "Key read",
                "evt.is_open_read = true and evt.rawres >= 0 and fd.filename endswith .key",
            ),
            rule(
                "Exact path",
                &format!("fd.num >= 0 and fd.name = {}", s("etc/exact.conf")),
            ),
            rule(
                "Alias entry",
                "fd.num >= 0 and fd.directory endswith /alias and fd.filename = plain.txt",
            ),
            rule("App config", "fd.num >= 0 and fd.filename = app.conf"),
            rule("Renamed", "fd.num >= 0 and fd.filename = renamed.txt"),
            rule(
                "Written",
                "evt.is_open_write = true and evt.rawres >= 0 and fd.filename = written.txt",
            ),
        ]
        .concat(),
    )
    .unwrap();
    let agent = Agent::start(&["-r", rules.to_str().unwrap()]);

    let open = |args: &[&str]| run_actor(args, Some(true)).pid;
    let mut want: Vec<(&str, u32, String)> = Vec::new();
    let key = s("vault/secret.key");
    // The plain act, then the same file reached other ways.
    want.push(("Key read", open(&["open", &key]), key.clone()));
    let exact = s("etc/exact.conf");
    want.push(("Exact path", open(&["open", &exact]), exact.clone()));
    want.push((
        "Exact path",
        open(&["open", &s("exact-link")]),
        exact.clone(),
    ));
    for via in ["open", "openat2"] {
        want.push(("Key read", open(&["open-via", via, &key]), key.clone()));
    }
    want.push(("Key read", open(&["open", &s("link")]), key.clone()));
    want.push((
        "Key read",
        open(&["open-at", &s("vault"), "secret.key"]),
        key.clone(),
    ));
    want.push((
        "Traversal",
        open(&["open", &s("sub/../vault/secret.key")]),
        key.clone(),
    ));
    want.push((
        "Alias entry",
        open(&["open", &s("alias/plain.txt")]),
        s("alias/plain.txt"),
    ));
    want.push((
        "Key read",
        open(&["open", &s("alias/secret.key")]),
        s("alias/secret.key"),
    ));
    want.push((
        "App config",
        open(&["open", &s("conf/app.conf")]),
        s("conf/app.conf"),
    ));
    fs::rename(p("tmpname"), p("renamed.txt")).unwrap();
    want.push((
        "Renamed",
        open(&["open", &s("renamed.txt")]),
        s("renamed.txt"),
    ));
    want.push((
        "Written",
        open(&["open-via", "creat", &s("written.txt")]),
        s("written.txt"),
    ));
    want.push((
        "Written",
        open(&["create", &s("written.txt")]),
        s("written.txt"),
    ));

    // No rule names these: a read of the file "written.txt" (only writes
    // are watched), a traversal to another file, and a burst of reads of an
    // ordinary file, which the kernel must drop: counted as filtered, not
    // received (other processes can only add to the first and the second
    // stays far below the burst unless the kernel sent it).
    let mut quiet = vec![
        open(&["open", &s("written.txt")]),
        open(&["open", &s("sub/../vault/plain.txt")]),
    ];
    let before = (
        agent.metric("mamori_kernel_events_filtered_total").unwrap(),
        agent.metric("mamori_events_received_total").unwrap(),
    );
    quiet.push(open(&["open-n", &s("vault/plain.txt"), "5000"]));

    let mut failures = Vec::new();
    for (rule, pid, name) in &want {
        match agent.wait_alert(rule, *pid) {
            Some(a) if a["output_fields"]["fd.name"] == name.as_str() => {}
            Some(a) => failures.push(format!(
                "{rule} (pid {pid}): fd.name {}",
                a["output_fields"]["fd.name"]
            )),
            None => failures.push(format!("no `{rule}` alert for pid {pid} ({name})")),
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let filtered = agent.metric("mamori_kernel_events_filtered_total").unwrap() - before.0;
    let received = agent.metric("mamori_events_received_total").unwrap() - before.1;
    eprintln!(
        "5000 unwatched opens: {filtered} filtered in the kernel, {received} events received"
    );
    if filtered < 5000.0 || received >= 5000.0 {
        failures.push(format!(
            "unwatched opens not dropped in the kernel: {filtered} filtered, {received} received"
        ));
    }
    let (status, alerts) = agent.stop_with_alerts();
    assert!(status.success());
    for a in &alerts {
        let pid = a["output_fields"]["proc.pid"].as_u64().unwrap_or(0);
        let expected = want
            .iter()
            .any(|(r, p, _)| u64::from(*p) == pid && a["rule"] == *r);
        if quiet.iter().any(|q| u64::from(*q) == pid)
            || (!expected && want.iter().any(|(_, p, _)| u64::from(*p) == pid))
        {
            failures.push(format!("unexpected: {}", a["output"]));
        }
    }

    // A name longer than the kernel's keys: the term cannot be looked up,
    // so the kernel admits the opens it would need, and the rule fires.
    fs::write(
        &rules,
        rule(
            "Long name",
            &format!("fd.num >= 0 and fd.filename = {long}"),
        ),
    )
    .unwrap();
    let agent = Agent::start(&["-r", rules.to_str().unwrap()]);
    let pid = open(&["open", &s(&long)]);
    if agent.wait_alert("Long name", pid).is_none() {
        failures.push(format!("no `Long name` alert for pid {pid}"));
    }
    assert!(agent.stop().success());

    drop(mounts);
    let _ = fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A rule that tests a path syscall's result for success on every branch
/// does not need its failed calls: the kernel drops them (counted), while
/// a successful call still alerts, and a rule that reads failures of
/// another syscall gets them.
#[test]
fn failed_path_calls_no_rule_reads_are_dropped_in_the_kernel() {
    let dir = std::env::temp_dir().join(format!("mamori-failures-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("exists")).unwrap();
    fs::write(dir.join("victim"), "v").unwrap();
    let s = |n: &str| dir.join(n).to_str().unwrap().to_owned();
    let rules = dir.join("rules.yaml");
    let rule = |name: &str, cond: &str| {
        format!(
            "- rule: {name}\n  desc: failure test\n  condition: {cond}\n  \
             output: \"{name} (proc.pid=%proc.pid path=%fs.path.name res=%evt.res)\"\n  priority: WARNING\n"
        )
    };
    fs::write(
        &rules,
        [
            rule(
                "Removed",
                &format!(
                    "evt.type in (unlink, unlinkat) and evt.rawres = 0 and fs.path.name startswith {}/",
                    dir.display()
                ),
            ),
            rule(
                "Mkdir attempt",
                &format!(
                    "evt.type in (mkdir, mkdirat) and fs.path.name startswith {}/",
                    dir.display()
                ),
            ),
        ]
        .concat(),
    )
    .unwrap();
    let agent = Agent::start(&["-r", rules.to_str().unwrap()]);
    let act = |args: &[&str]| run_actor(args, Some(true)).pid;
    let mut failures = Vec::new();

    let before = (
        agent.metric("mamori_kernel_events_filtered_total").unwrap(),
        agent.metric("mamori_events_received_total").unwrap(),
    );
    let quiet = act(&["unlink-missing", &s("absent"), "5000"]);
    let attempt = act(&["mkdir-fails", &s("exists")]);
    let removed = act(&["unlink", &s("victim")]);
    match agent.wait_alert("Mkdir attempt", attempt) {
        Some(a) if a["output_fields"]["evt.res"] == "EEXIST" => {}
        Some(a) => failures.push(format!("failed mkdir: {}", a["output"])),
        None => failures.push(format!(
            "no `Mkdir attempt` alert for the failed mkdir (pid {attempt})"
        )),
    }
    if agent.wait_alert("Removed", removed).is_none() {
        failures.push(format!("no `Removed` alert for pid {removed}"));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let filtered = agent.metric("mamori_kernel_events_filtered_total").unwrap() - before.0;
    let received = agent.metric("mamori_events_received_total").unwrap() - before.1;
    eprintln!("5000 failed unlinks: {filtered} filtered in the kernel, {received} events received");
    if filtered < 5000.0 || received >= 5000.0 {
        failures.push(format!(
            "failed unlinks not dropped in the kernel: {filtered} filtered, {received} received"
        ));
    }
    let (status, alerts) = agent.stop_with_alerts();
    assert!(status.success());
    if let Some(a) = alerts
        .iter()
        .find(|a| a["output_fields"]["proc.pid"].as_u64() == Some(u64::from(quiet)))
    {
        failures.push(format!("unexpected: {}", a["output"]));
    }
    let _ = fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
