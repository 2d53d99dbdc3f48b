//! The pinned Rust toolchain, read from the workspace's `Cargo.toml`
//! (`[workspace.metadata.mamori]`), its one source of truth.
//!
//! xtask itself builds with whatever default toolchain the machine has, so
//! `cargo xtask` runs before the pinned one is installed (rustup with
//! `RUSTUP_AUTO_INSTALL=0` would refuse a `rust-toolchain.toml` naming a
//! missing toolchain). Every other build goes through [`cargo`], which runs
//! `rustup run <pin> cargo`.

use std::{process::Command, sync::OnceLock};

use crate::pin::{Pin, parse};

/// The workspace manifest, as it was when xtask was built (cargo rebuilds
/// xtask when it changes).
const MANIFEST: &str = include_str!("../../Cargo.toml");

/// `cargo` of the pinned toolchain (`rustup run <pin> cargo`), whatever
/// toolchain runs xtask: not `$CARGO`, which is xtask's own cargo.
pub fn cargo() -> Command {
    let mut c = Command::new("rustup");
    c.args(["run", &pin().channel, "cargo"]);
    // Set by the cargo that runs xtask; they would point the child at the
    // wrong compiler.
    for var in ["RUSTC", "RUSTDOC", "RUSTC_WRAPPER", "RUSTUP_TOOLCHAIN"] {
        c.env_remove(var);
    }
    c
}

/// The pin; start-up reads it once and a malformed manifest stops xtask.
pub fn pin() -> &'static Pin {
    static PIN: OnceLock<Pin> = OnceLock::new();
    PIN.get_or_init(|| {
        #[allow(
            clippy::expect_used,
            reason = "a broken manifest is a bug in this repository"
        )]
        parse(MANIFEST).expect("Cargo.toml: [workspace.metadata.mamori] needs toolchain = \"...\"")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_workspace_pin() {
        let pin = parse(MANIFEST).unwrap();
        assert!(pin.channel.starts_with("nightly-20"), "{}", pin.channel);
        assert!(pin.components.iter().any(|c| c == "rust-src"));
    }

    #[test]
    fn ignores_other_tables() {
        let text = "[package]\ntoolchain = \"no\"\n[workspace.metadata.mamori]\n\
                    toolchain = \"nightly-1\"\ntoolchain-components = [\"a\", \"b\"]\n[x]\n";
        let pin = parse(text).unwrap();
        assert_eq!(pin.channel, "nightly-1");
        assert_eq!(pin.components, ["a", "b"]);
        assert!(parse("[package]\ntoolchain = \"no\"\n").is_none());
    }
}
