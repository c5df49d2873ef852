//! Prints strict and compat verdicts for tab-separated `gold<TAB>pred` lines on stdin (exploration aid).

use seekmath_verify::{Mode, Verifier};
use std::io::BufRead;

fn main() {
    let (strict, compat) = (Verifier::new(Mode::Strict), Verifier::new(Mode::DeepseekCompat));
    for line in std::io::stdin().lock().lines().map_while(Result::ok) {
        let Some((gold, pred)) = line.split_once('\t') else {
            continue;
        };
        println!(
            "{:5} {:5}  {gold:?} vs {pred:?}",
            strict.is_equivalent(pred, gold),
            compat.is_equivalent(pred, gold)
        );
    }
}
