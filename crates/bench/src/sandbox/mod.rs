//! Running model-written Python in a separate, confined process.
//!
//! Layers, outermost first (each one is probed once in [`Sandbox::new`] and reported in [`Layers`]; see
//! `docs/sandbox.md` for exactly what each guarantees):
//! 1. resource limits (`RLIMIT_CPU`, `RLIMIT_AS`, `RLIMIT_FSIZE`, `RLIMIT_NOFILE`, `RLIMIT_NPROC`, no core files),
//!    a wall-clock deadline enforced by killing the whole process group, and an output cap;
//! 2. a fresh user + network namespace (no interfaces but an unconfigured loopback: no network at all);
//! 3. Landlock: read-only access to the interpreter's own directories and a few system library paths, full access
//!    only to a fresh temporary working directory, no TCP bind/connect, no signals out of the sandbox;
//! 4. seccomp: no process creation (threads allowed), no non-`AF_UNIX` sockets, no ptrace/io_uring;
//! 5. in the interpreter: `-I -S -B`, cleared environment, and an audit hook as a last, bypassable line.

mod landlock;
mod seccomp;

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

const BOOTSTRAP: &str = include_str!("bootstrap.py");

/// Limits and interpreter for the sandbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxConfig {
    /// Python interpreter (a venv's `bin/python` works: its site-packages become importable).
    pub python: PathBuf,
    /// CPU seconds before `SIGXCPU` (a second later `SIGKILL`).
    pub cpu_seconds: u64,
    /// Wall-clock limit; the process group is killed when it passes.
    pub wall_time: Duration,
    /// Address-space limit (`RLIMIT_AS`) in bytes.
    pub memory_bytes: u64,
    /// Bytes kept from each of stdout and stderr; more output kills the program.
    pub max_output_bytes: usize,
    /// Largest file the program may write (`RLIMIT_FSIZE`).
    pub max_file_bytes: u64,
    /// `RLIMIT_NPROC` (effective for non-root users; seccomp refuses new processes regardless).
    pub max_processes: u64,
    /// Fail in [`Sandbox::new`] unless namespaces, Landlock and seccomp are all available.
    pub require_full_isolation: bool,
    /// Install the in-process audit hook (defence in depth; turned off only to test the kernel layers alone).
    pub audit_hook: bool,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            python: default_python(),
            cpu_seconds: 10,
            wall_time: Duration::from_secs(15),
            memory_bytes: 4 << 30,
            max_output_bytes: 64 << 10,
            max_file_bytes: 16 << 20,
            max_processes: 64,
            require_full_isolation: false,
            audit_hook: true,
        }
    }
}

/// `SEEKMATH_PYTHON`, else the workspace venv when this crate sits in the workspace, else `python3`.
pub fn default_python() -> PathBuf {
    if let Some(p) = std::env::var_os("SEEKMATH_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    if venv.exists() {
        return venv;
    }
    PathBuf::from("python3")
}

/// Which isolation layers are active on this machine.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Layers {
    /// User + network namespace (no network).
    pub namespaces: bool,
    /// Landlock ABI in force (filesystem; TCP from ABI 4; signal/abstract-socket scoping from ABI 6).
    pub landlock_abi: Option<u32>,
    /// seccomp filter installed.
    pub seccomp: bool,
}

/// How an execution ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecStatus {
    /// Exit status 0.
    Success,
    /// Non-zero exit (an uncaught exception, a refused operation, `MemoryError`...).
    Error {
        /// The exit code.
        exit_code: i32,
    },
    /// Killed at the wall-clock deadline.
    WallTimeout,
    /// Hit the CPU-time limit.
    CpuTimeout,
    /// Wrote more than the output cap.
    OutputLimit,
    /// Killed by another signal (e.g. `SIGSEGV`, `SIGKILL` from the kernel).
    Signaled {
        /// The signal number.
        signal: i32,
    },
}

/// The outcome of one program.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecResult {
    /// How it ended.
    pub status: ExecStatus,
    /// Captured standard output (lossy UTF-8, capped).
    pub stdout: String,
    /// Captured standard error (lossy UTF-8, capped).
    pub stderr: String,
    /// Wall time used.
    pub wall: Duration,
}

