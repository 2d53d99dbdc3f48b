//! `fd.sip.name` as Falco fills it: the domain names the rules compare it
//! with are resolved through the host's resolver files, and a connection
//! to one of a name's addresses has that name — however the connect was
//! made (connect(2), an io_uring request, an IPv6 socket with the
//! IPv4-mapped address). The names here are in `/etc/hosts` (a copy
//! bind-mounted over it for the test) and point at loopback addresses.

use std::net::TcpListener;

use mamori_e2e::{agent::Agent, hosts::Hosts, run_actor};

#[test]
fn a_connection_has_the_names_the_rules_resolve_to_its_address() {
    let id = std::process::id();
    let (api, db) = (
        format!("mamori-api-{id}.test"),
        format!("mamori-db-{id}.test"),
    );
    let _hosts = Hosts::with(&format!("127.88.0.1 {api}\n127.88.0.2 {db}\n"));
    let listen = |ip: &str| {
        let l = TcpListener::bind((ip, 0)).unwrap();
        let port = l.local_addr().unwrap().port().to_string();
        (l, port)
    };
    let (_api_l, api_port) = listen("127.88.0.1");
    let (_db_l, db_port) = listen("127.88.0.2");
    let (_other_l, other_port) = listen("127.88.0.3");
    let dir = std::env::temp_dir().join(format!("mamori-names-{id}"));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("rules.yaml");
    std::fs::write(
        &rules,
        format!(
            "- rule: Named server contacted\n  desc: d\n  \
             condition: evt.type = connect and fd.sip.name = {api}\n  \
             output: \"%fd.sip.name (%fd.sip) by %proc.pid\"\n  priority: WARNING\n\
             - rule: Listed server contacted\n  desc: d\n  \
             condition: evt.type = connect and fd.sip.name in ({db}, mamori-none-{id}.invalid)\n  \
             output: \"%fd.sip.name (%fd.sip) by %proc.pid\"\n  priority: WARNING\n"
        ),
    )
    .unwrap();
    let agent = Agent::start(&["-r", rules.to_str().unwrap()]);
    let mut failures = Vec::new();
    let mut expect = |pid: u32, rule: &str, name: &str, how: &str| match agent.wait_alert(rule, pid)
    {
        None => failures.push(format!("{how}: no '{rule}'")),
        Some(a) => {
            let f = &a["output_fields"];
            if f["fd.sip.name"] != name {
                failures.push(format!(
                    "{how}: fd.sip.name {}, want {name}",
                    f["fd.sip.name"]
                ));
            }
        }
    };
    let plain = run_actor(&["connect", &api_port, "127.88.0.1"], Some(true)).pid;
    expect(plain, "Named server contacted", &api, "connect(2)");
    let uring = run_actor(&["uring", "connect", "127.88.0.1", &api_port], Some(true)).pid;
    expect(uring, "Named server contacted", &api, "io_uring connect");
    let mapped = run_actor(&["connect", &api_port, "::ffff:127.88.0.1"], Some(true)).pid;
    expect(mapped, "Named server contacted", &api, "IPv4-mapped IPv6");
    let listed = run_actor(&["connect", &db_port, "127.88.0.2"], Some(true)).pid;
    expect(listed, "Listed server contacted", &db, "a name in a list");
    // An address no rule names: quiet (its events come before the stop).
    let unnamed = run_actor(&["connect", &other_port, "127.88.0.3"], Some(true)).pid;
    let (_, alerts) = agent.stop_with_alerts();
    if let Some(a) = alerts
        .iter()
        .find(|a| a["output_fields"]["proc.pid"].as_u64() == Some(u64::from(unnamed)))
    {
        failures.push(format!("an unnamed address alerted: {a}"));
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{failures:#?}");
}
