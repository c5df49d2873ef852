//! Scoring sanity over the real benchmark files: a completion that states the gold answer in the benchmark's
//! exemplar style must score 100%, and one that states a known-wrong answer 0%. This exercises loading,
//! extraction and the verifier together on every record.

use std::path::PathBuf;

use seekmath_bench::registry::{Language, BENCHMARKS};
use seekmath_bench::Scorer;
use seekmath_verify::extract::AnswerKind;
use seekmath_verify::Mode;

fn data_root() -> Option<PathBuf> {
    let root = std::env::var_os("SEEKMATH_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    let benchmarks = root.join("benchmarks");
    if benchmarks.is_dir() {
        Some(benchmarks)
    } else {
        eprintln!("skipping: shared benchmark data not found at {}", benchmarks.display());
        None
    }
}

/// A completion that ends the way the benchmark's few-shot exemplars end, stating `answer`.
fn completion(kind: AnswerKind, language: Language, answer: &str) -> String {
    match (kind, language) {
        (AnswerKind::Number, Language::En) => format!("We add them up. The answer is {answer}."),
        (AnswerKind::Number, Language::Zh) => format!("总数=1+2。所以答案是：{answer}。"),
        (AnswerKind::Expression, _) => {
            format!("Therefore it is $\\boxed{{{answer}}}$.\nFinal Answer: The final answer is ${answer}$. I hope it is correct.")
        }
        (AnswerKind::Choice, Language::En) => {
            format!("So it is the right one.\nFinal Answer: The final answer is ({answer}). I hope it is correct.")
        }
        (AnswerKind::Choice, Language::Zh) => format!("综上所述。\n答案是 {answer}"),
        (AnswerKind::MultiBlank, _) => {
            let blanks: Vec<String> = answer.split(';').map(|b| format!("${b}$")).collect();
            format!("解得。\n答案是 {}", blanks.join(";"))
        }
    }
}

/// An answer that is certainly not the gold one.
fn wrong(kind: AnswerKind, gold: &str) -> String {
    match kind {
        AnswerKind::Number => match gold.parse::<f64>() {
            Ok(v) => format!("{}", v + (v.abs() * 0.5).max(1.0)),
            Err(_) => format!("({gold})+1"),
        },
        AnswerKind::Expression => match gold.parse::<f64>() {
            Ok(v) => format!("{}", v + (v.abs() * 0.5).max(1.0)),
            Err(_) => format!("({gold})+1"),
        },
        AnswerKind::Choice => {
            if gold.len() > 1 {
                gold[..1].to_string() // a strict subset of a multi-answer key
            } else {
                let c = gold.as_bytes()[0];
                (((c - b'A' + 1) % 4 + b'A') as char).to_string()
            }
        }
        AnswerKind::MultiBlank => {
            let mut blanks: Vec<String> = gold.split(';').map(String::from).collect();
            blanks[0] = wrong(AnswerKind::Expression, &blanks[0]);
            blanks.join(";")
        }
    }
}

#[test]
fn gold_scores_100_and_wrong_scores_0_on_every_benchmark() {
    let Some(root) = data_root() else { return };
    let mut failures = Vec::new();
    for spec in BENCHMARKS {
        let path = spec.default_path(&root);
        let loaded = seekmath_bench::load(spec, &path).unwrap();
        assert!(loaded.skipped.is_empty(), "{}: {:?}", spec.name, loaded.skipped);
        assert!(loaded.problems.iter().all(|p| !p.gold.trim().is_empty()));
        assert!(!loaded.problems.is_empty(), "{}", spec.name);
        let scorer = Scorer::new(spec.answer_kind, Mode::Strict);
        let (mut right, mut wrong_correct) = (0usize, 0usize);
        for p in &loaded.problems {
            let good = completion(spec.answer_kind, spec.language, &p.gold);
            match scorer.extract(&good) {
                Some(pred) if scorer.is_correct(&pred, &p.gold) => right += 1,
                other => failures.push(format!(
                    "{} {}: gold {:?} extracted {:?}",
                    spec.name, p.id, p.gold, other
                )),
            }
            let bad = completion(spec.answer_kind, spec.language, &wrong(spec.answer_kind, &p.gold));
            if scorer
                .extract(&bad)
                .is_some_and(|pred| scorer.is_correct(&pred, &p.gold))
            {
                wrong_correct += 1;
                failures.push(format!(
                    "{} {}: wrong answer for gold {:?} scored correct",
                    spec.name, p.id, p.gold
                ));
            }
        }
        let n = loaded.problems.len();
        eprintln!(
            "{:>18}: n={n:5} gold {:.2}%  wrong {:.2}%",
            spec.name,
            100.0 * right as f64 / n as f64,
            100.0 * wrong_correct as f64 / n as f64
        );
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.iter().take(40).cloned().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn mgsm_tsv_and_deepseek_jsonl_agree() {
    let Some(root) = data_root() else { return };
    let spec = seekmath_bench::find("mgsm_zh").unwrap();
    let jsonl = seekmath_bench::load(spec, &root.join("mgsm_zh/mgsm_zh.deepseek.jsonl")).unwrap();
    let tsv = seekmath_bench::load(spec, &root.join("mgsm_zh/mgsm_zh.tsv")).unwrap();
    assert!(tsv.skipped.is_empty(), "{:?}", tsv.skipped);
    assert_eq!(jsonl.problems.len(), 250);
    let golds = |l: &seekmath_bench::LoadedBenchmark| l.problems.iter().map(|p| p.gold.clone()).collect::<Vec<_>>();
    assert_eq!(golds(&jsonl), golds(&tsv));
}

#[test]
fn every_benchmark_builds_its_published_prompt() {
    let Some(root) = data_root() else { return };
    struct NoModel;
    impl seekmath_bench::Generator for NoModel {
        fn generate(
            &mut self,
            _: &[String],
            _: &seekmath_bench::GenerationRequest,
        ) -> anyhow::Result<Vec<Vec<seekmath_bench::GeneratedText>>> {
            unreachable!()
        }
        fn chat_prompt(&self, m: &[(String, String)]) -> anyhow::Result<String> {
            Ok(format!("<user>{}<assistant>", m[0].1))
        }
    }
    for spec in BENCHMARKS {
        let problems = seekmath_bench::load(spec, &spec.default_path(&root)).unwrap().problems;
        let builder =
            seekmath_bench::PromptBuilder::new(spec, seekmath_bench::PromptMode::Cot, None, &root.join("fewshot"))
                .unwrap();
        let prompt = builder.build(&problems[0], &NoModel).unwrap();
        assert!(prompt.contains(problems[0].question.trim()), "{}", spec.name);
        if spec.cot_prompt.is_some() {
            assert!(!builder.stop_words().is_empty(), "{}", spec.name);
            assert!(prompt.len() > 1000, "{}: few-shot prompt too short", spec.name);
        }
    }
    // The GSM8K prompt is byte-for-byte DeepSeek-Math's: exemplars, three newlines, "Q: ..\nA:".
    let gsm = seekmath_bench::find("gsm8k").unwrap();
    let problems = seekmath_bench::load(gsm, &gsm.default_path(&root)).unwrap().problems;
    let builder =
        seekmath_bench::PromptBuilder::new(gsm, seekmath_bench::PromptMode::Cot, None, &root.join("fewshot")).unwrap();
    let prompt = builder.build(&problems[0], &NoModel).unwrap();
    assert!(prompt.starts_with("Q: There are 15 trees in the grove."));
    assert!(prompt.ends_with(&format!("The answer is 8.\n\n\nQ: {}\nA:", problems[0].question)));
    assert_eq!(builder.shots(), 8);
}

/// The self-written demo slice the README's main job evaluates: loads cleanly and builds an 8-shot prompt.
#[test]
fn shipped_demo_slice_is_well_formed() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/demo");
    let spec = seekmath_bench::find("gsm8k").unwrap();
    let loaded = seekmath_bench::load(spec, &spec.default_path(&root)).unwrap();
    assert!(loaded.skipped.is_empty());
    assert_eq!(loaded.problems.len(), 12);
    let builder =
        seekmath_bench::PromptBuilder::new(spec, seekmath_bench::PromptMode::Cot, None, &root.join("fewshot")).unwrap();
    assert_eq!(builder.shots(), 8);
    let scorer = Scorer::new(AnswerKind::Number, Mode::Strict);
    for p in &loaded.problems {
        assert!(scorer.is_correct(&format!("{}.0", p.gold), &p.gold));
    }
}
