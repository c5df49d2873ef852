//! Landlock (Linux ≥ 5.13) filesystem, TCP (ABI ≥ 4) and scope (ABI ≥ 6) restrictions.
//!
//! The ruleset is built in the parent (opening paths allocates), and only `landlock_restrict_self` runs in the
//! forked child, where nothing but async-signal-safe system calls is allowed.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{bail, Result};

const CREATE_RULESET_VERSION: u32 = 1;
const RULE_PATH_BENEATH: libc::c_int = 1;

const FS_EXECUTE: u64 = 1 << 0;
const FS_WRITE_FILE: u64 = 1 << 1;
const FS_READ_FILE: u64 = 1 << 2;
const FS_READ_DIR: u64 = 1 << 3;
const FS_TRUNCATE: u64 = 1 << 14;
const FS_IOCTL_DEV: u64 = 1 << 15;
const NET_BIND_TCP: u64 = 1 << 0;
const NET_CONNECT_TCP: u64 = 1 << 1;
const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0;
const SCOPE_SIGNAL: u64 = 1 << 1;

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// The Landlock ABI version the running kernel supports, or `None` when Landlock is off or absent.
pub fn abi_version() -> Option<u32> {
    // SAFETY: the version query takes no pointers (NULL attr, size 0).
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            CREATE_RULESET_VERSION,
        )
    };
    (v > 0).then_some(v as u32)
}

/// All filesystem rights the given ABI knows; handling them all means anything not granted is denied.
fn fs_rights(abi: u32) -> u64 {
    let mut rights = (1u64 << 13) - 1; // ABI 1: execute .. make_sym
    if abi >= 2 {
        rights |= 1 << 13; // refer
    }
    if abi >= 3 {
        rights |= FS_TRUNCATE;
    }
    if abi >= 5 {
        rights |= FS_IOCTL_DEV;
    }
    rights
}

/// A ready ruleset: read+execute beneath `read_roots`, full access beneath `write_roots`, no TCP, and (ABI ≥ 6) no
/// signals to or abstract sockets of processes outside the sandbox.
pub struct Ruleset {
    fd: OwnedFd,
}

impl Ruleset {
    /// Builds the ruleset; missing paths are skipped (an interpreter may list nonexistent `sys.path` entries).
    pub fn build(abi: u32, read_roots: &[&Path], write_roots: &[&Path]) -> Result<Self> {
        let handled_fs = fs_rights(abi);
        let attr = RulesetAttr {
            handled_access_fs: handled_fs,
            handled_access_net: if abi >= 4 { NET_BIND_TCP | NET_CONNECT_TCP } else { 0 },
            scoped: if abi >= 6 {
                SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
            } else {
                0
            },
        };
        let size = match abi {
            1..=3 => 8,
            4 | 5 => 16,
            _ => std::mem::size_of::<RulesetAttr>(),
        };
        // SAFETY: attr is a valid, initialised struct at least `size` bytes long.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                &attr as *const RulesetAttr,
                size,
                0u32,
            )
        };
        if fd < 0 {
            bail!("landlock_create_ruleset failed: {}", std::io::Error::last_os_error());
        }
        // SAFETY: the kernel returned a fresh file descriptor that we now own.
        let ruleset = Self {
            fd: unsafe { OwnedFd::from_raw_fd(fd as i32) },
        };
        let read = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR;
        for root in read_roots {
            ruleset.allow(root, read, handled_fs)?;
        }
        for root in write_roots {
            ruleset.allow(root, handled_fs, handled_fs)?;
        }
        Ok(ruleset)
    }

    /// Grants `access` beneath `path` (restricted to file rights when `path` is not a directory).
    pub fn allow(&self, path: &Path, access: u64, handled: u64) -> Result<()> {
        let Ok(meta) = std::fs::metadata(path) else {
            return Ok(());
        };
        let mut allowed = access & handled;
        if !meta.is_dir() {
            allowed &= FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV;
        }
        let c_path = CString::new(path.as_os_str().as_bytes())?;
        // SAFETY: c_path is a valid NUL-terminated string.
        let raw = unsafe { libc::open(c_path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
        if raw < 0 {
            return Ok(()); // vanished or unreadable: simply not granted
        }
        // SAFETY: open returned a fresh descriptor.
        let path_fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let attr = PathBeneathAttr {
            allowed_access: allowed,
            parent_fd: path_fd.as_raw_fd(),
        };
        // SAFETY: both descriptors are valid and attr is a valid packed struct.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_landlock_add_rule,
                self.fd.as_raw_fd(),
                RULE_PATH_BENEATH,
                &attr as *const PathBeneathAttr,
                0u32,
            )
        };
        if rc < 0 {
            bail!(
                "landlock_add_rule({}) failed: {}",
                path.display(),
                std::io::Error::last_os_error()
            );
        }
        Ok(())
    }

    /// The raw descriptor, for [`restrict_self`] in the child.
    pub fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }
}

/// Enforces the ruleset on the calling process (requires `no_new_privs`). Async-signal-safe.
pub fn restrict_self(ruleset_fd: i32) -> std::io::Result<()> {
    // SAFETY: plain system call on a descriptor inherited from the parent.
    let rc = unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset_fd, 0u32) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
