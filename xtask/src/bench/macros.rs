//! The macro workloads of `bench capture`: a C project built with
//! `make -j2`, and `redis-benchmark` against a loopback redis-server (both
//! from Debian's packages). Each returns one number per run.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

/// Source files of the generated C project.
const C_FILES: usize = 240;
/// Functions per file: sized so `make -j2` takes about a minute here.
const C_FUNCTIONS: usize = 60;

/// Writes the C project (once; the same every time).
pub fn prepare_c(dir: &Path) -> anyhow::Result<PathBuf> {
    let root = dir.join("cproject");
    if root.join("Makefile").exists() {
        return Ok(root);
    }
    std::fs::create_dir_all(&root)?;
    let mut objs = Vec::new();
    for i in 0..C_FILES {
        let mut src = String::from(
            "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n#include <math.h>\n\n",
        );
        for j in 0..C_FUNCTIONS {
            src.push_str(&format!(
                "static double f{j}(const double *v, int n) {{\n  double acc = {j}.5;\n  \
                 for (int k = 0; k < n; k++) {{\n    acc += sqrt(fabs(v[k] * {j}.25 - acc)) / (k + 1);\n    \
                 if (acc > 1e9) acc = fmod(acc, 97.0);\n  }}\n  return acc;\n}}\n"
            ));
        }
        src.push_str(&format!(
            "double unit{i}(const double *v, int n) {{\n  double s = 0;\n"
        ));
        for j in 0..C_FUNCTIONS {
            src.push_str(&format!("  s += f{j}(v, n);\n"));
        }
        src.push_str("  return s;\n}\n");
        std::fs::write(root.join(format!("u{i}.c")), src)?;
        objs.push(format!("u{i}.o"));
    }
    let mut main = String::from("#include <stdio.h>\n");
    for i in 0..C_FILES {
        main.push_str(&format!("double unit{i}(const double *v, int n);\n"));
    }
    main.push_str("int main(void) {\n  double v[4] = {1, 2, 3, 4}, s = 0;\n");
    for i in 0..C_FILES {
        main.push_str(&format!("  s += unit{i}(v, 4);\n"));
    }
    main.push_str("  printf(\"%f\\n\", s);\n  return 0;\n}\n");
    std::fs::write(root.join("main.c"), main)?;
    std::fs::write(
        root.join("Makefile"),
        format!(
            "CFLAGS = -O2 -g\nOBJS = main.o {}\nbench: $(OBJS)\n\tcc -o $@ $(OBJS) -lm\n\
             %.o: %.c\n\tcc $(CFLAGS) -c -o $@ $<\nclean:\n\trm -f bench *.o\n",
            objs.join(" ")
        ),
    )?;
    Ok(root)
}

/// Seconds for a clean `make -j2` of the project.
pub fn build_c(root: &Path) -> anyhow::Result<f64> {
    let clean = Command::new("make")
        .args(["-s", "clean"])
        .current_dir(root)
        .status()?;
    if !clean.success() {
        bail!("make clean failed");
    }
    let start = Instant::now();
    let ok = Command::new("make")
        .args(["-s", "-j2"])
        .current_dir(root)
        .stdout(Stdio::null())
        .status()?
        .success();
    if !ok {
        bail!("make -j2 failed in {}", root.display());
    }
    Ok(start.elapsed().as_secs_f64())
}

/// A redis-server on a free loopback port, stopped on drop.
pub struct Redis {
    child: std::process::Child,
    port: u16,
}

impl Redis {
    pub fn start() -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting redis-server")?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("redis-server did not start");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Self { child, port })
    }

    /// Requests per second of `redis-benchmark` (SET and GET, averaged).
    pub fn benchmark(&self, requests: u64) -> anyhow::Result<f64> {
        let out = Command::new("redis-benchmark")
            .args([
                "-p",
                &self.port.to_string(),
                "-h",
                "127.0.0.1",
                "-q",
                "--csv",
            ])
            .args(["-n", &requests.to_string(), "-t", "set,get", "-c", "10"])
            .output()
            .context("running redis-benchmark")?;
        let text = String::from_utf8_lossy(&out.stdout);
        // "SET","123456.79",...
        let rates: Vec<f64> = text
            .lines()
            .filter(|l| l.starts_with("\"SET\"") || l.starts_with("\"GET\""))
            .filter_map(|l| l.split(',').nth(1)?.trim_matches('"').parse().ok())
            .collect();
        if rates.len() != 2 {
            bail!("unexpected redis-benchmark output: {text}");
        }
        Ok(rates.iter().sum::<f64>() / 2.0)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
