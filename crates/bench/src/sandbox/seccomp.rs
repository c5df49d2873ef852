//! A small seccomp-BPF filter: no new processes (threads stay allowed), no sockets except `AF_UNIX`, no
//! `ptrace`/`io_uring`, and on x86-64 no x32 system calls.
//!
//! Process creation is refused outright rather than bounded, because `RLIMIT_NPROC` does not apply to root and a
//! math program never needs a child process. Threads must stay (OpenBLAS and friends start some), and they are
//! bounded by the address-space limit.

use libc::sock_filter;

const LD_W_ABS: u16 = 0x20;
const JEQ_K: u16 = 0x15;
const JSET_K: u16 = 0x45;
const JGE_K: u16 = 0x35;
const RET_K: u16 = 0x06;

const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_KILL_PROCESS: u32 = 0x8000_0000;

const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;
const OFFSET_ARG0: u32 = 16; // low 32 bits of args[0] on little-endian targets

#[cfg(target_arch = "x86_64")]
mod arch {
    pub const AUDIT_ARCH: u32 = 0xc000_003e;
    pub const FORK: Option<u32> = Some(57);
    pub const VFORK: Option<u32> = Some(58);
    pub const CLONE: u32 = 56;
    pub const SOCKET: u32 = 41;
    pub const PTRACE: u32 = 101;
    pub const X32_BIT: Option<u32> = Some(0x4000_0000);
}

#[cfg(target_arch = "aarch64")]
mod arch {
    pub const AUDIT_ARCH: u32 = 0xc000_00b7;
    pub const FORK: Option<u32> = None;
    pub const VFORK: Option<u32> = None;
    pub const CLONE: u32 = 220;
    pub const SOCKET: u32 = 198;
    pub const PTRACE: u32 = 117;
    pub const X32_BIT: Option<u32> = None;
}

const CLONE3: u32 = 435;
const IO_URING_SETUP: u32 = 425;

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter { code, jt: 0, jf: 0, k }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// The filter program, or `None` on architectures this module has no syscall table for.
pub fn filter() -> Option<Vec<sock_filter>> {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    {
        let eperm = RET_ERRNO | libc::EPERM as u32;
        let mut prog = vec![
            stmt(LD_W_ABS, OFFSET_ARCH),
            jump(JEQ_K, arch::AUDIT_ARCH, 1, 0),
            stmt(RET_K, RET_KILL_PROCESS),
            stmt(LD_W_ABS, OFFSET_NR),
        ];
        if let Some(x32) = arch::X32_BIT {
            prog.push(jump(JGE_K, x32, 0, 1));
            prog.push(stmt(RET_K, eperm));
        }
        for nr in [arch::FORK, arch::VFORK, Some(arch::PTRACE), Some(IO_URING_SETUP)]
            .into_iter()
            .flatten()
        {
            prog.push(jump(JEQ_K, nr, 0, 1));
            prog.push(stmt(RET_K, eperm));
        }
        // clone3 passes its flags in memory the filter cannot read; ENOSYS makes libc fall back to clone().
        prog.push(jump(JEQ_K, CLONE3, 0, 1));
        prog.push(stmt(RET_K, RET_ERRNO | libc::ENOSYS as u32));
        // clone: allow only threads.
        prog.push(jump(JEQ_K, arch::CLONE, 0, 4));
        prog.push(stmt(LD_W_ABS, OFFSET_ARG0));
        prog.push(jump(JSET_K, libc::CLONE_THREAD as u32, 0, 1));
        prog.push(stmt(RET_K, RET_ALLOW));
        prog.push(stmt(RET_K, eperm));
        // socket: AF_UNIX only.
        prog.push(jump(JEQ_K, arch::SOCKET, 0, 4));
        prog.push(stmt(LD_W_ABS, OFFSET_ARG0));
        prog.push(jump(JEQ_K, libc::AF_UNIX as u32, 0, 1));
        prog.push(stmt(RET_K, RET_ALLOW));
        prog.push(stmt(RET_K, RET_ERRNO | libc::EACCES as u32));
        prog.push(stmt(RET_K, RET_ALLOW));
        Some(prog)
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        None
    }
}

/// Installs `prog` on the calling thread (requires `no_new_privs`). Async-signal-safe: no allocation.
pub fn install(prog: &[sock_filter]) -> std::io::Result<()> {
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut sock_filter,
    };
    // SAFETY: fprog points at a live, well-formed BPF program for the duration of the call.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &fprog as *const libc::sock_fprog,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
