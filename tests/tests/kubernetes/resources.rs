//! The agent's requests and limits (the chart's defaults) hold under load
//! made on the node: no OOM kill, no restart, no kernel events lost, and
//! the numbers, read from the container's own cgroups, printed.

use std::fs;

use crate::{
    agent::{agent_pid, cluster, metric, pod},
    workload::sh_in_web,
};

/// The agent container's directory in cgroup v1 hierarchy `controller`.
fn cgroup(pid: u32, controller: &str) -> String {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let path = text
        .lines()
        .find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, names, path) = (parts.next()?, parts.next()?, parts.next()?);
            names
                .split(',')
                .any(|n| n == controller)
                .then(|| path.to_owned())
        })
        .unwrap_or_else(|| panic!("no {controller} cgroup for {pid}: {text}"));
    let mount = if controller == "cpuacct" {
        "cpu,cpuacct"
    } else {
        controller
    };
    let dir = format!("/sys/fs/cgroup/{mount}{path}");
    if fs::metadata(&dir).is_ok() {
        dir
    } else {
        format!("/sys/fs/cgroup/{controller}{path}")
    }
}

fn read_u64(path: &str) -> u64 {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .trim()
        .parse()
        .unwrap()
}

fn stat(path: &str, key: &str) -> u64 {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn the_agent_stays_within_its_requests_and_limits_under_load() {
    let c = cluster();
    let pid = agent_pid(c);
    let restarts =
        |p: &serde_json::Value| p["status"]["containerStatuses"][0]["restartCount"].clone();
    let before = restarts(&pod(c));
    let lost_before = metric(c, "mamori_kernel_events_lost_total");
    let memory = cgroup(pid, "memory");
    let cpu = cgroup(pid, "cpu");
    let cpuacct = cgroup(pid, "cpuacct");
    let cpu_before = read_u64(&format!("{cpuacct}/cpuacct.usage"));
    let started = std::time::Instant::now();

    // Load: 3,000 execs and 3,000 file opens in the workload pod, and as
    // many alerts (every exec of a shell in a container is one).
    sh_in_web(
        c,
        "i=0; while [ $i -lt 3000 ]; do /bin/sh -c 'cat /etc/passwd' > /dev/null; i=$((i+1)); done",
    );
    let secs = started.elapsed().as_secs_f64();
    let cpu_used = (read_u64(&format!("{cpuacct}/cpuacct.usage")) - cpu_before) as f64 / 1e9;

    let limit = read_u64(&format!("{memory}/memory.limit_in_bytes"));
    let peak = read_u64(&format!("{memory}/memory.max_usage_in_bytes"));
    let rss = stat(&format!("{memory}/memory.stat"), "total_rss ");
    let failcnt = read_u64(&format!("{memory}/memory.failcnt"));
    let oom_kills = stat(&format!("{memory}/memory.oom_control"), "oom_kill ");
    let throttled = stat(&format!("{cpu}/cpu.stat"), "nr_throttled ");
    let quota = fs::read_to_string(format!("{cpu}/cpu.cfs_quota_us")).unwrap();
    let lost = metric(c, "mamori_kernel_events_lost_total") - lost_before;
    println!(
        "agent under load ({secs:.1} s, 3,000 shells each running cat): CPU {cpu_used:.2} s ({:.0} % of a core), \
         memory peak {} MiB (RSS now {} MiB) of a {} MiB limit, limit hits {failcnt}, OOM kills {oom_kills}, \
         CPU quota {} (throttled {throttled} times), kernel events lost {lost}",
        100.0 * cpu_used / secs,
        peak >> 20,
        rss >> 20,
        limit >> 20,
        quota.trim()
    );
    assert_eq!(limit, 512 << 20, "the chart's memory limit is applied");
    assert_eq!(oom_kills, 0);
    assert_eq!(restarts(&pod(c)), before, "no restart");
    assert!(peak < limit, "peak {peak} below the limit {limit}");
    assert_eq!(lost, 0.0, "no kernel events lost");
}
