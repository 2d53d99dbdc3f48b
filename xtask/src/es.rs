//! `cargo xtask es build|start|stop|status`: a real single-node
//! Elasticsearch for the tests, started from Maven Central artifacts by
//! the launcher in `tests/elasticsearch/`.
//!
//! `build` packages the launcher with Maven and installs it (jars, module,
//! `run.sh`) under [`DIST`], a directory the unprivileged user `mamori-es`
//! can read wherever the checkout lives. `start` runs the node in the
//! background on 127.0.0.1:[`PORT`] with its data under [`NODES`]`/main`.

use std::{
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use crate::cmd;

pub const DIST: &str = "/var/lib/mamori-es/dist";
pub const NODES: &str = "/var/lib/mamori-es/nodes";
pub const PORT: u16 = 19200;
const USER: &str = "mamori-es";

pub fn run(what: &str) -> anyhow::Result<()> {
    match what {
        "build" => build(),
        "start" => start().map(|url| println!("{url}")),
        "stop" => stop(),
        "status" => {
            match running_url() {
                Some(url) => println!("running: {url}"),
                None => println!("not running"),
            }
            Ok(())
        }
        other => bail!("unknown es command {other:?}: build, start, stop or status"),
    }
}

/// Packages the launcher and installs it under DIST; creates the user.
pub fn build() -> anyhow::Result<()> {
    user()?;
    let src = cmd::root().join("tests/elasticsearch");
    cmd::run_in(&src, "mvn", &["-q", "-B", "package", "-DskipTests"])?;
    let dist = Path::new(DIST);
    if dist.exists() {
        std::fs::remove_dir_all(dist).with_context(|| format!("cannot clear {DIST}"))?;
    }
    std::fs::create_dir_all(dist)?;
    let target = src.join("target");
    for dir in ["lib", "modules", "classes"] {
        copy_dir(&target.join(dir), &dist.join(dir))?;
    }
    std::fs::copy(src.join("run.sh"), dist.join("run.sh"))?;
    cmd::run("chmod", &["-R", "a+rX", "/var/lib/mamori-es"])?;
    Ok(())
}

/// Starts the shared test node (building it first if needed); returns its URL.
pub fn start() -> anyhow::Result<String> {
    if let Some(url) = running_url() {
        return Ok(url);
    }
    if !Path::new(DIST).join("run.sh").exists() {
        build()?;
    }
    let home = Path::new(NODES).join("main");
    let _ = std::fs::remove_file(home.join("url"));
    std::fs::create_dir_all(&home)?;
    let log = std::fs::File::create(Path::new(NODES).join("main.log"))?;
    eprintln!("+ {DIST}/run.sh {} {PORT} (background)", home.display());
    let child = Command::new(Path::new(DIST).join("run.sh"))
        .arg(&home)
        .arg(PORT.to_string())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .context("cannot start the Elasticsearch launcher")?;
    std::fs::write(pid_file(), child.id().to_string())?;
    let started = Instant::now();
    loop {
        if let Ok(url) = std::fs::read_to_string(home.join("url")) {
            let url = url.trim().to_owned();
            eprintln!(
                "es: node up at {url} after {:.1} s",
                started.elapsed().as_secs_f64()
            );
            return Ok(url);
        }
        if !alive(child.id()) {
            bail!("the Elasticsearch node exited during start; see {NODES}/main.log");
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = stop();
            bail!("the Elasticsearch node did not answer within 120 s; see {NODES}/main.log");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Stops the shared node (SIGTERM, then SIGKILL after 30 s).
pub fn stop() -> anyhow::Result<()> {
    let Some(pid) = std::fs::read_to_string(pid_file())
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
    else {
        return Ok(());
    };
    // The launcher runs in its own process group.
    let group = format!("-{pid}");
    let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
    let until = Instant::now() + Duration::from_secs(30);
    while alive(pid) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(200));
    }
    if alive(pid) {
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
    }
    let _ = std::fs::remove_file(pid_file());
    let _ = std::fs::remove_file(Path::new(NODES).join("main/url"));
    Ok(())
}

pub fn running_url() -> Option<String> {
    let pid: u32 = std::fs::read_to_string(pid_file())
        .ok()?
        .trim()
        .parse()
        .ok()?;
    if !alive(pid) {
        return None;
    }
    let url = std::fs::read_to_string(Path::new(NODES).join("main/url")).ok()?;
    Some(url.trim().to_owned())
}

fn pid_file() -> PathBuf {
    Path::new(NODES).join("main.pid")
}

fn alive(pid: u32) -> bool {
    // A zombie (exited, not yet reaped) counts as gone.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
    })
}

/// The unprivileged user the node runs as.
fn user() -> anyhow::Result<()> {
    if cmd::output("id", &["-u", USER]).is_some() {
        return Ok(());
    }
    cmd::run(
        "useradd",
        &[
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            USER,
        ],
    )
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in
        std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))?
    {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &dest)?;
        } else {
            std::fs::copy(entry.path(), &dest)?;
        }
    }
    Ok(())
}
