//! Process, file and container state seen through real alerts: real podman
//! containers, processes that started before mamori, relative opens.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use mamori_e2e::{
    agent::Agent,
    containerd::{Containerd, Cri},
    podman::{self, MARKER},
};
use serde_json::{Value, json};

const RULE: &str = "Marker file read";

/// A rule on reads of the marker file, printing every state-backed field.
fn rules(dir: &Path) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let path = dir.join("rules.yaml");
    fs::write(
        &path,
        r#"
- rule: Marker file read
  desc: test rule for state-backed fields
  condition: evt.type in (open, openat, openat2) and fd.name contains mamori-marker
  output: >
    marker read (proc.pid=%proc.pid fd.name=%fd.name fd.nameraw=%fd.nameraw proc.name=%proc.name
    proc.pname=%proc.pname proc.aname[2]=%proc.aname[2] proc.apid[2]=%proc.apid[2]
    proc.ppid=%proc.ppid user.name=%user.name container.id=%container.id
    container.name=%container.name container.type=%container.type
    container.image=%container.image
    container.image.repository=%container.image.repository
    container.image.tag=%container.image.tag container.image.id=%container.image.id
    container.privileged=%container.privileged
    container.mounts=%container.mounts
    container.mount.dest[/tmp]=%container.mount.dest[/tmp]
    container.host_network=%container.host_network
    k8s.pod.name=%k8s.pod.name k8s.ns.name=%k8s.ns.name k8s.pod.uid=%k8s.pod.uid
    k8s.pod.labels=%k8s.pod.labels k8s.pod.label[app]=%k8s.pod.label[app]
    container.label[team]=%container.label[team] container.ip=%container.ip)
  priority: WARNING
"#,
    )
    .unwrap();
    path
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mamori-ctr-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

fn container_alert(agent: &Agent, short_id: &str) -> Value {
    agent
        .wait_alert_where(RULE, |f| f["container.id"] == short_id)
        .unwrap_or_else(|| panic!("no alert for container {short_id}: {:?}", agent.alerts()))
}

/// A container whose only process lives a few milliseconds, privileged,
/// with a bind mount, opening the marker relative to its working
/// directory: every container field, ancestry and the absolute fd.name.
#[test]
fn a_short_lived_privileged_container_has_its_metadata_and_ancestry() {
    let dir = scratch("short");
    let image = podman::image();
    let agent = Agent::start(&["-r", rules(&dir).to_str().unwrap()]);
    let name = format!("mamori-short-{}", std::process::id());
    let cidfile = dir.join("cid");
    let started = std::time::Instant::now();
    podman::run(&[
        "--privileged",
        "--name",
        &name,
        "-v",
        "/tmp:/hosttmp:ro",
        "--cidfile",
        cidfile.to_str().unwrap(),
        image,
        "/bin/sh",
        "-c",
        "cd /etc && cat mamori-marker >/dev/null; true",
    ]);
    eprintln!(
        "podman run (create, start, exit, remove) took {} ms",
        started.elapsed().as_millis()
    );
    let id = fs::read_to_string(&cidfile).unwrap().trim().to_owned();
    let a = container_alert(&agent, &id[..12]);
    let f = &a["output_fields"];
    assert_eq!(f["fd.name"], MARKER, "relative open made absolute: {a}");
    assert_eq!(f["fd.nameraw"], "mamori-marker");
    // busybox's shell runs `cat` by executing /proc/self/exe (then
    // renames itself `cat`): what the kernel ran is busybox.
    assert_eq!(f["proc.name"], "busybox");
    assert_eq!(f["proc.pname"], "sh");
    assert_eq!(f["proc.aname[2]"], "conmon", "podman's monitor: {a}");
    assert_eq!(f["user.name"], "root");
    assert_eq!(f["container.name"], name.as_str());
    assert_eq!(f["container.type"], "podman");
    assert_eq!(f["container.image"], podman::IMAGE);
    assert_eq!(
        f["container.image.repository"],
        "localhost/mamori-test/busybox"
    );
    assert_eq!(f["container.image.tag"], "1.0");
    assert_eq!(f["container.image.id"].as_str().unwrap().len(), 64);
    assert_eq!(f["container.privileged"], json!(true));
    assert_eq!(f["container.mounts"], "/tmp:/hosttmp::false:rprivate");
    assert_eq!(f["container.mount.dest[/tmp]"], "/hosttmp");
    assert_eq!(f["container.host_network"], json!(false));
    assert!(f["k8s.pod.name"].is_null(), "not a pod: {a}");
    assert!(
        agent
            .metric("mamori_container_lookups_found_total")
            .unwrap()
            >= 1.0
    );
    eprintln!(
        "container metadata: {} events held, {:.1} ms in all, {} holds expired",
        agent.metric("mamori_container_held_events_total").unwrap(),
        agent.metric("mamori_container_held_seconds_total").unwrap() * 1e3,
        agent.metric("mamori_container_wait_expired_total").unwrap()
    );
    assert!(agent.stop().success());
}

