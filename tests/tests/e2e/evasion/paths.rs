//! Paths are what the kernel touched: another name for a watched file,
//! a path too deep to walk, a directory fd, a path swapped during the call.

use mamori_e2e::agent::Agent;
use mamori_e2e::run_actor;

use super::{count, finish, scratch, with_default_rules};

/// Another name for a file a rule names — a hard link to it, the file
/// reached through a bind mount — is the file: the rule fires as for its
/// own name, `fd.name` is the file's own path and `fd.alias` the name it
/// was reached by. The kernel's prefilter lets such opens through by the
/// file's identity although their names match no rule.
#[test]
fn another_name_for_a_watched_file_is_the_file() {
    use mamori_e2e::expect::Expectations;

    // On the root file system, beside /etc (a hard link cannot cross).
    let dir = std::path::PathBuf::from(format!("/var/tmp/mamori-alias-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    let link = dir.join("hl");
    std::fs::hard_link("/etc/shadow", &link).unwrap();
    let bind = dir.join("etc");
    let agent = with_default_rules(&[]);
    // The kernel's copy of the identities follows the first events.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let read = "Credential file read by unexpected process";
    let mut want = Expectations::default();
    let own = |alias: Option<String>| {
        let mut f = vec![("fd.name", "/etc/shadow".to_owned())];
        f.extend(alias.map(|a| ("fd.alias", a)));
        f
    };
    want.pid(
        run_actor(&["open", "/etc/shadow"], Some(true)).pid,
        read,
        own(None),
    );
    let link_s = link.to_str().unwrap().to_owned();
    want.pid(
        run_actor(&["open", &link_s], Some(true)).pid,
        read,
        own(Some(link_s.clone())),
    );
    // A bind mount of /etc, in a mount namespace of the actor's own.
    let actor = mamori_e2e::sibling_binary("mamori-actor");
    let through = format!("{}/shadow", bind.display());
    let out = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount --bind /etc {} && exec {} open {through}",
            bind.display(),
            actor.display()
        ))
        .spawn()
        .unwrap();
    let pid = out.id();
    assert!(out.wait_with_output().unwrap().status.success());
    want.pid(pid, read, own(Some(through)));
    let failures = want.check(&agent);
    let _ = std::fs::remove_file(&link);
    finish(agent, &dir, failures);
}

/// Deep trees and deep mount stacks are walked whole; a path the walk
/// cannot hold (longer than the capture bound) is never compared as if it
/// were whole: `fd.name` is unknown, the end of the path is
/// `fd.partial_name`, and an internal alert says paths could not be
/// resolved. A shallow path is the control.
#[test]
fn deep_paths_are_walked_and_a_path_too_long_is_unknown() {
    let tag = std::process::id();
    let top = std::env::temp_dir().join(format!("mamori-deep-{tag}"));
    let name = format!("mamori-deep-file-{tag}");
    // 300 components: far past what a walk bounded by the verifier's
    // budget reached (40), well within the byte bound.
    let mut deep = top.clone();
    for _ in 0..300 {
        deep.push("d");
    }
    std::fs::create_dir_all(&deep).unwrap();
    let (far, near) = (deep.join(&name), top.join(&name));
    std::fs::write(&far, "x").unwrap();
    std::fs::write(&near, "x").unwrap();
    let stacked = top.join("stacked");
    std::fs::create_dir_all(&stacked).unwrap();
    let rules = top.join("rules.yaml");
    std::fs::write(
        &rules,
        format!(
            "- rule: e2e deep file\n  desc: test\n  condition: evt.type in (open, openat) and \
             fd.filename = {name}\n  output: \"name=%fd.name partial=%fd.partial_name \
             pid=%proc.pid\"\n  priority: NOTICE\n  tags: [T1083]\n"
        ),
    )
    .unwrap();
    let agent = Agent::start(&["-r", rules.to_str().unwrap()]);
    let actor = mamori_e2e::sibling_binary("mamori-actor");
    let deep_pid = run_actor(&["open", far.to_str().unwrap()], Some(true)).pid;
    let near_pid = run_actor(&["open", near.to_str().unwrap()], Some(true)).pid;
    // 100 tmpfs mounts stacked on one directory, in a mount namespace of
    // the actor's own: each is a step of the walk, and no byte.
    let stacked_pid = in_shell(&format!(
        "exec unshare -m --propagation private sh -c 'for i in $(seq 100); do mount -t tmpfs \
         mamori-stack {dir} || exit 1; done; echo x > {dir}/{name} && exec {actor} open \
         {dir}/{name}'",
        dir = stacked.display(),
        actor = actor.display()
    ));
    // 2,100 components of "/d": 4,200 bytes, past the 4,096 a path holds.
    // Made and opened by relative steps (the absolute path is longer than
    // PATH_MAX).
    let long_pid = in_shell(&format!(
        "mkdir {top}/long && cd {top}/long && for i in $(seq 2100); do mkdir d && cd -P d || exit 1; done; echo x > {name} \
         && exec {actor} open {name}",
        top = top.display(),
        actor = actor.display()
    ));
    let deep_alert = agent.wait_alert("e2e deep file", deep_pid);
    let near_alert = agent.wait_alert("e2e deep file", near_pid);
    let stacked_alert = agent.wait_alert("e2e deep file", stacked_pid);
    let long_alert = agent.wait_alert("e2e deep file", long_pid);
    let internal = agent.wait_alert_where("mamori internal: path not resolved", |_| true);
    assert!(agent.stop().success());
    // rm -rf: remove_dir_all would pass paths longer than PATH_MAX.
    let _ = std::process::Command::new("rm")
        .arg("-rf")
        .arg(&top)
        .status();
    let whole = |alert: Option<serde_json::Value>, path: &std::path::Path, what: &str| {
        let f = alert.unwrap_or_else(|| panic!("no alert for the {what} file"))["output_fields"]
            .clone();
        assert_eq!(f["fd.name"], path.to_str().unwrap(), "{what}: {f}");
        assert!(f["fd.partial_name"].is_null(), "{what}: {f}");
    };
    whole(near_alert, &near, "shallow");
    whole(deep_alert, &far, "300 components deep");
    whole(stacked_alert, &stacked.join(&name), "100 mounts deep");
    let f = long_alert.expect("no alert for the 4,200-byte path")["output_fields"].clone();
    assert!(
        f["fd.name"].is_null(),
        "a partial path was given as fd.name: {f}"
    );
    let partial = f["fd.partial_name"].as_str().unwrap_or_default().to_owned();
    assert!(partial.ends_with(&format!("/d/d/{name}")), "{f}");
    assert!(
        internal.is_some(),
        "no internal alert for the unresolved path"
    );
}

