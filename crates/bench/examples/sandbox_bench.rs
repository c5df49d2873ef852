//! Sandbox start-up cost: wall time per `Sandbox::run` for a trivial program, a PAL-style program, and a SymPy
//! import, compared with running the same interpreter directly (no isolation).
//!
//! `cargo run --release -p seekmath-bench --example sandbox_bench [-- RUNS]`

use std::process::Command;
use std::time::Instant;

use seekmath_bench::sandbox::{Sandbox, SandboxConfig};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(20);
    let sandbox = Sandbox::new(SandboxConfig::default())?;
    let python = sandbox.config().python.clone();
    println!(
        "python {} layers {:?}, {runs} runs each, median wall ms",
        python.display(),
        sandbox.layers()
    );
    println!("| program | sandboxed | plain `python -c` |");
    println!("|---|---:|---:|");
    let programs = [
        ("print(1)", "print(1)"),
        (
            "PAL GSM8K solution",
            "def solution():\n    a = 16 - 3 - 4\n    return a * 2\nprint(solution())",
        ),
        (
            "import sympy + solve",
            "from sympy import symbols, solve\nx = symbols('x')\nprint(solve(x**2 - 4, x))",
        ),
    ];
    for (name, code) in programs {
        let mut boxed = Vec::new();
        let mut plain = Vec::new();
        for _ in 0..runs {
            let t = Instant::now();
            let r = sandbox.run(code)?;
            assert!(r.succeeded(), "{r:?}");
            boxed.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            let ok = Command::new(&python).args(["-c", code]).output()?.status.success();
            assert!(ok);
            plain.push(t.elapsed().as_secs_f64() * 1e3);
        }
        println!("| {name} | {:.1} | {:.1} |", median(boxed), median(plain));
    }
    Ok(())
}
