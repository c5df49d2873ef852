//! Parity with Hugging Face transformers on CPU in f32: tiny random Llama / Qwen2 / Mistral models (with every
//! RoPE scaling variant) saved by transformers, tokenizers saved by transformers, and seekmath-saved models loaded
//! back by transformers. The reference outputs come from `tests/py/hf_reference.py`, run once per test binary.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use seekmath_model::{load, save_pretrained, ChatMessage, LoadedModel, ModelConfig, Tokenizer};
use serde::Deserialize;
use tch::{Device, Kind, Tensor};

const TOLERANCE: f64 = 1e-4;
const CASES: [&str; 8] = [
    "llama",
    "qwen2",
    "mistral_head_dim",
    "llama_bias",
    "llama3_rope",
    "linear_rope",
    "dynamic_rope",
    "yarn_rope",
];

/// The reference folder, built once; None when transformers is unavailable (tests skip).
fn fixture() -> Option<&'static Path> {
    static FIXTURE: OnceLock<Option<(tempfile::TempDir, PathBuf)>> = OnceLock::new();
    FIXTURE
        .get_or_init(|| {
            let python = common::python_with_transformers()?;
            let dir = tempfile::tempdir().expect("tempdir");
            let out = dir.path().to_str().unwrap().to_string();
            let gguf =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf");
            let mut args = vec![
                "make".to_string(),
                out,
                "--gguf".into(),
                gguf.to_string_lossy().into_owned(),
            ];
            if let Some(data) = common::shared_data() {
                let neo = data.join("models/tokenizers/gpt-neo-test-tokenizer.json");
                args.extend(["--neo-tokenizer".into(), neo.to_string_lossy().into_owned()]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            common::run_reference(&python, &args);
            Some((dir, python))
        })
        .as_ref()
        .map(|(dir, _)| dir.path())
}

fn python() -> PathBuf {
    common::python_with_transformers().expect("python checked by fixture()")
}

#[derive(Deserialize)]
struct Expected {
    prompts: Vec<Vec<i64>>,
    logits: Vec<Vec<Vec<f64>>>,
    greedy: Vec<Vec<i64>>,
    min_greedy_margin: f64,
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> T {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn forward_one(model: &LoadedModel, prompt: &[i64]) -> Tensor {
    let ids = Tensor::from_slice(prompt).unsqueeze(0);
    tch::no_grad(|| model.model.forward(&ids, None)).get(0)
}

#[test]
fn logits_and_greedy_match_transformers() {
    let Some(dir) = fixture() else { return };
    for case in CASES {
        let folder = dir.join(case);
        let expected: Expected = read_json(&folder.join("expected.json"));
        let model = load(&folder, Device::Cpu, Kind::Float).unwrap_or_else(|e| panic!("{case}: {e:#}"));
        let mut worst = 0.0f64;
        for (prompt, logits) in expected.prompts.iter().zip(&expected.logits) {
            worst = worst.max(common::max_abs_diff(&forward_one(&model, prompt), logits));
        }
        let greedy: Vec<Vec<i64>> = expected
            .prompts
            .iter()
            .map(|p| common::greedy(&model.model, p, 64))
            .collect();
        let batched = common::greedy_batch(&model.model, &expected.prompts, 64);
        println!(
            "{case}: max |Δlogit| = {worst:.2e}, HF min greedy margin {:.2e}",
            expected.min_greedy_margin
        );
        assert!(worst <= TOLERANCE, "{case}: logits differ by {worst}");
        assert_eq!(greedy, expected.greedy, "{case}: greedy continuation differs");
        // Dynamic NTK rescales by the longest position in the *batch* (in transformers too), so a batch of
        // different lengths legitimately differs from one-prompt-at-a-time decoding.
        if case != "dynamic_rope" {
            assert_eq!(
                batched, expected.greedy,
                "{case}: batched (left-padded) greedy continuation differs"
            );
        }
    }
}

/// Left- and right-padded batches through `forward` with a mask give the unpadded logits at real tokens.
#[test]
fn padded_batches_match_unpadded_reference() {
    let Some(dir) = fixture() else { return };
    for case in ["llama", "qwen2", "yarn_rope"] {
        let folder = dir.join(case);
        let expected: Expected = read_json(&folder.join("expected.json"));
        let model = load(&folder, Device::Cpu, Kind::Float).unwrap();
        let width = expected.prompts.iter().map(Vec::len).max().unwrap();
        for left in [true, false] {
            let mut ids = Vec::new();
            let mut mask = Vec::new();
            for p in &expected.prompts {
                let pad = width - p.len();
                let (row, m): (Vec<i64>, Vec<i64>) = if left {
                    (
                        std::iter::repeat_n(0, pad).chain(p.iter().copied()).collect(),
                        [vec![0; pad], vec![1; p.len()]].concat(),
                    )
                } else {
                    (
                        p.iter().copied().chain(std::iter::repeat_n(0, pad)).collect(),
                        [vec![1; p.len()], vec![0; pad]].concat(),
                    )
                };
                ids.extend(row);
                mask.extend(m);
            }
            let b = expected.prompts.len() as i64;
            let ids = Tensor::from_slice(&ids).view([b, width as i64]);
            let mask = Tensor::from_slice(&mask).view([b, width as i64]);
            let logits = tch::no_grad(|| model.model.forward(&ids, Some(&mask)));
            for (i, (p, exp)) in expected.prompts.iter().zip(&expected.logits).enumerate() {
                let start = if left { (width - p.len()) as i64 } else { 0 };
                let real = logits.get(i as i64).narrow(0, start, p.len() as i64);
                let diff = common::max_abs_diff(&real, exp);
                assert!(
                    diff <= TOLERANCE,
                    "{case} left={left} prompt {i}: logits differ by {diff}"
                );
            }
        }
    }
}

#[derive(Deserialize)]
struct ExpectedTokenizer {
    texts: Vec<String>,
    ids: std::collections::HashMap<String, Vec<Vec<u32>>>,
    decoded: std::collections::HashMap<String, Vec<String>>,
    conversations: Vec<Vec<ChatMessage>>,
    chats: std::collections::HashMap<String, Vec<String>>,
    bos_token_id: Option<u32>,
    eos_token_id: Option<u32>,
    pad_token_id: Option<u32>,
}

#[test]
fn tokenizers_and_chat_templates_match_transformers() {
    let Some(dir) = fixture() else { return };
    let mut checked = 0;
    for name in ["tok_smollm2", "tok_neo", "tok_qwen2"] {
        let folder = dir.join(name);
        if !folder.is_dir() {
            eprintln!("{name}: not produced (source missing), skipped");
            continue;
        }
        let exp: ExpectedTokenizer = read_json(&folder.join("expected_tokenizer.json"));
        let tok = Tokenizer::from_hf_folder(&folder).unwrap();
        for (special, want) in &exp.ids {
            let add = special == "True";
            for (text, ids) in exp.texts.iter().zip(want) {
                assert_eq!(
                    &tok.encode(text, add).unwrap(),
                    ids,
                    "{name}: ids of {text:?} (special={add})"
                );
            }
        }
        for (skip, want) in &exp.decoded {
            let skip = skip == "True";
            for (ids, text) in exp.ids["True"].iter().zip(want) {
                assert_eq!(
                    &tok.decode(ids, skip).unwrap(),
                    text,
                    "{name}: decode (skip_special={skip})"
                );
            }
        }
        assert_eq!(tok.bos_token_id(), exp.bos_token_id, "{name}: bos");
        assert_eq!(tok.eos_token_ids().first().copied(), exp.eos_token_id, "{name}: eos");
        assert_eq!(tok.pad_token_id(), exp.pad_token_id, "{name}: pad");
        for (gen, want) in &exp.chats {
            let gen = gen == "True";
            for (conv, text) in exp.conversations.iter().zip(want) {
                assert_eq!(
                    &tok.apply_chat_template(conv, gen).unwrap(),
                    text,
                    "{name}: chat (generation={gen})"
                );
            }
        }
        checked += 1;
    }
    assert!(checked > 0, "no tokenizer fixture was produced");
}

#[derive(Deserialize)]
struct HfLogits {
    logits: Vec<Vec<Vec<f64>>>,
    tokenizer_ids: Option<Vec<Vec<u32>>>,
}

/// Models built and saved by seekmath (untied Llama, tied Qwen2 with a tokenizer) load in transformers with the
/// same logits and tokenizer ids.
#[test]
fn seekmath_saved_models_load_in_transformers() {
    let Some(dir) = fixture() else { return };
    let out = tempfile::tempdir().unwrap();
    let prompts: Vec<Vec<i64>> = vec![vec![5, 17, 99, 3], vec![250, 1, 2, 3, 4, 5, 6, 7, 8]];
    let mut llama = ModelConfig::llama(256, 48, 80, 2, 6, 2, 128, 1e-5);
    llama.bos_token_id = Some(1);
    let mut qwen: ModelConfig = serde_json::from_value(serde_json::json!({
        "model_type": "qwen2", "vocab_size": 50280, "hidden_size": 32, "intermediate_size": 64,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "tie_word_embeddings": true,
        "rope_theta": 1000000.0, "rms_norm_eps": 1e-6, "max_position_embeddings": 512}))
    .unwrap();
    qwen.eos_token_id = Some(seekmath_model::TokenIds::Many(vec![0, 2]));
    // transformers >= 5 reads every `qwen2` folder with Qwen2Tokenizer, so the qwen2 model carries a Qwen2-style one.
    let tok_dir = dir.join("tok_qwen2");
    let mut dirs = Vec::new();
    let mut ours = Vec::new();
    for (name, cfg, seed) in [("llama", llama, 7), ("qwen2", qwen, 8)] {
        let mut model = LoadedModel::random(cfg, seed, Device::Cpu, Kind::Float).unwrap();
        // Larger weights than the 0.02 init so that logits are far from uniform.
        tch::no_grad(|| {
            for (n, mut v) in model.vs.variables() {
                if !n.contains("norm") {
                    let _ = v.normal_(0.0, 0.3);
                }
            }
        });
        if name == "qwen2" && tok_dir.is_dir() {
            model.tokenizer = Some(Tokenizer::from_hf_folder(&tok_dir).unwrap());
        }
        let path = out.path().join(name);
        save_pretrained(&model, &path).unwrap();
        std::fs::write(path.join("prompts.json"), serde_json::to_string(&prompts).unwrap()).unwrap();
        // Our own loader must read it back identically too.
        let reloaded = load(&path, Device::Cpu, Kind::Float).unwrap();
        for p in &prompts {
            let diff = (forward_one(&model, p) - forward_one(&reloaded, p))
                .abs()
                .max()
                .double_value(&[]);
            assert_eq!(diff, 0.0, "{name}: seekmath reload changed logits");
        }
        ours.push((
            name,
            prompts.iter().map(|p| forward_one(&model, p)).collect::<Vec<_>>(),
            model,
        ));
        dirs.push(path);
    }
    let mut args = vec!["logits".to_string()];
    args.extend(dirs.iter().map(|d| d.to_string_lossy().into_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    common::run_reference(&python(), &args);
    for ((name, logits, model), path) in ours.iter().zip(&dirs) {
        let hf: HfLogits = read_json(&path.join("hf_logits.json"));
        for (ours, theirs) in logits.iter().zip(&hf.logits) {
            let diff = common::max_abs_diff(ours, theirs);
            println!("round trip {name}: max |Δlogit| = {diff:.2e}");
            assert!(diff <= TOLERANCE, "{name}: transformers logits differ by {diff}");
        }
        if let (Some(ids), Some(tok)) = (&hf.tokenizer_ids, &model.tokenizer) {
            let exp: ExpectedTokenizer = read_json(&tok_dir.join("expected_tokenizer.json"));
            for (text, want) in exp.texts.iter().zip(ids) {
                assert_eq!(
                    &tok.encode(text, true).unwrap(),
                    want,
                    "{name}: saved tokenizer ids of {text:?}"
                );
            }
        }
    }
}
