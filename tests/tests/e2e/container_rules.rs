//! The default rules about containers, on real podman containers: each
//! trigger runs as a container's own command, and exactly the expected rule
//! must fire for it.

use std::{fs, path::Path};

use mamori_e2e::{
    agent::{Agent, repo_rules},
    expect::{Expectations, Who},
    podman::{self, busybox_rootfs},
};

/// Runs one container (podman flags, then the command) and returns its
/// short id; the command's exit status is not the point.
fn container(dir: &Path, name: &str, flags: &[&str], command: &[&str]) -> String {
    let rootfs = dir.join("rootfs");
    let cidfile = dir.join(format!("{name}.cid"));
    let mut args = vec!["--cidfile", cidfile.to_str().unwrap()];
    args.extend_from_slice(flags);
    args.extend(["--rootfs", rootfs.to_str().unwrap()]);
    args.extend_from_slice(command);
    podman::try_run(&args);
    let id = fs::read_to_string(&cidfile).expect("podman wrote no container id");
    id.trim()[..12].to_owned()
}

fn f(name: &'static str, value: impl Into<String>) -> (&'static str, String) {
    (name, value.into())
}

#[test]
fn container_rules_fire_on_real_containers() {
    let dir = std::env::temp_dir().join(format!("mamori-crules-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let rootfs = dir.join("rootfs");
    busybox_rootfs(&rootfs);
    let sa = rootfs.join("var/run/secrets/kubernetes.io/serviceaccount");
    fs::create_dir_all(&sa).unwrap();
    fs::write(sa.join("token"), "eyJhbGciOi.not-a-token").unwrap();
    fs::create_dir_all(rootfs.join("usr/local/bin")).unwrap();
    fs::copy(
        rootfs.join("bin/busybox"),
        rootfs.join("usr/local/bin/kubectl"),
    )
    .unwrap();
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/mount")).unwrap();
    fs::create_dir_all(rootfs.join("mnt")).unwrap();

    let agent = Agent::start(&["-r", repo_rules().to_str().unwrap()]);
    let mut want = Expectations::default();

    let token = "/var/run/secrets/kubernetes.io/serviceaccount/token";
    let id = container(&dir, "token", &[], &["/bin/cat", token]);
    want.push(
        Who::Field("container.id", id),
        "Kubernetes service account token read by a shell tool",
        vec![f("fd.name", token), f("proc.name", "cat")],
    );
    let id = container(
        &dir,
        "kubectl",
        &[],
        &["/usr/local/bin/kubectl", "get", "pods"],
    );
    want.push(
        Who::Field("container.id", id),
        "Kubernetes client tool run in a container",
        vec![f("proc.name", "kubectl")],
    );
    let id = container(
        &dir,
        "mount",
        &["--cap-add", "SYS_ADMIN"],
        &["/bin/mount", "-t", "tmpfs", "none", "/mnt"],
    );
    want.push(
        Who::Field("container.id", id),
        "Mount attempted in a container",
        vec![f("evt.arg.dir", "/mnt"), f("evt.arg.type", "tmpfs")],
    );
    // busybox running its unshare applet: named busybox, not unshare, so
    // no namespace tool is excused; its parent is the runtime (conmon).
    let id = container(
        &dir,
        "unshare",
        &["--cap-add", "SYS_ADMIN"],
        &["/bin/busybox", "unshare", "-u", "/bin/true"],
    );
    want.push(
        Who::Field("container.id", id.clone()),
        "Namespace change by unexpected process",
        vec![f("proc.name", "busybox"), f("evt.type", "unshare")],
    );
    want.push(
        Who::Field("container.id", id),
        "Shell started in a container",
        vec![f("proc.name", "busybox")],
    );
    let id = container(&dir, "privileged", &["--privileged"], &["/bin/true"]);
    want.push(
        Who::Field("container.id", id),
        "Privileged container started",
        vec![f("proc.cmdline", "true")],
    );
    let id = container(
        &dir,
        "hostetc",
        &["-v", "/etc:/host-etc:ro"],
        &["/bin/true"],
    );
    want.push(
        Who::Field("container.id", id),
        "Container started with a sensitive host path mounted",
        vec![],
    );

    let failures = want.check(&agent);
    assert!(agent.stop().success());
    let _ = fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// "Program written in the container executed", on overlayfs roots: a
/// container that copies a program in and runs it, changes an image
/// program in place (chmod copies it up) or hard-links one, on an image
/// and on podman's overlay over a directory (`--rootfs DIR:O`), is
/// reported; one that runs its image's programs is not.
#[test]
fn a_program_written_in_a_container_is_reported() {
    let dir = std::env::temp_dir().join(format!("mamori-upper-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let rootfs = dir.join("rootfs");
    busybox_rootfs(&rootfs);
    let image = podman::image();
    let overlay = format!("{}:O", rootfs.display());
    let agent = Agent::start(&["-r", repo_rules().to_str().unwrap()]);
    let rule = "Program written in the container executed";
    let run = |name: &str, root: &[&str], script: &str| {
        let cid = dir.join(format!("{name}.cid"));
        let mut args = vec!["--cidfile", cid.to_str().unwrap()];
        args.extend_from_slice(root);
        args.extend(["/bin/sh", "-c", script]);
        podman::try_run(&args);
        let id = fs::read_to_string(&cid).expect("podman wrote no container id");
        id.trim()[..12].to_owned()
    };
    let mut failures = Vec::new();
    let attacks = [
        (
            "copied",
            vec![image],
            "cp /bin/busybox /tmp/dropped && /tmp/dropped true",
            "/tmp/dropped",
        ),
        (
            "changed",
            vec![image],
            "chmod 700 /bin/busybox && /bin/busybox true",
            "/bin/busybox",
        ),
        (
            "linked",
            vec![image],
            "ln /bin/busybox /tmp/linked && /tmp/linked true",
            "/tmp/linked",
        ),
        (
            "rootfs-overlay",
            vec!["--rootfs", overlay.as_str()],
            "cp /bin/busybox /tmp/dropped && /tmp/dropped true",
            "/tmp/dropped",
        ),
    ];
    for (name, root, script, exe) in &attacks {
        let id = run(name, root, script);
        match agent.wait_alert_where(rule, |f| f["container.id"] == id.as_str()) {
            None => failures.push(format!("{name}: no alert for container {id}")),
            Some(a) if a["output_fields"]["proc.exepath"] != *exe => {
                failures.push(format!("{name}: {}", a["output_fields"]));
            }
            Some(_) => {}
        }
    }
    // The image's own programs, on both roots: quiet.
    let quiet = [
        run(
            "image",
            &[image],
            "/bin/busybox true && /bin/cat /etc/passwd",
        ),
        run(
            "rootfs-image",
            &["--rootfs", overlay.as_str()],
            "/bin/busybox true",
        ),
    ];
    let (_, alerts) = agent.stop_with_alerts();
    for id in &quiet {
        if let Some(a) = alerts
            .iter()
            .find(|a| a["rule"] == rule && a["output_fields"]["container.id"] == id.as_str())
        {
            failures.push(format!("an image program was reported: {a}"));
        }
    }
    let _ = fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{failures:#?}");
}
