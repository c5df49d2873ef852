//! Throughput and worst-case latency of `Verifier::is_equivalent` on the labelled pairs plus adversarial inputs.
//!
//! `cargo bench -p seekmath-verify` (plain harness: prints checks/s, p50/p99/max latency, and the slowest pairs).

use seekmath_verify::{Mode, Verifier};
use std::time::{Duration, Instant};

/// Inputs chosen to make a naive verifier slow: towers, huge powers, deep nesting, long sums, big factorials.
fn adversarial() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = [
        ("10^{10^{10}}", "10^{10^{10}}+1"),
        ("9^{9^{9^{9}}}", "9^{9^{9^{8}}}"),
        ("(x+y+z+w)^{64}", "(w+x+y+z)^{63}"),
        ("(x+1)^{64}", "(1+x)^{64}"),
        ("x^{1000000}", "x^{999999}"),
        ("1000!", "999!"),
        ("\\frac{1}{2004!}", "\\frac{1}{2006!}"),
        ("\\binom{1000}{500}", "\\binom{1000}{499}"),
        (
            "\\sqrt{99999999999999999999999999999999999999}",
            "\\sqrt{99999999999999999999999999999999999998}",
        ),
        ("\\sin(10^{100})", "\\sin(10^{100}+1)"),
        ("2^{16384}", "2^{16383}\\cdot 2"),
        ("e^{e^{e^{e}}}", "e^{e^{e^{e}}}+1"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    v.push(("1".into(), "(".repeat(300) + "1" + &")".repeat(300)));
    v.push(("1500".into(), vec!["1"; 1500].join("+")));
    v.push(("x".into(), vec!["x"; 400].join("*")));
    v.push(("9".repeat(999), "9".repeat(998) + "8"));
    let poly: Vec<String> = (0..200).map(|k| format!("{k}x^{{{k}}}")).collect();
    v.push((poly.join("+"), poly.iter().rev().cloned().collect::<Vec<_>>().join("+")));
    let nested = (0..60).fold("x".to_string(), |acc, _| format!("\\frac{{1}}{{1+{acc}}}"));
    v.push((nested.clone(), nested.replace("1+", "2+")));
    let sqrt_tower = (0..60).fold("2".to_string(), |acc, _| format!("\\sqrt{{{acc}}}"));
    v.push((sqrt_tower.clone(), sqrt_tower.clone() + "+0"));
    v
}

/// CPU time consumed by this thread (immune to other processes on a shared, oversubscribed machine).
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec we own; CLOCK_THREAD_CPUTIME_ID is always available on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn load_pairs() -> Vec<(String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/labelled_pairs.jsonl");
    std::fs::read_to_string(path)
        .expect("labelled pairs")
        .lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            Some((v["gold"].as_str()?.to_string(), v["pred"].as_str()?.to_string()))
        })
        .collect()
}

fn main() {
    let verifier = Verifier::new(Mode::Strict);
    let mut pairs = load_pairs();
    let labelled = pairs.len();
    pairs.extend(adversarial());
    // Warm-up.
    for (g, p) in &pairs {
        std::hint::black_box(verifier.is_equivalent(p, g));
    }
    let rounds = 20;
    let mut latencies: Vec<(Duration, usize)> = Vec::with_capacity(pairs.len() * rounds);
    // Per pair: the least CPU time over the rounds (the cost of the check itself, without cache/scheduler noise).
    let mut cpu_best = vec![Duration::MAX; pairs.len()];
    let mut wall_best = vec![Duration::MAX; pairs.len()];
    let start = Instant::now();
    let cpu_start = thread_cpu_time();
    for _ in 0..rounds {
        for (i, (g, p)) in pairs.iter().enumerate() {
            let c = thread_cpu_time();
            let t = Instant::now();
            std::hint::black_box(verifier.is_equivalent(p, g));
            let wall = t.elapsed();
            latencies.push((wall, i));
            wall_best[i] = wall_best[i].min(wall);
            cpu_best[i] = cpu_best[i].min(thread_cpu_time() - c);
        }
    }
    let total = start.elapsed();
    let cpu_total = thread_cpu_time() - cpu_start;
    let checks = latencies.len();
    latencies.sort();
    let pct = |q: f64| latencies[((checks as f64 - 1.0) * q) as usize].0;
    println!(
        "seekmath-verify bench: {} labelled + {} adversarial pairs x {rounds} rounds",
        labelled,
        pairs.len() - labelled
    );
    println!("checks/s (wall): {:.0}", checks as f64 / total.as_secs_f64());
    println!(
        "checks/s (thread CPU time): {:.0}",
        checks as f64 / cpu_total.as_secs_f64()
    );
    println!(
        "wall latency p50 {:?}  p99 {:?}  max {:?}",
        pct(0.5),
        pct(0.99),
        latencies[checks - 1].0
    );
    let (worst_wall, wall_i) = wall_best.iter().enumerate().map(|(i, d)| (*d, i)).max().unwrap();
    println!(
        "worst pair by wall time (best of {rounds}): {worst_wall:?}  gold={:?}",
        pairs[wall_i].0.chars().take(40).collect::<String>()
    );
    let (worst_cpu, worst_i) = cpu_best.iter().enumerate().map(|(i, d)| (*d, i)).max().unwrap();
    let (g, p) = &pairs[worst_i];
    println!(
        "worst pair by CPU time (best of {rounds}): {worst_cpu:?}  gold={:?} pred={:?}",
        g.chars().take(40).collect::<String>(),
        p.chars().take(40).collect::<String>()
    );
    let mut seen = std::collections::BTreeSet::new();
    println!("slowest pairs:");
    for (d, i) in latencies.iter().rev() {
        if seen.insert(*i) {
            let (g, p) = &pairs[*i];
            let cut = |s: &str| s.chars().take(50).collect::<String>();
            println!("  {:>10?}  gold={:?} pred={:?}", d, cut(g), cut(p));
        }
        if seen.len() == 8 {
            break;
        }
    }
}
