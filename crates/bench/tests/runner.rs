//! End-to-end runner tests with scripted generators: outputs, scoring, maj@k / pass@k, PoT and tool-integrated
//! execution, and resuming a killed run.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use seekmath_bench::registry::{find, BenchmarkSelection};
use seekmath_bench::{
    run_benchmark, EvalOptions, GeneratedText, GenerationRequest, Generator, ItemRecord, PromptMode, Sandbox,
    SandboxConfig,
};
use seekmath_verify::Mode;

/// (prompt, sample index, request) → (completion text, finish reason).
type Respond = Box<dyn Fn(&str, usize, &GenerationRequest) -> (String, String)>;

/// Answers by looking at the question in the prompt; optionally fails after a number of calls (a "kill").
struct Scripted {
    respond: Respond,
    calls: usize,
    fail_after: Option<usize>,
    prompts_seen: Vec<String>,
}

impl Scripted {
    fn new(respond: impl Fn(&str, usize, &GenerationRequest) -> (String, String) + 'static) -> Self {
        Self {
            respond: Box::new(respond),
            calls: 0,
            fail_after: None,
            prompts_seen: Vec::new(),
        }
    }
}

impl Generator for Scripted {
    fn generate(&mut self, prompts: &[String], params: &GenerationRequest) -> Result<Vec<Vec<GeneratedText>>> {
        if self.fail_after.is_some_and(|n| self.calls >= n) {
            bail!("simulated crash");
        }
        self.calls += 1;
        self.prompts_seen.extend(prompts.iter().cloned());
        Ok(prompts
            .iter()
            .map(|p| {
                (0..params.n)
                    .map(|i| {
                        let (text, finish_reason) = (self.respond)(p, i, params);
                        GeneratedText {
                            num_tokens: text.split_whitespace().count(),
                            text,
                            finish_reason,
                        }
                    })
                    .collect()
            })
            .collect())
    }

    fn chat_prompt(&self, messages: &[(String, String)]) -> Result<String> {
        Ok(messages
            .iter()
            .map(|(r, c)| format!("<|{r}|>{c}\n"))
            .collect::<String>()
            + "<|assistant|>")
    }
}

/// A small GSM8K-format file with answers 10, 11, ... and our own two-exemplar prompt sets.
fn fixture(dir: &Path, n: usize) -> (BenchmarkSelection, PathBuf) {
    let data = dir.join("gsm.jsonl");
    let lines: Vec<String> = (0..n)
        .map(|i| serde_json::json!({"question": format!("Problem {i}: what is {i} + 10?"), "answer": format!("{i} + 10 = {}\n#### {}", i + 10, i + 10)}).to_string())
        .collect();
    std::fs::write(&data, lines.join("\n") + "\n").unwrap();
    let fewshot = dir.join("fewshot");
    std::fs::create_dir_all(&fewshot).unwrap();
    let cot = serde_json::json!({
        "class": "TestCoT", "separator": "\n\n\n",
        "few_shot_prompt": "Q: 1 + 1?\nA: 1 + 1 = 2. The answer is 2.\n\n\nQ: 2 + 2?\nA: 2 + 2 = 4. The answer is 4.",
        "exemplars": [{"text": "Q: 1 + 1?\nA: 1 + 1 = 2. The answer is 2."}, {"text": "Q: 2 + 2?\nA: 2 + 2 = 4. The answer is 4."}],
        "format_template": "{few_shot_prompt}\n\n\nQ: {task_input}\nA: {task_output}", "stop_words": ["\nQ:"]
    });
    std::fs::write(fewshot.join("cot_gsm_8_shot.json"), cot.to_string()).unwrap();
    let pal = serde_json::json!({
        "class": "TestPAL", "separator": "\n\n",
        "few_shot_prompt": "Q: 1 + 1?\n\n# solution in Python:\n\n\ndef solution():\n    return 1 + 1",
        "exemplars": [{"text": "Q: 1 + 1?\n\n# solution in Python:\n\n\ndef solution():\n    return 1 + 1"}],
        "format_template": "{few_shot_prompt}\n\n\nQ: {task_input}\n\n# solution in Python:", "stop_words": ["\nQ:"]
    });
    std::fs::write(fewshot.join("pal_gsm_8_shot.json"), pal.to_string()).unwrap();
    (
        BenchmarkSelection {
            spec: find("gsm8k").unwrap(),
            path: data,
        },
        fewshot,
    )
}

