//! Shared by the fuzz targets.

/// libfuzzer-sys aborts in its panic hook, even for panics the loader
/// contains (libyaml-safer 0.3 panics on some malformed YAML; `yaml::parse`
/// turns that into an error). A silent hook lets those be handled; a panic
/// that escapes the loader still aborts: libfuzzer-sys catches the unwind
/// and aborts.
pub fn quiet_contained_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::panic::set_hook(Box::new(|_| {})));
}

/// Event types the rules load against: a fixed sample (the fuzz crate does
/// not build the agent); the loader's paths are the same for any list.
pub const EVENT_TYPES: &[&str] = &[
    "open", "openat", "openat2", "execve", "connect", "accept", "ptrace", "setuid", "procexit",
];
