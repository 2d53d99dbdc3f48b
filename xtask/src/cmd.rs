//! Running commands, loudly: every command is echoed before it runs.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Runs `program args`, failing on a non-zero exit.
pub fn run(program: impl AsRef<Path>, args: &[&str]) -> anyhow::Result<()> {
    let program = program.as_ref();
    eprintln!("+ {} {}", program.display(), args.join(" "));
    let status = Command::new(program)
        .args(args)
        .current_dir(root())
        .status()
        .with_context(|| format!("cannot start {}", program.display()))?;
    if !status.success() {
        bail!("{} {} failed: {status}", program.display(), args.join(" "));
    }
    Ok(())
}

/// Runs `program args` in `dir`, failing on a non-zero exit.
pub fn run_in(dir: &Path, program: &str, args: &[&str]) -> anyhow::Result<()> {
    eprintln!("+ (cd {}; {program} {})", dir.display(), args.join(" "));
    let status = Command::new(program)
        .args(args)
        .current_dir(dir)
        .status()
        .with_context(|| format!("cannot start {program}"))?;
    if !status.success() {
        bail!("{program} {} failed: {status}", args.join(" "));
    }
    Ok(())
}

/// Runs cargo from the workspace root (the pinned toolchain applies).
pub fn cargo(args: &[&str]) -> anyhow::Result<()> {
    run(
        std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()),
        args,
    )
}

/// Runs a command and returns its stdout, or `None` if it fails to start or exits non-zero.
pub fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Replaces this process with `program args` (for `cargo xtask run`).
pub fn exec(program: PathBuf, args: &[String]) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    eprintln!("+ {} {}", program.display(), args.join(" "));
    let err = Command::new(&program).args(args).current_dir(root()).exec();
    Err(err).with_context(|| format!("cannot run {}", program.display()))
}
