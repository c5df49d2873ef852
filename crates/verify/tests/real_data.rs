//! Self-consistency on real benchmark data (skipped with a reason when the shared data pack is absent).
//!
//! Every MATH test reference answer (last boxed expression of the solution) must verify equal to itself — through
//! the parser, not just by string identity — and to the answer extracted from its own solution text; GSM8K likewise
//! with its `####` answers. Exceptions are printed with their reasons; answers the parser cannot read are counted
//! (they fall back to text comparison) and must stay rare.

use seekmath_verify::answer::equivalent_parsed;
use seekmath_verify::extract::{extract_answer, gsm8k_reference, math_reference, AnswerKind};
use seekmath_verify::{Mode, Options, Verifier};
use std::path::PathBuf;

fn shared_data() -> Option<PathBuf> {
    let dir = std::env::var_os("SEEKMATH_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    dir.is_dir().then_some(dir)
}

fn records(path: &std::path::Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .filter_map(|(i, l)| match serde_json::from_str(l) {
            Ok(v) => Some(v),
            Err(e) => {
                eprintln!("{}:{}: malformed record skipped: {e}", path.display(), i + 1);
                None
            }
        })
        .collect()
}

#[test]
fn math_references_equal_themselves_and_their_solutions() {
    let Some(dir) = shared_data() else {
        eprintln!("SKIP: shared data folder not found (set SEEKMATH_SHARED_DATA)");
        return;
    };
    let path = dir.join("benchmarks/math/test.jsonl");
    if !path.exists() {
        eprintln!("SKIP: {} missing", path.display());
        return;
    }
    let verifier = Verifier::new(Mode::Strict);
    let opts = Options::default();
    let (mut total, mut unparsed, mut failures) = (0, Vec::new(), Vec::new());
    for rec in records(&path) {
        let id = rec["id"].as_str().unwrap_or("?").to_string();
        let solution = rec["solution"].as_str().unwrap_or_default();
        let Some(gold) = math_reference(solution) else {
            failures.push(format!("{id}: no boxed answer in the solution"));
            continue;
        };
        total += 1;
        if !verifier.is_equivalent(&gold, &gold) {
            failures.push(format!("{id}: {gold:?} not equal to itself"));
        }
        match equivalent_parsed(&gold, &gold, &opts) {
            Some(true) => {}
            Some(false) => failures.push(format!("{id}: {gold:?} parsed but not equal to itself")),
            None => unparsed.push(format!("{id}: {gold:?}")),
        }
        let extracted = extract_answer(solution, AnswerKind::Expression);
        if !extracted.as_deref().is_some_and(|e| verifier.is_equivalent(e, &gold)) {
            failures.push(format!("{id}: extracted {extracted:?} != {gold:?}"));
        }
    }
    eprintln!(
        "MATH test: {total} answers, {} exceptions, {} not parsed (text comparison)",
        failures.len(),
        unparsed.len()
    );
    for f in &failures {
        eprintln!("  exception: {f}");
    }
    for u in unparsed.iter().take(40) {
        eprintln!("  unparsed: {u}");
    }
    assert!(failures.is_empty(), "{} self-consistency exceptions", failures.len());
    assert!(
        unparsed.len() * 100 <= total * 2,
        "more than 2% of MATH answers unparsed: {}",
        unparsed.len()
    );
}

#[test]
fn gsm8k_references_equal_themselves_and_their_solutions() {
    let Some(dir) = shared_data() else {
        eprintln!("SKIP: shared data folder not found (set SEEKMATH_SHARED_DATA)");
        return;
    };
    let path = dir.join("benchmarks/gsm8k/test.jsonl");
    if !path.exists() {
        eprintln!("SKIP: {} missing", path.display());
        return;
    }
    let verifier = Verifier::new(Mode::Strict);
    let opts = Options::default();
    let (mut total, mut failures, mut fallback_misses) = (0, Vec::new(), 0);
    for (i, rec) in records(&path).iter().enumerate() {
        let answer = rec["answer"].as_str().unwrap_or_default();
        let Some(gold) = gsm8k_reference(answer) else {
            failures.push(format!("record {}: no #### answer", i + 1));
            continue;
        };
        total += 1;
        if equivalent_parsed(&gold, &gold, &opts) != Some(true) {
            failures.push(format!("record {}: {gold:?} does not parse or equal itself", i + 1));
        }
        let extracted = extract_answer(answer, AnswerKind::Number);
        if !extracted.as_deref().is_some_and(|e| verifier.is_equivalent(e, &gold)) {
            failures.push(format!("record {}: extracted {extracted:?} != {gold:?}", i + 1));
        }
        // With the `####` line removed, DeepSeek's last-number fallback must still find the answer in the text.
        let body = answer.rsplit_once("####").map_or(answer, |(b, _)| b);
        let fallback = extract_answer(body, AnswerKind::Number);
        if !fallback.as_deref().is_some_and(|e| verifier.is_equivalent(e, &gold)) {
            fallback_misses += 1;
        }
    }
    eprintln!(
        "GSM8K test: {total} answers, {} exceptions; the last-number fallback (without ####) misses {fallback_misses}",
        failures.len()
    );
    for f in &failures {
        eprintln!("  exception: {f}");
    }
    assert!(failures.is_empty(), "{} self-consistency exceptions", failures.len());
}