impl ExecResult {
    /// Whether the program ran to completion with exit status 0.
    pub fn succeeded(&self) -> bool {
        self.status == ExecStatus::Success
    }

    /// A short error description for feeding back to a model (last line of stderr, or the status).
    pub fn error_summary(&self) -> String {
        match &self.status {
            ExecStatus::Success => String::new(),
            ExecStatus::Error { .. } => self
                .stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("error")
                .trim()
                .to_string(),
            ExecStatus::WallTimeout | ExecStatus::CpuTimeout => "TimeoutError: time limit exceeded".into(),
            ExecStatus::OutputLimit => "output limit exceeded".into(),
            ExecStatus::Signaled { signal } => format!("killed by signal {signal}"),
        }
    }
}

/// A configured sandbox; cheap to share across threads, one process per [`Sandbox::run`].
#[derive(Debug, Clone)]
pub struct Sandbox {
    config: SandboxConfig,
    layers: Layers,
    site_dirs: Vec<String>,
    read_roots: Vec<PathBuf>,
    filter: Option<Vec<libc::sock_filter>>,
}

/// System locations the interpreter needs to start (shared libraries, the loader cache, time zones).
const SYSTEM_READ_ROOTS: &[&str] = &[
    "/usr",
    "/lib",
    "/lib64",
    "/lib32",
    "/bin",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/dev/urandom",
    "/dev/random",
    "/dev/zero",
    "/proc/cpuinfo",
    "/sys/devices/system/cpu",
];

#[derive(Deserialize)]
struct Probe {
    path: Vec<String>,
    prefix: String,
    base_prefix: String,
    exec_prefix: String,
    base_exec_prefix: String,
    executable: String,
}

impl Sandbox {
    /// Probes the interpreter and the kernel's isolation features, then runs a smoke test through every layer.
    pub fn new(config: SandboxConfig) -> Result<Self> {
        let probe = probe_interpreter(&config.python)?;
        let mut read_roots: Vec<PathBuf> = SYSTEM_READ_ROOTS.iter().map(PathBuf::from).collect();
        for dir in [
            &probe.prefix,
            &probe.base_prefix,
            &probe.exec_prefix,
            &probe.base_exec_prefix,
        ] {
            read_roots.push(PathBuf::from(dir));
        }
        for entry in &probe.path {
            if !entry.is_empty() {
                read_roots.push(PathBuf::from(entry));
            }
        }
        let exe = std::fs::canonicalize(&probe.executable).unwrap_or_else(|_| PathBuf::from(&probe.executable));
        if let Some(dir) = exe.parent() {
            read_roots.push(dir.to_path_buf());
        }
        if let Ok(python) = std::fs::canonicalize(&config.python) {
            read_roots.push(python);
        }
        read_roots.push(config.python.clone());
        read_roots.sort();
        read_roots.dedup();
        let site_dirs = probe
            .path
            .iter()
            .filter(|p| p.contains("site-packages") || p.contains("dist-packages"))
            .cloned()
            .collect();

        let mut sandbox = Self {
            config,
            layers: Layers {
                namespaces: false,
                landlock_abi: landlock::abi_version(),
                seccomp: false,
            },
            site_dirs,
            read_roots,
            filter: seccomp::filter(),
        };
        sandbox.layers.seccomp = sandbox.filter.is_some();
        // Namespaces can be disabled by sysctl or a container runtime; find out by trying.
        sandbox.layers.namespaces = true;
        if !sandbox.smoke_test() {
            sandbox.layers.namespaces = false;
            tracing::warn!(
                "sandbox: user/network namespaces unavailable; relying on seccomp and Landlock for no-network"
            );
            if !sandbox.smoke_test() {
                sandbox.layers.seccomp = false;
                tracing::warn!("sandbox: seccomp filter could not be installed");
                if !sandbox.smoke_test() {
                    sandbox.layers.landlock_abi = None;
                    if !sandbox.smoke_test() {
                        bail!(
                            "sandbox: {} cannot run even a trivial program",
                            sandbox.config.python.display()
                        );
                    }
                }
            }
        }
        if sandbox.layers.landlock_abi.is_none() {
            tracing::warn!("sandbox: Landlock unavailable; file access is limited only by the in-process audit hook");
        }
        let full = sandbox.layers.namespaces && sandbox.layers.seccomp && sandbox.layers.landlock_abi.is_some();
        if sandbox.config.require_full_isolation && !full {
            bail!(
                "sandbox: full isolation required but only {:?} is available",
                sandbox.layers
            );
        }
        tracing::debug!("sandbox layers: {:?}", sandbox.layers);
        Ok(sandbox)
    }

