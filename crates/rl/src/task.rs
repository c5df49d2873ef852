//! Math tasks for RL: seeded arithmetic word problems (train and a disjoint held-out set) and GSM8K from JSONL.
//!
//! The generated task exists so that a learning run is possible for a small model: GSM8K is too hard for a 135M
//! model (near 0% accuracy gives GRPO no signal), while one-to-three-step word problems with small numbers start
//! in the useful 5–60% range. Difficulty is a parameter, so the same generator serves larger models too.

use std::collections::HashSet;
use std::io::BufRead;
use std::path::Path;

use anyhow::Context;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// One question with its reference answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    /// The question text.
    pub question: String,
    /// The reference answer (a number for these tasks).
    pub answer: String,
}

/// Difficulty knobs of the word-problem generator.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArithmeticOptions {
    /// Minimum number of operations in a problem.
    pub min_steps: usize,
    /// Maximum number of operations in a problem.
    pub max_steps: usize,
    /// Largest starting quantity / operand.
    pub max_operand: u64,
}

impl Default for ArithmeticOptions {
    fn default() -> Self {
        Self {
            min_steps: 1,
            max_steps: 3,
            max_operand: 20,
        }
    }
}

const NAMES: [&str; 12] = [
    "Ava", "Ben", "Chloe", "Dan", "Emma", "Finn", "Grace", "Hugo", "Iris", "Jack", "Lena", "Max",
];
const ITEMS: [&str; 10] = [
    "apples", "marbles", "stickers", "books", "pencils", "cookies", "coins", "shells", "cards", "stamps",
];

/// Generates one problem: a starting quantity followed by `steps` operations, always with an integer,
/// non-negative answer.
pub fn arithmetic_problem(rng: &mut impl Rng, options: &ArithmeticOptions) -> Problem {
    let name = NAMES[rng.random_range(0..NAMES.len())];
    let item = ITEMS[rng.random_range(0..ITEMS.len())];
    let max = options.max_operand.max(2);
    let mut value = rng.random_range(2..=max);
    let mut text = format!("{name} has {value} {item}.");
    let steps = rng.random_range(options.min_steps.max(1)..=options.max_steps.max(options.min_steps.max(1)));
    for _ in 0..steps {
        let sentence = match rng.random_range(0..4) {
            0 => {
                let k = rng.random_range(1..=max);
                value += k;
                format!(" {name} finds {k} more {item}.")
            }
            1 if value > 1 => {
                let k = rng.random_range(1..value);
                value -= k;
                format!(" {name} gives away {k} {item}.")
            }
            2 if value * 5 <= max * max => {
                let k = rng.random_range(2..=5);
                value *= k;
                format!(" Then the number of {item} {name} has becomes {k} times as many.")
            }
            3 => {
                let divisors: Vec<u64> = (2..=5).filter(|d| value % d == 0).collect();
                if divisors.is_empty() {
                    let k = rng.random_range(1..=max);
                    value += k;
                    format!(" A friend gives {name} {k} {item}.")
                } else {
                    let d = divisors[rng.random_range(0..divisors.len())];
                    value /= d;
                    format!(" {name} shares the {item} equally among {d} boxes and keeps one box.")
                }
            }
            _ => {
                let k = rng.random_range(1..=max);
                value += k;
                format!(" A friend gives {name} {k} {item}.")
            }
        };
        text.push_str(&sentence);
    }
    text.push_str(&format!(" How many {item} does {name} have now?"));
    Problem {
        question: text,
        answer: value.to_string(),
    }
}

/// A train set and a held-out set that share no question text.
#[derive(Clone, Debug)]
pub struct TaskSplits {
    /// Training problems.
    pub train: Vec<Problem>,
    /// Held-out problems, never seen in training.
    pub held_out: Vec<Problem>,
}