/// Runs `sh -c SCRIPT` to success; its pid (the actor it `exec`s keeps it).
fn in_shell(script: &str) -> u32 {
    let child = std::process::Command::new("sh")
        .args(["-c", script])
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{script}: {:?}", out.status);
    pid
}

/// A relative path is resolved against the directory the kernel resolved
/// it against, taken from the kernel's objects: a directory fd (even after
/// its directory was renamed) or a working directory entered through a
/// symlink. The plain absolute path is the control.
#[test]
fn relative_paths_resolve_where_the_kernel_did() {
    use mamori_e2e::expect::Expectations;

    let dir = scratch("relative");
    let real = dir.join("real");
    let moved = dir.join("moved");
    let alias = dir.join("alias");
    std::fs::create_dir_all(&real).unwrap();
    for name in ["plain", "by-fd", "after-move", "via-cwd"] {
        std::fs::write(real.join(name), "x").unwrap();
    }
    let rules = dir.join("rules.yaml");
    std::fs::write(
        &rules,
        format!(
            "- rule: e2e relative unlink\n  desc: test\n  condition: evt.type in (unlink, \
             unlinkat) and fs.path.name startswith \"{}/\"\n  output: \"name=%fs.path.name \
             raw=%fs.path.nameraw pid=%proc.pid\"\n  priority: NOTICE\n  tags: [T1070.004]\n",
            dir.display()
        ),
    )
    .unwrap();
    let agent = Agent::start(&["-r", rules.to_str().unwrap()]);
    let rule = "e2e relative unlink";
    let s = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    let mut want = Expectations::default();
    let name_is = |p: std::path::PathBuf| vec![("fs.path.name", s(&p))];
    let plain = run_actor(&["unlink", &s(&real.join("plain"))], Some(true)).pid;
    want.pid(plain, rule, name_is(real.join("plain")));
    let by_fd = run_actor(&["unlink-at", &s(&real), "by-fd"], Some(true)).pid;
    want.pid(by_fd, rule, name_is(real.join("by-fd")));
    // The directory is renamed between the open and the unlinkat: the
    // kernel removes the file from where the directory is now.
    let after_move = run_actor(
        &["unlink-at", &s(&real), "after-move", &s(&moved)],
        Some(true),
    )
    .pid;
    want.pid(after_move, rule, name_is(moved.join("after-move")));
    std::os::unix::fs::symlink(&moved, &alias).unwrap();
    let via_cwd = run_actor(&["unlink-in", &s(&alias), "via-cwd"], Some(true)).pid;
    want.pid(via_cwd, rule, name_is(moved.join("via-cwd")));
    let failures = want.check(&agent);
    finish(agent, &dir, failures);
}

/// A thread that rewrites a path while another thread's unlink uses it
/// (the race that hides which file was removed from a monitor reading the
/// argument once) is reported: the entry copy differs from the exit read.
/// The same calls without the rewriting thread are quiet.
#[test]
fn a_path_swapped_during_the_call_is_reported() {
    let dir = scratch("race");
    // Short paths, and paths longer than the entry copy's short slots
    // (255 bytes), which are kept whole in a table of their own.
    let long = dir.join("l".repeat(250));
    std::fs::create_dir_all(&long).unwrap();
    let agent = with_default_rules(&[]);
    let rule = "Path argument changed during a syscall";
    let mut failures = Vec::new();
    for base in [dir.clone(), long] {
        let (shown, hidden) = (base.join("decoy"), base.join("victim"));
        let (shown, hidden) = (shown.to_str().unwrap(), hidden.to_str().unwrap());
        let control = run_actor(&["race-unlink", shown, hidden, "3000", "still"], Some(true)).pid;
        let attack = run_actor(&["race-unlink", shown, hidden, "3000"], Some(true)).pid;
        match &agent.wait_alert(rule, attack) {
            None => failures.push(format!("no alert for the swapped path {shown}")),
            Some(a) => {
                let f = &a["output_fields"];
                // The writer works byte by byte: a read may see half of
                // each name, but never the same bytes twice.
                let entry = f["fs.path.name"].as_str().unwrap_or_default();
                let exit = f["evt.arg_at_exit"].as_str().unwrap_or_default();
                let ours = |p: &str| p.starts_with(&format!("{}/", base.display()));
                if entry == exit || !ours(entry) || !ours(exit) {
                    failures.push(format!("the two names are not reported: {f}"));
                }
            }
        }
        // The attack's events came after the control's: all are processed.
        if count(&agent, rule, control) != 0 {
            failures.push(format!("the unchanged path {shown} was reported"));
        }
    }
    finish(agent, &dir, failures);
}