    /// The active isolation layers.
    pub fn layers(&self) -> Layers {
        self.layers
    }

    /// The configuration in force.
    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    fn smoke_test(&self) -> bool {
        match self.run("import math\nprint(math.factorial(5))") {
            Ok(r) => r.succeeded() && r.stdout.trim() == "120",
            Err(_) => false,
        }
    }

    /// Runs `code` as `__main__` in a fresh temporary directory and returns what happened. `Err` only for failures
    /// of the harness itself (cannot create a temp dir, cannot spawn); anything the program does is an
    /// [`ExecResult`].
    pub fn run(&self, code: &str) -> Result<ExecResult> {
        let workdir = tempfile::Builder::new()
            .prefix("seekmath-sandbox-")
            .tempdir()
            .context("sandbox temp dir")?;
        let program = workdir.path().join("main.py");
        std::fs::write(&program, code).context("writing sandbox program")?;
        let workdir_path = std::fs::canonicalize(workdir.path())?;

        let roots = serde_json::json!({
            "read": self.read_roots,
            "write": [workdir_path],
        });
        let mut cmd = Command::new(&self.config.python);
        cmd.args(["-I", "-S", "-B", "-c", BOOTSTRAP, "main.py"])
            .arg(roots.to_string())
            .arg(serde_json::to_string(&self.site_dirs)?)
            .arg(if self.config.audit_hook { "1" } else { "0" })
            .current_dir(&workdir_path)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", &workdir_path)
            .env("TMPDIR", &workdir_path)
            .env("LANG", "C.UTF-8")
            .env("OMP_NUM_THREADS", "1")
            .env("OPENBLAS_NUM_THREADS", "1")
            .env("MKL_NUM_THREADS", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);

        let ruleset = match self.layers.landlock_abi {
            Some(abi) => {
                let read: Vec<&Path> = self.read_roots.iter().map(PathBuf::as_path).collect();
                let write: [&Path; 2] = [&workdir_path, Path::new("/dev/null")];
                Some(landlock::Ruleset::build(abi, &read, &write)?)
            }
            None => None,
        };
        let limits = ChildLimits {
            cpu_seconds: self.config.cpu_seconds.max(1),
            memory_bytes: self.config.memory_bytes,
            max_file_bytes: self.config.max_file_bytes,
            max_processes: self.config.max_processes,
            namespaces: self.layers.namespaces,
            ruleset_fd: ruleset.as_ref().map(landlock::Ruleset::raw_fd),
            filter: if self.layers.seccomp { self.filter.clone() } else { None },
        };
        // SAFETY: the closure only makes async-signal-safe system calls (no allocation, no locks).
        unsafe {
            cmd.pre_exec(move || limits.apply());
        }
        let start = Instant::now();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawning {}", self.config.python.display()))?;
        let pgid = child.id() as i32;
        let overflow = Arc::new(AtomicBool::new(false));
        let out_reader = spawn_reader(child.stdout.take(), self.config.max_output_bytes, overflow.clone());
        let err_reader = spawn_reader(child.stderr.take(), self.config.max_output_bytes, overflow.clone());

        let deadline = start + self.config.wall_time;
        let mut timed_out = false;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if overflow.load(Ordering::Relaxed) || Instant::now() >= deadline {
                timed_out = !overflow.load(Ordering::Relaxed);
                kill_group(pgid);
                break child.wait()?;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        // Anything the program left behind in its group goes too.
        kill_group(pgid);
        let wall = start.elapsed();
        let stdout = out_reader.join().unwrap_or_default();
        let stderr = err_reader.join().unwrap_or_default();
        drop(ruleset);

        let status = if overflow.load(Ordering::Relaxed) {
            ExecStatus::OutputLimit
        } else if timed_out {
            ExecStatus::WallTimeout
        } else if let Some(code) = status.code() {
            if code == 0 {
                ExecStatus::Success
            } else {
                ExecStatus::Error { exit_code: code }
            }
        } else {
            match status.signal() {
                Some(libc::SIGXCPU) => ExecStatus::CpuTimeout,
                Some(libc::SIGKILL) if wall.as_secs_f64() + 0.5 >= self.config.cpu_seconds as f64 => {
                    ExecStatus::CpuTimeout
                }
                Some(signal) => ExecStatus::Signaled { signal },
                None => ExecStatus::Signaled { signal: 0 },
            }
        };
        Ok(ExecResult {
            status,
            stdout,
            stderr,
            wall,
        })
    }
}

/// Everything the forked child needs, prepared before the fork.
struct ChildLimits {
    cpu_seconds: u64,
    memory_bytes: u64,
    max_file_bytes: u64,
    max_processes: u64,
    namespaces: bool,
    ruleset_fd: Option<i32>,
    filter: Option<Vec<libc::sock_filter>>,
}

impl ChildLimits {
    /// Runs in the child between fork and exec.
    fn apply(&self) -> std::io::Result<()> {
        set_limit(libc::RLIMIT_CPU, self.cpu_seconds, self.cpu_seconds + 1)?;
        set_limit(libc::RLIMIT_AS, self.memory_bytes, self.memory_bytes)?;
        set_limit(libc::RLIMIT_FSIZE, self.max_file_bytes, self.max_file_bytes)?;
        set_limit(libc::RLIMIT_NOFILE, 256, 256)?;
        set_limit(libc::RLIMIT_CORE, 0, 0)?;
        set_limit(libc::RLIMIT_NPROC, self.max_processes, self.max_processes)?;
        if self.namespaces {
            // SAFETY: plain system call; the child is single-threaded here, as unshare(CLONE_NEWUSER) requires.
            if unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        // SAFETY: plain prctl; required before unprivileged Landlock and seccomp.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if let Some(fd) = self.ruleset_fd {
            landlock::restrict_self(fd)?;
        }
        if let Some(filter) = &self.filter {
            seccomp::install(filter)?;
        }
        Ok(())
    }
}

fn set_limit(resource: libc::__rlimit_resource_t, soft: u64, hard: u64) -> std::io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: soft as libc::rlim_t,
        rlim_max: hard as libc::rlim_t,
    };
    // SAFETY: limit is a valid struct.
    if unsafe { libc::setrlimit(resource, &limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn kill_group(pgid: i32) {
    // SAFETY: signalling our own child's process group; ESRCH when it is already gone is fine.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

/// Reads a pipe to the end, keeping at most `cap` bytes and raising `overflow` when more arrive.
fn spawn_reader<R: Read + Send + 'static>(
    pipe: Option<R>,
    cap: usize,
    overflow: Arc<AtomicBool>,
) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let Some(mut pipe) = pipe else { return String::new() };
        let mut kept = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = cap.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                    if n > room {
                        overflow.store(true, Ordering::Relaxed);
                    }
                }
            }
        }
        String::from_utf8_lossy(&kept).into_owned()
    })
}

fn probe_interpreter(python: &Path) -> Result<Probe> {
    let script = "import sys, json; print(json.dumps({'path': sys.path, 'prefix': sys.prefix, \
                  'base_prefix': sys.base_prefix, 'exec_prefix': sys.exec_prefix, \
                  'base_exec_prefix': sys.base_exec_prefix, 'executable': sys.executable}))";
    let out = Command::new(python)
        .args(["-I", "-c", script])
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run Python interpreter {}", python.display()))?;
    if !out.status.success() {
        bail!("{} failed: {}", python.display(), String::from_utf8_lossy(&out.stderr));
    }
    serde_json::from_slice(&out.stdout).with_context(|| format!("unexpected probe output from {}", python.display()))
}
