//! The descriptor table through real alerts: events that carry only a
//! descriptor number (dup2, close) get the name and addresses of what it
//! refers to.

use std::{fs, net::TcpListener, path::PathBuf};

use mamori_e2e::{agent::Agent, run_actor};

fn rules() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mamori-fds-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rules.yaml");
    fs::write(
        &path,
        r#"
- rule: Std stream redirected to a socket
  desc: test rule for the fd table
  condition: evt.type in (dup, dup2, dup3) and fd.num in (0, 1, 2) and fd.type in (ipv4, ipv6)
  output: redirect (proc.pid=%proc.pid fd.num=%fd.num fd.name=%fd.name fd.sip=%fd.sip fd.sport=%fd.sport fd.l4proto=%fd.l4proto fd.typechar=%fd.typechar)
  priority: WARNING
- rule: Marker closed
  desc: test rule for the fd table
  condition: evt.type = close and fd.filename startswith mamori-close-marker
  output: closed (proc.pid=%proc.pid fd.num=%fd.num fd.name=%fd.name fd.directory=%fd.directory fd.typechar=%fd.typechar)
  priority: NOTICE
"#,
    )
    .unwrap();
    path
}

#[test]
fn dup2_of_a_socket_onto_stdout_names_the_connection() {
    let agent = Agent::start(&["-r", rules().to_str().unwrap()]);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let pid = run_actor(&["redirect", &port.to_string()], Some(true)).pid;
    let (_conn, peer) = listener.accept().unwrap();
    let a = agent
        .wait_alert("Std stream redirected to a socket", pid)
        .unwrap_or_else(|| panic!("no redirect alert: {:?}", agent.alerts()));
    let f = &a["output_fields"];
    assert_eq!(
        f["fd.name"],
        format!("127.0.0.1:{}->127.0.0.1:{port}", peer.port()),
        "{a}"
    );
    assert_eq!(f["fd.sip"], "127.0.0.1");
    assert_eq!(f["fd.sport"], port);
    assert_eq!(f["fd.l4proto"], "tcp");
    assert_eq!(f["fd.typechar"], "4");
    let nums: Vec<u64> = agent
        .alerts()
        .iter()
        .filter(|a| a["output_fields"]["proc.pid"] == pid)
        .filter_map(|a| a["output_fields"]["fd.num"].as_u64())
        .collect();
    assert_eq!(nums, vec![0, 1], "stdin then stdout, each once");
    assert!(agent.stop().success());
}

#[test]
fn close_names_the_file_it_closes() {
    let agent = Agent::start(&["-r", rules().to_str().unwrap()]);
    let dir = std::env::temp_dir().join(format!("mamori-fds-close-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let marker = dir.join("mamori-close-marker");
    fs::write(&marker, "x").unwrap();
    // A relative open (openat on a directory fd), then close.
    let pid = run_actor(
        &["open-at", dir.to_str().unwrap(), "mamori-close-marker"],
        Some(true),
    )
    .pid;
    let a = agent
        .wait_alert("Marker closed", pid)
        .unwrap_or_else(|| panic!("no close alert: {:?}", agent.alerts()));
    let f = &a["output_fields"];
    assert_eq!(f["fd.name"], marker.to_str().unwrap(), "{a}");
    assert_eq!(f["fd.directory"], dir.to_str().unwrap());
    assert_eq!(f["fd.typechar"], "f");
    assert!(agent.stop().success());
}
