//! The path strings a path-taking syscall passes: which registers hold
//! them and which directory each one is relative to. The kernel programs
//! use it to copy the strings at syscall entry (a racing thread can change
//! them before the exit program reads them again) and to send, for a
//! relative one, the directory it resolves against, taken from the kernel's
//! objects: the directory fd's `struct file` or the task's working
//! directory. The agent never joins a dirfd's name from its own tables.

use crate::syscalls::*;

/// `dirfd` meaning the working directory.
pub const AT_FDCWD: i64 = -100;
/// The string is not resolved against a directory: a file system type, an
/// fsconfig key or value, or a symlink's target (relative to the link's
/// own directory, which the agent takes from the resolved link path).
pub const NO_BASE: i64 = i64::MIN;
/// Most path strings one syscall passes (mount: source, target, type).
pub const MAX_PATH_ARGS: usize = 3;
/// Strings copied at entry: the first two (mount's type is not a path).
pub const ENTRY_COPIES: usize = 2;
/// `fsconfig` command whose value is a string.
pub const FSCONFIG_SET_STRING: u64 = 1;

/// The strings of one call, in record order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathArgs {
    /// How many of `addr`/`base` are used.
    pub n: usize,
    /// User address of each string.
    pub addr: [u64; MAX_PATH_ARGS],
    /// What each string is relative to: a directory fd, [`AT_FDCWD`], or
    /// [`NO_BASE`].
    pub base: [i64; MAX_PATH_ARGS],
}

const fn dirfd(reg: u64) -> i64 {
    reg as i32 as i64
}

/// The path strings of syscall `nr` with argument registers `a`; `n` is 0
/// for syscalls that pass none (or whose names come from the kernel's
/// objects, as an open's file does).
#[inline(always)]
pub const fn path_args(nr: u32, a: &[u64; 6]) -> PathArgs {
    let cwd = AT_FDCWD;
    let (n, addr, base) = match nr {
        UNLINK | RMDIR | MKDIR | CHMOD | CHDIR | UMOUNT2 | TRUNCATE | CHROOT => {
            (1, [a[0], 0, 0], [cwd, NO_BASE, NO_BASE])
        }
        UNLINKAT | MKDIRAT | FCHMODAT | FCHMODAT2 | OPEN_TREE | MOUNT_SETATTR => {
            (1, [a[1], 0, 0], [dirfd(a[0]), NO_BASE, NO_BASE])
        }
        RENAME | LINK | PIVOT_ROOT => (2, [a[0], a[1], 0], [cwd, cwd, NO_BASE]),
        SYMLINK => (2, [a[0], a[1], 0], [NO_BASE, cwd, NO_BASE]),
        RENAMEAT | RENAMEAT2 | LINKAT | MOVE_MOUNT => {
            (2, [a[1], a[3], 0], [dirfd(a[0]), dirfd(a[2]), NO_BASE])
        }
        SYMLINKAT => (2, [a[0], a[2], 0], [NO_BASE, dirfd(a[1]), NO_BASE]),
        MOUNT => (3, [a[0], a[1], a[2]], [cwd, cwd, NO_BASE]),
        FSOPEN => (1, [a[0], 0, 0], [NO_BASE; MAX_PATH_ARGS]),
        FSCONFIG if a[1] == FSCONFIG_SET_STRING => (2, [a[2], a[3], 0], [NO_BASE; MAX_PATH_ARGS]),
        FSCONFIG => (1, [a[2], 0, 0], [NO_BASE; MAX_PATH_ARGS]),
        _ => (0, [0; MAX_PATH_ARGS], [NO_BASE; MAX_PATH_ARGS]),
    };
    PathArgs { n, addr, base }
}

/// Whether syscall `nr` passes path strings (its entry is watched too).
pub const fn has_path_args(nr: u32) -> bool {
    path_args(nr, &[0; 6]).n > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirfd_registers_are_sign_extended_from_32_bits() {
        // AT_FDCWD passed as an int: the upper half of the register is not
        // the caller's to set.
        let a = [0xffff_ffff_ffff_ff9c_u64, 0x1000, 0, 0, 0, 0];
        assert_eq!(path_args(UNLINKAT, &a).base[0], AT_FDCWD);
        let a = [0x1234_0000_0000_0007_u64, 0x1000, 0, 0, 0, 0];
        assert_eq!(path_args(UNLINKAT, &a).base[0], 7);
    }

    #[test]
    fn two_directory_calls_name_each_string_its_own_directory() {
        let a = [3, 0x1000, 4, 0x2000, 0, 0];
        let p = path_args(RENAMEAT2, &a);
        assert_eq!(
            (p.n, &p.addr[..2], &p.base[..2]),
            (2, &[0x1000, 0x2000][..], &[3, 4][..])
        );
        let p = path_args(SYMLINKAT, &[0x1000, 5, 0x2000, 0, 0, 0]);
        assert_eq!(
            p.base[..2],
            [NO_BASE, 5],
            "a symlink's target is not relative to the dirfd"
        );
    }

    #[test]
    fn opens_and_fd_calls_pass_no_path_strings() {
        for nr in [OPEN, OPENAT, OPENAT2, FCHMOD, FTRUNCATE, DUP] {
            assert!(!has_path_args(nr), "{nr}");
        }
        assert!(has_path_args(FSCONFIG) && has_path_args(MOUNT));
    }
}
