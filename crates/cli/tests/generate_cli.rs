//! End-to-end `seekmath generate` on the real small model (SmolLM2-135M-Instruct GGUF): a single chat prompt to
//! stdout, and a JSONL batch with n samples (records, order, determinism, malformed lines skipped).

mod common;

use common::seekmath_stdout as seekmath;

#[test]
fn single_chat_prompt_prints_the_answer() {
    let Some(model) = common::smollm2() else { return };
    let model = model.to_str().unwrap();
    let text = seekmath(&[
        "generate",
        "--model",
        model,
        "--prompt",
        "What is 7 * 8?",
        "--chat",
        "--max-new-tokens",
        "24",
    ]);
    assert!(!text.trim().is_empty());
    assert!(!text.contains("<|im_end|>"), "special tokens are not printed: {text:?}");
}

#[test]
fn jsonl_batch_with_samples_is_deterministic() {
    let Some(model) = common::smollm2() else { return };
    let dir = tempfile::tempdir().unwrap();
    let prompts = dir.path().join("prompts.jsonl");
    std::fs::write(
        &prompts,
        "{\"prompt\": \"The capital of France is\"}\nnot json\n{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}]}\n",
    )
    .unwrap();
    let args = [
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--prompts",
        prompts.to_str().unwrap(),
        "--n",
        "2",
        "--temperature",
        "0.8",
        "--top-p",
        "0.9",
        "--seed",
        "3",
        "--max-new-tokens",
        "8",
    ];
    let first = seekmath(&args);
    assert_eq!(first, seekmath(&args), "same seed, same output");
    let records: Vec<serde_json::Value> = first.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(
        records.len(),
        4,
        "2 valid prompts x n=2 (the malformed line is skipped)"
    );
    for (k, r) in records.iter().enumerate() {
        assert_eq!(r["prompt_index"], k / 2);
        assert_eq!(r["sample_index"], k % 2);
        let tokens = r["tokens"].as_array().unwrap();
        assert_eq!(tokens.len(), r["logprobs"].as_array().unwrap().len());
        assert!(tokens.len() <= 8);
        assert!(["eos", "stop", "length"].contains(&r["finish_reason"].as_str().unwrap()));
        assert!(r["logprobs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x.as_f64().unwrap() <= 0.0));
    }
}
