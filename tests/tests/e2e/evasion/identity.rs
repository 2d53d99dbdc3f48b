//! Identities an attacker cannot rename: processes, containers, and
//! names whose bytes could be confused.

use mamori_e2e::agent::Agent;
use mamori_e2e::run_actor;

use super::{count, read_shadow_in_cgroup, scratch, with_default_rules};

/// A process that renames itself after a trusted program (prctl or
/// /proc/self/comm) is still judged by the name the kernel gave it at
/// exec, and the rename is reported. `sshd` may read /etc/shadow under
/// the default rules; the renamed actor may not.
#[test]
fn a_renamed_process_keeps_its_exec_name() {
    let agent = with_default_rules(&[]);
    let read = "Credential file read by unexpected process";
    let control = run_actor(&["open", "/etc/shadow"], Some(true)).pid;
    let by_prctl = run_actor(&["set-name", "sshd", "/etc/shadow"], Some(true)).pid;
    let by_proc = run_actor(&["set-name-proc", "sshd", "/etc/shadow"], Some(true)).pid;
    for pid in [control, by_prctl, by_proc] {
        let a = agent
            .wait_alert(read, pid)
            .unwrap_or_else(|| panic!("no `{read}` for pid {pid}"));
        assert_eq!(a["output_fields"]["proc.name"], "mamori-actor");
    }
    let renamed = agent
        .wait_alert("Process renamed to another program's name", by_prctl)
        .expect("the prctl rename is not reported");
    assert_eq!(renamed["output_fields"]["proc.comm"], "sshd");
    let proc_file = agent
        .wait_alert("Process name set through /proc", by_proc)
        .expect("the /proc/self/comm rename is not reported");
    assert_eq!(
        proc_file["output_fields"]["fd.name"],
        format!("/proc/{by_proc}/comm")
    );
    assert_eq!(
        count(&agent, "Process renamed to another program's name", control),
        0
    );
    assert!(agent.stop().success());
}