fn options(fewshot: &Path, mode: PromptMode, samples: usize) -> EvalOptions {
    EvalOptions {
        mode,
        shots: if mode == PromptMode::Tir { Some(0) } else { None },
        samples,
        temperature: if samples > 1 { 0.7 } else { 0.0 },
        top_p: 1.0,
        max_new_tokens: 64,
        seed: 7,
        limit: None,
        batch_size: 2,
        verify_mode: Mode::Strict,
        tir_rounds: 2,
        fewshot_dir: fewshot.to_path_buf(),
        model: "scripted".into(),
        progress: false,
    }
}

/// The problem number in the last `Problem i:` of a prompt.
fn problem_number(prompt: &str) -> usize {
    let at = prompt.rfind("Problem ").unwrap() + "Problem ".len();
    prompt[at..].split(':').next().unwrap().parse().unwrap()
}

fn read_items(dir: &Path) -> Vec<ItemRecord> {
    std::fs::read_to_string(dir.join("gsm8k/items.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn greedy_run_writes_items_summary_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let (selection, fewshot) = fixture(dir.path(), 5);
    // Right on even problems, wrong on odd ones, and no answer at all for problem 3.
    let mut generator = Scripted::new(|prompt, _, req| {
        assert_eq!(req.temperature, 0.0);
        assert_eq!(req.stop, vec!["\nQ:".to_string()]);
        let i = problem_number(prompt);
        let text = match i {
            3 => " I do not know".to_string(),
            i if i % 2 == 0 => format!(" {i} + 10 = {}. The answer is {}.", i + 10, i + 10),
            i => format!(" The answer is {}.", i + 11),
        };
        (text, "stop".into())
    });
    let out = dir.path().join("out");
    let opts = options(&fewshot, PromptMode::Cot, 1);
    let summary = run_benchmark(&mut generator, &selection, &opts, None, &out).unwrap();
    assert_eq!(summary.n_items, 5);
    assert!((summary.accuracy - 60.0).abs() < 1e-9, "{}", summary.accuracy);
    assert!((summary.invalid_rate - 20.0).abs() < 1e-9);
    assert_eq!(generator.calls, 3, "5 items in batches of 2");
    let items = read_items(&out);
    assert_eq!(items.len(), 5);
    assert!(items[0].prompt.starts_with("Q: 1 + 1?") && items[0].prompt.ends_with("Problem 0: what is 0 + 10?\nA:"));
    assert_eq!(items[3].prediction, None);
    assert_eq!(items[1].prediction.as_deref(), Some("12"));
    assert!(!items[1].correct && items[2].correct);
    assert!(out.join("gsm8k/summary.json").exists());
    let md = seekmath_bench::markdown("scripted", &[summary]);
    assert!(md.contains("| GSM8K | 2-shot few-shot CoT"), "{md}");
    assert!(md.contains("64.2%"), "paper number next to ours: {md}");
}

#[test]
fn killed_run_resumes_without_redoing_items() {
    let dir = tempfile::tempdir().unwrap();
    let (selection, fewshot) = fixture(dir.path(), 7);
    let respond = |prompt: &str, _: usize, _: &GenerationRequest| {
        (
            format!(" The answer is {}.", problem_number(prompt) + 10),
            "eos".to_string(),
        )
    };
    let out = dir.path().join("out");
    let opts = options(&fewshot, PromptMode::Cot, 1);
    let mut crashing = Scripted::new(respond);
    crashing.fail_after = Some(2);
    assert!(run_benchmark(&mut crashing, &selection, &opts, None, &out).is_err());
    assert_eq!(read_items(&out).len(), 4);
    // A torn half-line, as if the process died mid-write.
    let items_path = out.join("gsm8k/items.jsonl");
    let mut text = std::fs::read_to_string(&items_path).unwrap();
    text.push_str("{\"index\": 4, \"id\": \"li");
    std::fs::write(&items_path, text).unwrap();

    let mut generator = Scripted::new(respond);
    let summary = run_benchmark(&mut generator, &selection, &opts, None, &out).unwrap();
    assert_eq!(summary.n_items, 7);
    assert_eq!(summary.accuracy, 100.0);
    let asked: Vec<usize> = generator.prompts_seen.iter().map(|p| problem_number(p)).collect();
    assert_eq!(asked, vec![4, 5, 6]);
    let items = read_items(&out);
    assert_eq!(
        items.iter().map(|r| r.index).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4, 5, 6]
    );

    // A smaller --limit over the same directory reports only the items inside it.
    let mut fewer = opts.clone();
    fewer.limit = Some(3);
    let summary = run_benchmark(&mut generator, &selection, &fewer, None, &out).unwrap();
    assert_eq!(summary.n_items, 3);

    // Different settings in the same directory are refused rather than mixed.
    let mut other = opts.clone();
    other.max_new_tokens = 99;
    let err = run_benchmark(&mut generator, &selection, &other, None, &out).unwrap_err();
    assert!(err.to_string().contains("different settings"), "{err}");
}

#[test]
fn sampling_reports_maj_and_pass_at_k() {
    let dir = tempfile::tempdir().unwrap();
    let (selection, fewshot) = fixture(dir.path(), 2);
    // Problem 0: samples say [wrong, right, right, none, wrong'] -> majority right, 2 of 5 correct.
    // Problem 1: [right, wrong, wrong, none, none] -> majority wrong.
    let mut generator = Scripted::new(|prompt, sample, req| {
        assert!(req.temperature > 0.0 && req.n == 5);
        let i = problem_number(prompt);
        let gold = i + 10;
        let answer = match (i, sample) {
            (0, 1) | (0, 2) | (1, 0) => Some(gold),
            (0, 0) | (1, 1) | (1, 2) => Some(gold + 1),
            (0, 4) => Some(gold + 2),
            _ => None,
        };
        (
            answer
                .map(|a| format!(" The answer is {a}."))
                .unwrap_or_else(|| " hmm".into()),
            "stop".into(),
        )
    });
    let out = dir.path().join("out");
    let summary = run_benchmark(
        &mut generator,
        &selection,
        &options(&fewshot, PromptMode::Cot, 5),
        None,
        &out,
    )
    .unwrap();
    assert_eq!(summary.maj_at_k, Some(50.0));
    assert!((summary.pass_at_k["pass@1"] - 30.0).abs() < 1e-9);
    // pass@5 with 5 samples: any correct sample counts.
    assert!((summary.pass_at_k["pass@5"] - 100.0).abs() < 1e-9);
    let items = read_items(&out);
    assert_eq!(items[0].prediction.as_deref(), Some("10"));
    assert_eq!(items[1].num_correct, 1);
}

fn test_sandbox() -> Option<Sandbox> {
    let config = SandboxConfig::default();
    match Sandbox::new(config) {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!("skipping: no sandbox ({e:#})");
            None
        }
    }
}

