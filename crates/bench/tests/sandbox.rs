//! Containment tests for the sandbox: every hostile program must end as a failed execution, quickly, and a
//! correct program must still return its output.

use std::time::{Duration, Instant};

use seekmath_bench::sandbox::{default_python, ExecStatus, Sandbox, SandboxConfig};

fn sandbox() -> Option<Sandbox> {
    let python = default_python();
    if std::process::Command::new(&python)
        .arg("-c")
        .arg("pass")
        .status()
        .map(|s| !s.success())
        .unwrap_or(true)
    {
        eprintln!("skipping: no Python interpreter at {}", python.display());
        return None;
    }
    let config = SandboxConfig {
        python,
        cpu_seconds: 2,
        wall_time: Duration::from_secs(6),
        memory_bytes: 2 << 30,
        max_output_bytes: 16 << 10,
        ..SandboxConfig::default()
    };
    let sandbox = Sandbox::new(config).expect("sandbox set-up");
    eprintln!("sandbox layers: {:?}", sandbox.layers());
    Some(sandbox)
}

fn assert_failed(code: &str) -> seekmath_bench::ExecResult {
    let Some(sandbox) = sandbox() else { panic!("no python") };
    let start = Instant::now();
    let result = sandbox.run(code).unwrap();
    assert!(!result.succeeded(), "expected a failed execution, got {result:?}");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "containment took {:?}",
        start.elapsed()
    );
    result
}

fn have_python() -> bool {
    sandbox().is_some()
}

#[test]
fn correct_program_returns_output() {
    let Some(sandbox) = sandbox() else { return };
    let r = sandbox
        .run("def solution():\n    return 16 - 3 - 4\n\nprint(solution() * 2)\n")
        .unwrap();
    assert_eq!(r.status, ExecStatus::Success, "{r:?}");
    assert_eq!(r.stdout.trim(), "18");
    // Writing inside the working directory is allowed.
    let r = sandbox
        .run("open('scratch.txt', 'w').write('x')\nprint(open('scratch.txt').read())")
        .unwrap();
    assert_eq!(r.stdout.trim(), "x", "{r:?}");
}

#[test]
fn sympy_is_importable_when_installed() {
    let Some(sandbox) = sandbox() else { return };
    let python = sandbox.config().python.clone();
    let has_sympy = std::process::Command::new(&python)
        .args(["-c", "import sympy"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_sympy {
        eprintln!("skipping: sympy not installed for {}", python.display());
        return;
    }
    let r = sandbox
        .run("from sympy import symbols, Eq, solve, sqrt\nx = symbols('x')\nprint(solve(Eq(sqrt(3*x + 5)/sqrt(6*x + 5), sqrt(5)/3), x))")
        .unwrap();
    assert_eq!(r.status, ExecStatus::Success, "{r:?}");
    assert_eq!(r.stdout.trim(), "[20/3]");
}

#[test]
fn reading_etc_passwd_fails() {
    if !have_python() {
        return;
    }
    let r = assert_failed("print(open('/etc/passwd').read())");
    assert!(!r.stdout.contains("root:"), "leaked: {}", r.stdout);
}

#[test]
fn reading_the_users_home_fails() {
    if !have_python() {
        return;
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let r = assert_failed(&format!("import os\nprint(os.listdir({home:?}))"));
    assert!(r.stdout.is_empty());
    // A private file outside the sandbox, at a path the program knows.
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "top secret").unwrap();
    let r = assert_failed(&format!("print(open({:?}).read())", secret.display().to_string()));
    assert!(!r.stdout.contains("top secret"));
    let r = assert_failed(&format!(
        "open({:?}, 'w').write('overwritten')",
        secret.display().to_string()
    ));
    assert!(r.stderr.contains("Error"), "{r:?}");
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "top secret");
}

#[test]
fn opening_a_socket_fails() {
    if !have_python() {
        return;
    }
    assert_failed("import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\ns.settimeout(2)\ns.connect(('1.1.1.1', 80))\nprint('connected')");
    assert_failed("import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.sendto(b'x', ('8.8.8.8', 53))\nprint('sent')");
}

#[test]
fn fork_bomb_is_contained() {
    if !have_python() {
        return;
    }
    assert_failed("import os\nwhile True:\n    os.fork()");
    assert_failed("import subprocess\nprint(subprocess.run(['id'], capture_output=True).stdout)");
}

#[test]
fn huge_allocation_fails() {
    if !have_python() {
        return;
    }
    let r = assert_failed("x = bytearray(10 * 1024**3)\nprint(len(x))");
    assert!(r.stderr.contains("MemoryError"), "{r:?}");
}

#[test]
fn infinite_loop_is_stopped() {
    if !have_python() {
        return;
    }
    let r = assert_failed("while True:\n    pass");
    assert!(
        matches!(r.status, ExecStatus::CpuTimeout | ExecStatus::WallTimeout),
        "{r:?}"
    );
    // Sleeping uses no CPU: only the wall-clock limit catches it.
    let r = assert_failed("import time\ntime.sleep(60)");
    assert_eq!(r.status, ExecStatus::WallTimeout, "{r:?}");
}

#[test]
fn output_flood_is_capped() {
    if !have_python() {
        return;
    }
    let r = assert_failed("while True:\n    print('x' * 1000)");
    assert_eq!(r.status, ExecStatus::OutputLimit, "{r:?}");
    assert!(r.stdout.len() <= 16 << 10);
}

/// The kernel layers alone (no audit hook) must contain every attack where this machine has them.
#[test]
fn kernel_layers_contain_without_the_audit_hook() {
    let Some(full) = sandbox() else { return };
    let layers = full.layers();
    if !(layers.namespaces && layers.seccomp && layers.landlock_abi.is_some()) {
        eprintln!("skipping: kernel layers incomplete here ({layers:?})");
        return;
    }
    let config = SandboxConfig {
        audit_hook: false,
        ..full.config().clone()
    };
    let sandbox = Sandbox::new(config).unwrap();
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    for code in [
        "print(open('/etc/passwd').read())".to_string(),
        format!("import os\nprint(os.listdir({home:?}))"),
        "import socket\ns = socket.socket()\ns.connect(('1.1.1.1', 80))".to_string(),
        "import os\nwhile True:\n    os.fork()".to_string(),
        "import subprocess\nsubprocess.run(['id'])".to_string(),
        // Raw fork through libc, past anything Python-level: only seccomp can refuse it.
        "import ctypes, os\nlibc = ctypes.CDLL(None)\nos._exit(1 if libc.fork() < 0 else 0)".to_string(),
    ] {
        let r = sandbox.run(&code).unwrap();
        assert!(!r.succeeded(), "not contained without audit hook: {code}\n{r:?}");
    }
}
