//! Whether this node runs 32-bit (ia32) system calls at all.
//!
//! The per-syscall exit tracepoints never fire for them, so a 32-bit call
//! is a door around every syscall rule: when the kernel accepts them,
//! `raw_sys_exit` watches them and each process that uses them is reported
//! once (`compat_syscall`). A node booted with `ia32_emulation=0` (or built
//! without `CONFIG_IA32_EMULATION`) has no such door, and nothing needs to
//! be attached.

use std::io::Read;

/// What the running kernel does with 32-bit syscalls.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Ia32 {
    /// Accepted (the default of x86_64 kernels).
    #[default]
    Enabled,
    /// Refused; the reason names where that was read.
    Disabled(String),
}

impl Ia32 {
    pub fn enabled(&self) -> bool {
        matches!(self, Ia32::Enabled)
    }
}

/// Reads the state from the kernel's configuration and command line.
/// Unknown configuration counts as enabled: watching costs a little,
/// missing a door costs detection.
pub fn detect() -> Ia32 {
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let config = kernel_config().unwrap_or_default();
    decide(&config, &cmdline)
}

/// The decision, from the text of the kernel's config and command line.
pub fn decide(config: &str, cmdline: &str) -> Ia32 {
    let set = |key: &str| {
        config
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(str::trim)
    };
    if !config.is_empty() && set("CONFIG_IA32_EMULATION") != Some("y") {
        return Ia32::Disabled("the kernel is built without CONFIG_IA32_EMULATION".into());
    }
    // The boot parameter wins over the built-in default (kernel 6.7+).
    let param = cmdline
        .split_whitespace()
        .take_while(|w| *w != "--")
        .filter_map(|w| w.strip_prefix("ia32_emulation="))
        .last();
    match param.map(parse_bool) {
        Some(Some(true)) => Ia32::Enabled,
        Some(Some(false)) => Ia32::Disabled("booted with ia32_emulation=0".into()),
        _ if set("CONFIG_IA32_EMULATION_DEFAULT_DISABLED") == Some("y") => Ia32::Disabled(
            "CONFIG_IA32_EMULATION_DEFAULT_DISABLED and no ia32_emulation= on the command line"
                .into(),
        ),
        _ => Ia32::Enabled,
    }
}

/// The kernel's `kstrtobool` spellings.
fn parse_bool(v: &str) -> Option<bool> {
    match v.as_bytes().first()? {
        b'1' | b'y' | b'Y' => Some(true),
        b'0' | b'n' | b'N' => Some(false),
        b'o' | b'O' => match v.as_bytes().get(1)? {
            b'n' | b'N' => Some(true),
            b'f' | b'F' => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// `/proc/config.gz`, else `/boot/config-<release>`.
fn kernel_config() -> Option<String> {
    if let Ok(gz) = std::fs::File::open("/proc/config.gz") {
        let mut text = String::new();
        if flate2::read::GzDecoder::new(gz)
            .read_to_string(&mut text)
            .is_ok()
        {
            return Some(text);
        }
    }
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    std::fs::read_to_string(format!("/boot/config-{}", release.trim())).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ON: &str = "CONFIG_COMPAT=y\nCONFIG_IA32_EMULATION=y\n";

    #[test]
    fn built_in_and_not_refused_is_enabled() {
        assert_eq!(decide(ON, "console=ttyS0 quiet"), Ia32::Enabled);
        // Unknown configuration: assume the door is open.
        assert_eq!(decide("", ""), Ia32::Enabled);
    }

    #[test]
    fn the_boot_parameter_decides() {
        assert!(!decide(ON, "quiet ia32_emulation=0").enabled());
        assert!(!decide(ON, "ia32_emulation=off").enabled());
        let default_off = format!("{ON}CONFIG_IA32_EMULATION_DEFAULT_DISABLED=y\n");
        assert!(!decide(&default_off, "quiet").enabled());
        assert!(decide(&default_off, "ia32_emulation=1").enabled());
        // Words after `--` go to init, not to the kernel.
        assert!(decide(ON, "quiet -- ia32_emulation=0").enabled());
    }

    #[test]
    fn not_built_in_is_disabled() {
        let off = "CONFIG_COMPAT=y\n# CONFIG_IA32_EMULATION is not set\n";
        assert_eq!(
            decide(off, ""),
            Ia32::Disabled("the kernel is built without CONFIG_IA32_EMULATION".into())
        );
    }
}