/// Generates `held_out` distinct evaluation problems, then `train` distinct training problems none of whose
/// question texts is in the evaluation set. Deterministic in `seed`.
pub fn arithmetic_splits(
    seed: u64,
    train: usize,
    held_out: usize,
    options: &ArithmeticOptions,
) -> anyhow::Result<TaskSplits> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut seen = HashSet::new();
    let take = |n: usize, rng: &mut ChaCha8Rng, seen: &mut HashSet<String>| -> anyhow::Result<Vec<Problem>> {
        let mut out = Vec::with_capacity(n);
        let mut attempts = 0usize;
        while out.len() < n {
            attempts += 1;
            anyhow::ensure!(
                attempts <= 100 * n + 1000,
                "cannot generate {n} distinct problems with {options:?}"
            );
            let p = arithmetic_problem(rng, options);
            if seen.insert(p.question.clone()) {
                out.push(p);
            }
        }
        Ok(out)
    };
    let held_out = take(held_out, &mut rng, &mut seen)?;
    let train = take(train, &mut rng, &mut seen)?;
    Ok(TaskSplits { train, held_out })
}

/// Reads GSM8K-style JSONL (`{"question", "answer"}` with the final answer after `####`). Malformed lines are
/// reported (file and line) and skipped; returns the problems and the number skipped.
pub fn read_gsm8k(path: &Path) -> anyhow::Result<(Vec<Problem>, usize)> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut out = Vec::new();
    let mut skipped = 0;
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        #[derive(Deserialize)]
        struct Record {
            question: String,
            answer: String,
        }
        let parsed = serde_json::from_str::<Record>(&line).ok().and_then(|r| {
            let answer = seekmath_verify::extract::gsm8k_reference(&r.answer)?;
            Some(Problem {
                question: r.question,
                answer,
            })
        });
        match parsed {
            Some(p) => out.push(p),
            None => {
                skipped += 1;
                tracing::warn!("{}:{}: malformed GSM8K record skipped", path.display(), i + 1);
            }
        }
    }
    Ok((out, skipped))
}

/// Reads problems from JSONL with `question`/`answer` fields (answers already final), e.g. a task written by
/// `seekmath rl make-task`. Malformed lines are reported and skipped.
pub fn read_problems(path: &Path) -> anyhow::Result<(Vec<Problem>, usize)> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut out = Vec::new();
    let mut skipped = 0;
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Problem>(&line) {
            Ok(p) => out.push(p),
            Err(e) => {
                skipped += 1;
                tracing::warn!("{}:{}: malformed problem skipped: {e}", path.display(), i + 1);
            }
        }
    }
    Ok((out, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Re-evaluates a generated problem from its text, independently of the generator's bookkeeping.
    fn solve(question: &str) -> u64 {
        let num = |s: &str| {
            s.split_whitespace()
                .find_map(|w| w.trim_end_matches('.').parse::<u64>().ok())
                .unwrap()
        };
        let mut sentences = question.split(". ").map(|s| s.trim());
        let mut v = num(sentences.next().unwrap());
        for s in sentences {
            if s.contains("finds") || s.contains("A friend gives") {
                v += num(s);
            } else if s.contains("gives away") {
                v -= num(s);
            } else if s.contains("times as many") {
                v *= num(s);
            } else if s.contains("equally among") {
                v /= num(s);
            }
        }
        v
    }

    #[test]
    fn answers_are_consistent_with_the_text() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for _ in 0..500 {
            let p = arithmetic_problem(&mut rng, &ArithmeticOptions::default());
            assert_eq!(solve(&p.question).to_string(), p.answer, "{}", p.question);
        }
    }

    #[test]
    fn splits_are_disjoint_and_deterministic() {
        let opts = ArithmeticOptions::default();
        let a = arithmetic_splits(1, 2000, 500, &opts).unwrap();
        let b = arithmetic_splits(1, 2000, 500, &opts).unwrap();
        assert_eq!(a.train, b.train);
        assert_eq!(a.held_out.len(), 500);
        let eval: HashSet<_> = a.held_out.iter().map(|p| &p.question).collect();
        assert!(a.train.iter().all(|p| !eval.contains(&p.question)));
        let c = arithmetic_splits(2, 10, 10, &opts).unwrap();
        assert_ne!(a.held_out[..10], c.held_out[..]);
    }

    #[test]
    fn gsm8k_reader_skips_malformed_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.jsonl");
        std::fs::write(
            &path,
            "{\"question\":\"1+1?\",\"answer\":\"1+1=2\\n#### 2\"}\nnot json\n{\"question\":\"x\"}\n",
        )
        .unwrap();
        let (problems, skipped) = read_gsm8k(&path).unwrap();
        assert_eq!(
            problems,
            vec![Problem {
                question: "1+1?".into(),
                answer: "2".into()
            }]
        );
        assert_eq!(skipped, 2);
    }
}
