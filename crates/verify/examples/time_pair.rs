//! Times one check: `cargo run --release -p seekmath-verify --example time_pair -- GOLD PRED [ROUNDS]`.

use seekmath_verify::{Mode, Verifier};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (gold, pred) = (&args[0], &args[1]);
    let rounds: usize = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(50);
    let v = Verifier::new(Mode::Strict);
    let mut best = f64::MAX;
    let mut verdict = false;
    for _ in 0..rounds {
        let t = Instant::now();
        verdict = v.is_equivalent(pred, gold);
        best = best.min(t.elapsed().as_secs_f64() * 1e3);
    }
    println!("equal={verdict} best={best:.3}ms");
}