#[test]
fn program_of_thought_runs_the_program() {
    let Some(sandbox) = test_sandbox() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (selection, fewshot) = fixture(dir.path(), 3);
    let mut generator = Scripted::new(|prompt, _, _| {
        let i = problem_number(prompt);
        let body = match i {
            0 => "    a = 0\n    return a + 10".to_string(),
            1 => "    return 1 / 0".to_string(),
            _ => "    x = 2\n    return x + 10".to_string(),
        };
        (format!("\n\n\ndef solution():\n{body}\n"), "stop".into())
    });
    let out = dir.path().join("out");
    let summary = run_benchmark(
        &mut generator,
        &selection,
        &options(&fewshot, PromptMode::Pot, 1),
        Some(&sandbox),
        &out,
    )
    .unwrap();
    let items = read_items(&out);
    assert!(items[0].correct, "{:?}", items[0]);
    assert!(
        !items[1].correct && items[1].prediction.is_none(),
        "a crashing program has no answer"
    );
    assert!(items[1].samples[0].executions[0].stderr.contains("ZeroDivisionError"));
    assert!(items[2].correct);
    assert!((summary.accuracy - 200.0 / 3.0).abs() < 1e-9);
}

#[test]
fn tool_integrated_feeds_output_back() {
    let Some(sandbox) = test_sandbox() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (selection, fewshot) = fixture(dir.path(), 2);
    let mut generator = Scripted::new(|prompt, _, req| {
        assert!(req.stop.contains(&"```output".to_string()));
        assert!(prompt.starts_with("<|user|>Problem"), "chat template applied: {prompt}");
        let i = problem_number(prompt);
        match prompt.rfind("```output\n") {
            // Second round: read the fed-back output and box it.
            Some(at) => {
                let value = prompt[at + 10..].lines().next().unwrap().to_string();
                (format!("So the result is $\\boxed{{{value}}}$."), "eos".into())
            }
            None => (
                format!("Let me compute.\n```python\nx = {i}\nprint(x + 10)\n```"),
                "stop".into(),
            ),
        }
    });
    let out = dir.path().join("out");
    let summary = run_benchmark(
        &mut generator,
        &selection,
        &options(&fewshot, PromptMode::Tir, 1),
        Some(&sandbox),
        &out,
    )
    .unwrap();
    assert_eq!(summary.accuracy, 100.0);
    let items = read_items(&out);
    let s = &items[1].samples[0];
    assert_eq!(s.executions.len(), 1);
    assert!(s.completion.contains("```output\n11\n```"), "{}", s.completion);
    assert_eq!(s.extracted.as_deref(), Some("11"));
}
