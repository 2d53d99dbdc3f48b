//! Reads the pinned toolchain from the workspace manifest's
//! `[workspace.metadata.mamori]` table. No dependencies, so `agent/build.rs`
//! includes this same file (`#[path]`) and both read the pin one way.

pub struct Pin {
    /// e.g. `nightly-2026-06-24`.
    pub channel: String,
    /// Components installed with it (`rust-src`, ...).
    pub components: Vec<String>,
}

/// Reads `toolchain` and `toolchain-components` from the
/// `[workspace.metadata.mamori]` table. A line scan, not a TOML parser:
/// the table is ours and kept to one-line values.
pub fn parse(manifest: &str) -> Option<Pin> {
    let mut in_table = false;
    let (mut channel, mut components) = (None, Vec::new());
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_table = line == "[workspace.metadata.mamori]";
            continue;
        }
        if !in_table {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let strings = value
            .split('"')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect::<Vec<_>>();
        match key.trim() {
            "toolchain" => channel = strings.into_iter().next(),
            "toolchain-components" => components = strings,
            _ => {}
        }
    }
    Some(Pin {
        channel: channel?,
        components,
    })
}
