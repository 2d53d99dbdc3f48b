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
    checked(Command::new(program.as_ref()), args)
}

/// Runs `command args` from the workspace root, echoing it first.
fn checked(mut command: Command, args: &[&str]) -> anyhow::Result<()> {
    command.args(args).current_dir(root());
    let shown = format!(
        "{} {}",
        command.get_program().to_string_lossy(),
        command
            .get_args()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    eprintln!("+ {shown}");
    let status = command
        .status()
        .with_context(|| format!("cannot start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed: {status}");
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

/// Runs the pinned toolchain's cargo from the workspace root.
pub fn cargo(args: &[&str]) -> anyhow::Result<()> {
    checked(crate::toolchain::cargo(), args)
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

/// Runs `program args` without echoing; returns stdout, or fails with the
/// command and its stderr.
pub fn quiet(program: impl AsRef<Path>, args: &[&str]) -> anyhow::Result<String> {
    let program = program.as_ref();
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("cannot start {}", program.display()))?;
    if !out.status.success() {
        bail!(
            "{} {} failed ({}): {}",
            program.display(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