/// Names that are not valid UTF-8 print so that two different names never
/// print the same: each stray byte is escaped, a real U+FFFD and a real
/// backslash stay distinct.
#[test]
fn names_with_stray_bytes_stay_distinguishable() {
    use std::os::unix::ffi::OsStrExt;

    let dir = scratch("bytes");
    let rules = dir.join("bytes.yaml");
    std::fs::write(
        &rules,
        format!(
            "- rule: Odd name opened\n  desc: test\n  condition: evt.type = openat and fd.name startswith {}/x\n  output: opened %fd.name by %proc.pid\n  priority: NOTICE\n",
            dir.display()
        ),
    )
    .unwrap();
    let agent = Agent::start(&["-r", rules.to_str().unwrap()]);
    let names: [&[u8]; 4] = [b"x\xff", b"x\xfe", "x\u{fffd}".as_bytes(), b"x\\xff"];
    let mut shown = Vec::new();
    for name in names {
        let path = dir.join(std::ffi::OsStr::from_bytes(name));
        std::fs::write(&path, "").unwrap();
        let child = std::process::Command::new(mamori_e2e::sibling_binary("mamori-actor"))
            .arg("open")
            .arg(&path)
            .spawn()
            .unwrap();
        let pid = child.id();
        assert!(child.wait_with_output().unwrap().status.success());
        let a = agent
            .wait_alert("Odd name opened", pid)
            .unwrap_or_else(|| panic!("no alert for {path:?}"));
        shown.push(a["output_fields"]["fd.name"].as_str().unwrap().to_owned());
        let line = a["output"].as_str().unwrap();
        assert!(line.contains(shown.last().unwrap().as_str()), "{line}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(agent.stop().success());
    let base = dir.display().to_string();
    assert_eq!(shown[0], format!("{base}/x\\xff"));
    assert_eq!(shown[1], format!("{base}/x\\xfe"));
    assert_eq!(shown[2], format!("{base}/x\u{fffd}"));
    assert_eq!(shown[3], format!("{base}/x\\\\xff"));
}

/// A cgroup named like a container decides nothing: a host process moved
/// into one is still the host's (`container.id` = host), and the mismatch
/// is reported. Real containers keep their ids (the containers tests).
#[test]
fn a_cgroup_named_like_a_container_does_not_make_one() {
    let id = format!("{:0>64x}", 0xdead_beef_u64 + u64::from(std::process::id()));
    let cgroup = std::path::Path::new("/sys/fs/cgroup/pids").join(&id);
    std::fs::create_dir_all(&cgroup).unwrap();
    let agent = with_default_rules(&[]);
    let pid = read_shadow_in_cgroup(&cgroup);
    let mismatch = agent.wait_alert("Process in a cgroup named like an unknown container", pid);
    let read = agent.wait_alert("Credential file read by unexpected process", pid);
    assert!(agent.stop().success());
    let _ = std::fs::remove_dir(&cgroup);
    let mismatch = mismatch.expect("the fake container cgroup is not reported");
    assert_eq!(
        mismatch["output_fields"]["container.unconfirmed_id"],
        &id[..12]
    );
    assert_eq!(mismatch["output_fields"]["container.id"], "host");
    let read = read.expect("the shadow read is not reported");
    assert_eq!(read["output_fields"]["container.id"], "host", "{read}");
}

/// A process is the program it runs, whatever door started it. A tool
/// started through the dynamic loader by name (`ld.so ./nmap`) is still
/// the tool: `proc.name` and `proc.program` name it, `proc.exepath` the
/// loader. A copy of a program, or a script, carrying a trusted program's
/// name outside the system directories is not trusted: `sshd` may read
/// /etc/shadow under the default rules, `/tmp/.../sshd` may not. The tool
/// run directly and the plain actor reading the file are the controls.
#[test]
fn a_program_is_what_it_runs_whatever_started_it() {
    use std::os::unix::fs::PermissionsExt;

    use mamori_e2e::expect::Expectations;

    let dir = scratch("program");
    let actor = mamori_e2e::sibling_binary("mamori-actor");
    let (nmap, sshd, script) = (dir.join("nmap"), dir.join("sshd"), dir.join("s/sshd"));
    std::fs::copy(&actor, &nmap).unwrap();
    std::fs::copy(&actor, &sshd).unwrap();
    std::fs::create_dir_all(dir.join("s")).unwrap();
    std::fs::write(&script, "#!/bin/sh\nread x < /etc/shadow\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let agent = with_default_rules(&[]);
    let run = |cmd: &mut std::process::Command| {
        let child = cmd.spawn().unwrap();
        let pid = child.id();
        assert!(child.wait_with_output().unwrap().status.success());
        pid
    };
    let s = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    let loader = "/lib64/ld-linux-x86-64.so.2";
    let (scan, read) = (
        "Network scanner started",
        "Credential file read by unexpected process",
    );
    let mut want = Expectations::default();
    let quiet = ["open", "/etc/hostname"];
    let direct = run(std::process::Command::new(&nmap).args(quiet));
    want.pid(direct, scan, vec![("proc.name", "nmap".into())]);
    let loaded = run(std::process::Command::new(loader).arg(&nmap).args(quiet));
    want.pid(
        loaded,
        scan,
        vec![
            ("proc.name", "nmap".into()),
            ("proc.program", s(&nmap)),
            (
                "proc.exepath",
                std::fs::canonicalize(loader).map(|p| s(&p)).unwrap(),
            ),
        ],
    );
    let control = run_actor(&["open", "/etc/shadow"], Some(true)).pid;
    want.pid(control, read, vec![("proc.name", "mamori-actor".into())]);
    let copy = run(std::process::Command::new(&sshd).args(["open", "/etc/shadow"]));
    want.pid(
        copy,
        read,
        vec![("proc.name", "sshd".into()), ("proc.program", s(&sshd))],
    );
    let by_script = run(&mut std::process::Command::new(&script));
    want.pid(
        by_script,
        read,
        vec![("proc.name", "sshd".into()), ("proc.program", s(&script))],
    );
    let failures = want.check(&agent);
    super::finish(agent, &dir, failures);
}