/// The same image unprivileged: `container.privileged` is false, and
/// host processes are `host`.
#[test]
fn an_unprivileged_container_and_the_host_are_told_apart() {
    let dir = scratch("unpriv");
    let image = podman::image();
    let agent = Agent::start(&["-r", rules(&dir).to_str().unwrap()]);
    let cidfile = dir.join("cid");
    podman::run(&[
        "--cidfile",
        cidfile.to_str().unwrap(),
        image,
        "/bin/cat",
        MARKER,
    ]);
    let id = fs::read_to_string(&cidfile).unwrap().trim().to_owned();
    let f = container_alert(&agent, &id[..12])["output_fields"].clone();
    assert_eq!(f["container.privileged"], json!(false));
    assert_eq!(
        f["proc.pname"], "conmon",
        "cat is the container's first process"
    );
    assert!(f["container.mounts"] == "" || f["container.mounts"].is_null());

    let host_marker = dir.join("mamori-marker-host");
    fs::write(&host_marker, "x").unwrap();
    let cat = Command::new("cat")
        .arg(&host_marker)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = cat.id();
    let _ = cat.wait_with_output();
    let f = agent.wait_alert(RULE, pid).expect("host alert")["output_fields"].clone();
    assert_eq!(f["container.id"], "host");
    assert_eq!(f["container.name"], "host");
    assert!(f["container.image"].is_null());
    assert!(agent.stop().success());
}

/// A process tree that began before mamori: its ancestry comes from the
/// /proc seed.
#[test]
fn a_process_started_before_mamori_has_its_ancestry() {
    let dir = scratch("before");
    let marker = dir.join("mamori-marker-before");
    let trigger = dir.join("go");
    fs::write(&marker, "x").unwrap();
    // `sh` (started now) waits for the trigger, then runs `cat`.
    let script = format!(
        "while [ ! -e {t} ]; do sleep 0.05; done; cat {m} > /dev/null",
        t = trigger.display(),
        m = marker.display()
    );
    let mut waiter = Command::new("sh").args(["-c", &script]).spawn().unwrap();
    let sh_pid = waiter.id();
    let agent = Agent::start(&["-r", rules(&dir).to_str().unwrap()]);
    fs::write(&trigger, "").unwrap();
    assert!(waiter.wait().unwrap().success());
    let a = agent
        .wait_alert_where(RULE, |f| f["proc.ppid"].as_u64() == Some(u64::from(sh_pid)))
        .unwrap_or_else(|| panic!("no alert for the child of {sh_pid}: {:?}", agent.alerts()));
    let f = &a["output_fields"];
    assert_eq!(f["proc.name"], "cat");
    assert_eq!(f["proc.pname"], "sh");
    assert_eq!(
        f["proc.apid[2]"].as_u64(),
        Some(u64::from(std::process::id())),
        "the test process, known only from /proc: {a}"
    );
    assert_eq!(f["container.id"], "host");
    assert!(agent.stop().success());
}

