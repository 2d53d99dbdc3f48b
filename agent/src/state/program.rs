//! What program a process runs, whatever door started it: the executable
//! itself, the script a `#!` line handed to an interpreter, or the program
//! a dynamic loader started by name (`ld.so PROG`) maps. The kernel's
//! executable is the interpreter or the loader in the last two cases, and
//! its name is what rules trusting a program by name would see, so a
//! script or a loader run would pass as the interpreter or hide the tool.

use crate::event::{Exec, Text, text::resolve};

/// The program and, for a loader run, the name the process should carry
/// (the loaded program's, cut as the kernel cuts names).
pub struct Program {
    pub path: Text,
    pub name: Option<Text>,
}

/// Options of glibc's `ld.so` that take a value (`ld.so --help`).
const LOADER_OPTIONS_WITH_VALUE: &[&[u8]] = &[
    b"--library-path",
    b"--inhibit-rpath",
    b"--audit",
    b"--preload",
    b"--argv0",
    b"--glibc-hwcaps-prepend",
    b"--glibc-hwcaps-mask",
];

/// Whether `exepath` is a dynamic loader (glibc's `ld-linux*.so*` /
/// `ld.so`, musl's `ld-musl-*.so*`).
pub fn is_loader(exepath: &[u8]) -> bool {
    let base = exepath.rsplit(|&c| c == b'/').next().unwrap_or_default();
    base == b"ld.so"
        || (base.starts_with(b"ld-linux") || base.starts_with(b"ld-musl-"))
            && base.windows(3).any(|w| w == b".so")
}

/// The program of an exec whose resolved executable is `exepath`, whose
/// arguments are `argv` (argv[0] first) and working directory `cwd`.
pub fn of(x: &Exec, exepath: &Text, argv: &[Text], cwd: &[u8]) -> Program {
    let same = |p: Text| Program {
        path: p,
        name: None,
    };
    if is_loader(&exepath.bytes) {
        let Some(prog) = loaded_program(argv) else {
            return same(exepath.clone());
        };
        let path = Text::new(resolve(cwd, prog).into_owned());
        let base = path.bytes.rsplit(|&c| c == b'/').next().unwrap_or_default();
        let name = Text::new(&base[..base.len().min(mamori_common::COMM_LEN - 1)]);
        return Program {
            path,
            name: (!name.bytes.is_empty()).then_some(name),
        };
    }
    // A script: the kernel ran the interpreter named by its `#!` line.
    let (Some(filename), Some(interp)) = (&x.filename, &x.interp) else {
        return same(exepath.clone());
    };
    let handle = filename.bytes.starts_with(b"/dev/fd/") || filename.bytes.starts_with(b"/proc/");
    if filename == interp || handle {
        return same(exepath.clone());
    }
    same(Text::new(resolve(cwd, &filename.bytes).into_owned()))
}

/// The program argument of a loader's command line: the first argument
/// after the loader's own options; `None` for `--list`, `--verify`,
/// `--help` and the like with no program, or no argument.
fn loaded_program(argv: &[Text]) -> Option<&[u8]> {
    let mut rest = argv.iter().skip(1).map(|a| a.bytes.as_slice());
    while let Some(a) = rest.next() {
        if a == b"--" {
            return rest.next();
        }
        if LOADER_OPTIONS_WITH_VALUE.contains(&a) {
            rest.next();
            continue;
        }
        if a.starts_with(b"--") {
            continue;
        }
        return Some(a);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(filename: &str, interp: &str) -> Exec {
        Exec {
            filename: Some(filename.into()),
            interp: Some(interp.into()),
            ..Exec::default()
        }
    }

    fn argv(a: &[&str]) -> Vec<Text> {
        a.iter().map(|s| Text::from(*s)).collect()
    }

    #[test]
    fn loaders_are_known_by_their_file_names() {
        for l in [
            "/lib64/ld-linux-x86-64.so.2",
            "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            "/lib/ld-musl-x86_64.so.1",
            "/usr/bin/ld.so",
        ] {
            assert!(is_loader(l.as_bytes()), "{l}");
        }
        for n in [
            "/usr/bin/ld",
            "/usr/bin/ldd",
            "/usr/bin/ld-linux-wrapper",
            "/usr/bin/ls",
        ] {
            assert!(!is_loader(n.as_bytes()), "{n}");
        }
    }

    #[test]
    fn a_loader_run_is_the_program_it_loads() {
        let ld = Text::from("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2");
        let x = exec("/lib64/ld-linux-x86-64.so.2", "/lib64/ld-linux-x86-64.so.2");
        let p = of(
            &x,
            &ld,
            &argv(&[
                "ld.so",
                "--preload",
                "x.so",
                "--argv0",
                "sshd",
                "./tools/nc",
                "-l",
            ]),
            b"/home/u",
        );
        assert_eq!(p.path, Text::from("/home/u/tools/nc"));
        assert_eq!(p.name, Some(Text::from("nc")));
        // Nothing to load (`ld.so --list` without a program): the loader.
        let p = of(&x, &ld, &argv(&["ld.so", "--list"]), b"/");
        assert_eq!((p.path, p.name), (ld.clone(), None));
    }

    #[test]
    fn a_script_is_the_script_not_its_interpreter() {
        let dash = Text::from("/usr/bin/dash");
        let p = of(
            &exec("./sshd", "/bin/sh"),
            &dash,
            &argv(&["./sshd"]),
            b"/tmp/x",
        );
        assert_eq!((p.path, p.name), (Text::from("/tmp/x/sshd"), None));
        // A binary: its own path.
        let cat = Text::from("/usr/bin/cat");
        let p = of(&exec("/bin/cat", "/bin/cat"), &cat, &argv(&["cat"]), b"/");
        assert_eq!(p.path, cat);
        // A script run through a handle on its file: the interpreter stays.
        let p = of(&exec("/dev/fd/3", "/bin/sh"), &dash, &argv(&["x"]), b"/");
        assert_eq!(p.path, dash);
    }
}