/// A pod made through containerd's CRI API, as a kubelet would: the
/// container's alert carries the pod's name, namespace, uid and labels,
/// which only the CRI service knows.
#[test]
fn a_pod_container_has_its_kubernetes_metadata() {
    let dir = scratch("cri");
    let containerd = Containerd::start(&dir.join("containerd"));
    let cri = Cri::connect(&containerd.socket);
    let agent = Agent::start(&[
        "-r",
        rules(&dir).to_str().unwrap(),
        "--cri-socket",
        containerd.socket.to_str().unwrap(),
    ]);
    let pod = cri.run_pod(
        "web-0",
        "shop",
        "7c6f2a51-0d3e-4b8e-9a61-5f2d8c1e4b7a",
        &[("app", "web"), ("tier", "front")],
    );
    let id = cri.run_container(
        &pod,
        "app",
        podman::image(),
        &[
            "/bin/sh",
            "-c",
            "cat /etc/mamori-marker > /dev/null; exec sleep 30",
        ],
    );
    let a = agent
        .wait_alert_where(RULE, |f| f["container.id"] == id[..12])
        .unwrap_or_else(|| {
            panic!(
                "no alert for pod container {id}: {:?}\ncontainerd log:\n{}",
                agent.alerts(),
                containerd.log()
            )
        });
    let f = &a["output_fields"];
    assert_eq!(f["k8s.pod.name"], "web-0", "{a}");
    assert_eq!(f["k8s.ns.name"], "shop");
    assert_eq!(f["k8s.pod.uid"], "7c6f2a51-0d3e-4b8e-9a61-5f2d8c1e4b7a");
    assert_eq!(f["k8s.pod.labels"], "app:web,tier:front");
    assert_eq!(f["k8s.pod.label[app]"], "web");
    assert_eq!(f["container.label[team]"], "payments");
    // A host-network pod has no address of its own.
    assert_eq!(f["container.ip"], Value::Null);
    assert_eq!(f["container.name"], "app");
    assert_eq!(f["container.type"], "containerd");
    assert_eq!(
        f["container.image.repository"],
        "localhost/mamori-test/busybox"
    );
    assert_eq!(f["container.host_network"], json!(true));
    // busybox's shell re-executes itself for `cat` (see above).
    assert_eq!(f["proc.name"], "busybox");
    cri.remove_pod(&pod.0);
    assert!(agent.stop().success());
}

/// `container.ip` and `container.cni.json` of a podman container on its
/// default (CNI) network are the address the container itself has.
#[test]
fn a_containers_address_comes_from_its_network() {
    let dir = std::env::temp_dir().join(format!("mamori-cip-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("rules.yaml");
    fs::write(
        &rules,
        "- rule: Networked container\n  desc: d\n  \
         condition: evt.type in (execve, execveat) and container.id != host and proc.args contains mamori-cip\n  \
         output: \"%container.ip %container.cni.json %container.id\"\n  priority: NOTICE\n",
    )
    .unwrap();
    let agent = Agent::start(&["-r", rules.to_str().unwrap()]);
    let cid = dir.join("c.cid");
    // The container prints its own address, then runs the marked command.
    let out = podman::try_run_on(
        "bridge",
        &[
            "--cidfile",
            cid.to_str().unwrap(),
            podman::image(),
            "/bin/sh",
            "-c",
            "ip -4 -o addr show eth0; sh -c 'true mamori-cip'",
        ],
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    let own = printed
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .unwrap_or_else(|| panic!("the container printed no address: {printed}"))
        .to_owned();
    let id = fs::read_to_string(&cid).unwrap();
    let id = &id.trim()[..12];
    let alert = agent.wait_alert_where("Networked container", |f| f["container.id"] == id);
    let _ = fs::remove_dir_all(&dir);
    let f = alert.expect("no alert for the networked container")["output_fields"].clone();
    assert_eq!(f["container.ip"], own.as_str(), "{f}");
    let cni: Value =
        serde_json::from_str(f["container.cni.json"].as_str().unwrap_or("null")).unwrap();
    assert!(
        cni["ips"][0]["address"]
            .as_str()
            .is_some_and(|a| a.starts_with(&format!("{own}/"))),
        "{cni}"
    );
}
