//! GGUF loading against llama.cpp's `gguf` package and transformers (CPU, f32): dequantisation of every supported
//! encoding bit for bit, tiny llama (GQA, permuted Q/K) and qwen2 (biases) files equal to transformers' GGUF
//! loading, a sentencepiece-style vocabulary, and the real SmolLM2-135M-Instruct Q4_1 file (tokenizer ids, chat
//! template, logits ≤ 1e-4, 64 greedy tokens). References come from `tests/py/gguf_reference.py`, run once.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use seekmath_model::gguf::{self, GgufFile};
use serde_json::Value;
use tch::Tensor;

fn smollm_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf")
}

/// The reference folder, built once per test binary (or reused from `SEEKMATH_GGUF_REFERENCE_DIR`, written by
/// `gguf_reference.py all`); None (tests skip) without transformers and gguf.
fn fixture() -> Option<&'static Path> {
    static PREBUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    let prebuilt = PREBUILT.get_or_init(|| std::env::var_os("SEEKMATH_GGUF_REFERENCE_DIR").map(PathBuf::from));
    if let Some(dir) = prebuilt {
        return Some(dir.as_path());
    }
    static FIXTURE: OnceLock<Option<tempfile::TempDir>> = OnceLock::new();
    FIXTURE
        .get_or_init(|| {
            let python = common::python_with_transformers()?;
            let has_gguf = Command::new(&python)
                .args(["-c", "import gguf"])
                .status()
                .is_ok_and(|s| s.success());
            if !has_gguf {
                eprintln!("SKIP: {} cannot import gguf (run scripts/setup.sh)", python.display());
                return None;
            }
            let dir = tempfile::tempdir().expect("tempdir");
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/gguf_reference.py");
            let out = Command::new(&python)
                .arg(&script)
                .arg("all")
                .arg(smollm_path())
                .arg(dir.path())
                .output()
                .expect("running python");
            assert!(
                out.status.success(),
                "gguf_reference.py failed:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            Some(dir)
        })
        .as_ref()
        .map(|d| d.path())
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn read_safetensors(path: &Path) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(path).unwrap().into_iter().collect()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn dequantisation_matches_gguf_py_bit_for_bit() {
    let Some(dir) = fixture() else { return };
    let file = GgufFile::open(&dir.join("quant.gguf")).unwrap();
    let expected = read_safetensors(&dir.join("quant_expected.safetensors"));
    assert_eq!(expected.len(), 11);
    for (name, want) in &expected {
        let got = gguf::raw_tensor(&file, name).unwrap();
        assert_eq!(got.size(), want.size(), "{name}");
        // Bitwise: compare as integers so that -0.0 vs 0.0 or any rounding difference fails.
        let same = got.view_dtype(tch::Kind::Int).equal(&want.view_dtype(tch::Kind::Int));
        assert!(same, "{name}: dequantised values differ from gguf-py");
    }
}

#[test]
fn tiny_models_equal_transformers_gguf_loading() {
    let Some(dir) = fixture() else { return };
    for case in ["llama_f32", "llama_q8", "qwen2_f16"] {
        let file = GgufFile::open(&dir.join(format!("{case}.gguf"))).unwrap();
        let want = read_safetensors(&dir.join(format!("{case}_state.safetensors")));
        let got: HashMap<String, Tensor> = gguf::hf_tensors(&file).unwrap().map(Result::unwrap).collect();
        let mut got_names: Vec<_> = got.keys().cloned().collect();
        let mut want_names: Vec<_> = want.keys().cloned().collect();
        got_names.sort();
        want_names.sort();
        assert_eq!(got_names, want_names, "{case}: tensor names");
        for (name, w) in &want {
            let g = &got[name];
            assert_eq!(g.size(), w.size(), "{case} {name}");
            let diff = (g - w).abs().max().double_value(&[]);
            assert!(diff == 0.0, "{case} {name}: max abs diff {diff}");
        }
        let config: seekmath_model::ModelConfig = serde_json::from_value(gguf::hf_config(&file).unwrap()).unwrap();
        assert_eq!(config.num_key_value_heads, Some(2), "{case}");
        assert_eq!(config.tie_word_embeddings, case != "llama_f32", "{case}");
        assert_eq!(
            config.model_type,
            if case.starts_with("qwen2") { "qwen2" } else { "llama" }
        );
    }
}

#[test]
fn sentencepiece_vocabulary_matches_transformers() {
    let Some(dir) = fixture() else { return };
    let file = GgufFile::open(&dir.join("spm.gguf")).unwrap();
    let spec = gguf::read_tokenizer(&file).unwrap().expect("vocabulary");
    let tokenizer = spec.build().unwrap();
    let reference = read_json(&dir.join("spm.json"));
    for (i, text) in reference["texts"].as_array().unwrap().iter().enumerate() {
        let text = text.as_str().unwrap();
        let got = tokenizer.encode(text, true).unwrap().get_ids().to_vec();
        assert_eq!(got, ids(&reference["ids"][i]), "{text:?}");
        let decoded = tokenizer.decode(&got, true).unwrap();
        assert_eq!(decoded, reference["decoded"][i].as_str().unwrap(), "{text:?}");
    }
}

#[test]
fn smollm_tokenizer_matches_transformers() {
    let Some(dir) = fixture() else { return };
    if !smollm_path().is_file() {
        eprintln!("SKIP: {} missing (run scripts/setup.sh)", smollm_path().display());
        return;
    }
    let reference = read_json(&dir.join("smollm.json"));
    let file = GgufFile::open(&smollm_path()).unwrap();
    let spec = gguf::read_tokenizer(&file).unwrap().expect("vocabulary");
    assert_eq!(spec.eos_token_ids, vec![2]);
    assert_eq!(spec.bos_token_id, Some(1));
    assert!(spec.chat_template.as_deref().unwrap().contains("<|im_start|>"));
    let tokenizer = spec.build().unwrap();
    for (i, text) in reference["texts"].as_array().unwrap().iter().enumerate() {
        let text = text.as_str().unwrap();
        let plain = tokenizer.encode(text, false).unwrap().get_ids().to_vec();
        assert_eq!(plain, ids(&reference["ids_plain"][i]), "{text:?}");
        let special = tokenizer.encode(text, true).unwrap().get_ids().to_vec();
        assert_eq!(
            special,
            ids(&reference["ids_special"][i]),
            "{text:?} with special tokens"
        );
        let decoded = tokenizer.decode(&plain, false).unwrap();
        assert_eq!(decoded, reference["decoded"][i].as_str().unwrap(), "{text:?} decoded");
    }
}

#[test]
fn smollm_config_and_permuted_weights_match_transformers() {
    let Some(dir) = fixture() else { return };
    if !smollm_path().is_file() {
        return;
    }
    let reference = read_json(&dir.join("smollm.json"));
    let file = GgufFile::open(&smollm_path()).unwrap();
    let config = gguf::hf_config(&file).unwrap();
    for key in [
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "vocab_size",
        "tie_word_embeddings",
        "max_position_embeddings",
        "head_dim",
    ] {
        assert_eq!(config[key], reference["config"][key], "config key {key}");
    }
    let rms = config["rms_norm_eps"].as_f64().unwrap();
    assert!((rms - reference["config"]["rms_norm_eps"].as_f64().unwrap()).abs() < 1e-12);
    let probes = reference["probes"].as_object().unwrap();
    for (name, tensor) in gguf::hf_tensors(&file).unwrap().map(Result::unwrap) {
        let Some(want) = probes.get(&name) else { continue };
        let got: Vec<Vec<f32>> = Vec::try_from(tensor.narrow(0, 0, 4).narrow(1, 0, 8).contiguous()).unwrap();
        for (g, w) in got
            .iter()
            .flatten()
            .zip(want.as_array().unwrap().iter().flat_map(|r| r.as_array().unwrap()))
        {
            assert_eq!(*g, w.as_f64().unwrap() as f32, "{name}");
        }
    }
}

fn load_smollm() -> seekmath_model::LoadedModel {
    seekmath_model::load(&smollm_path(), tch::Device::Cpu, tch::Kind::Float).unwrap()
}

fn prompts_of(reference: &Value) -> Vec<Vec<u32>> {
    reference["prompts"].as_array().unwrap().iter().map(ids).collect()
}

#[test]
fn smollm_logits_and_batched_greedy_match_transformers() {
    use seekmath_model::engine::{Engine, EngineOptions, FinishReason, SamplingParams};
    let Some(dir) = fixture() else { return };
    if !smollm_path().is_file() {
        return;
    }
    let reference = read_json(&dir.join("smollm.json"));
    let loaded = load_smollm();
    let tokenizer = loaded.tokenizer.as_ref().expect("GGUF tokenizer");
    let chat = tokenizer
        .apply_chat_template(&[seekmath_model::ChatMessage::new("user", "What is 7 * 8?")], true)
        .unwrap();
    assert_eq!(chat, reference["chat"].as_str().unwrap(), "chat template rendering");
    let prompts = prompts_of(&reference);
    let margin = reference["min_greedy_margin"].as_f64().unwrap();
    let mut worst = 0f64;
    tch::no_grad(|| {
        for (i, prompt) in prompts.iter().enumerate() {
            let input = Tensor::from_slice(&prompt.iter().map(|&t| t as i64).collect::<Vec<_>>()).unsqueeze(0);
            let logits = loaded.model.forward(&input, None);
            let t = logits.size()[1];
            let got = logits.get(0).narrow(0, t - 3, 3);
            let want: Vec<Vec<f32>> = serde_json::from_value(reference["logits_last3"][i].clone()).unwrap();
            let want = Tensor::from_slice2(&want);
            worst = worst.max((got - want).abs().max().double_value(&[]));
        }
    });
    eprintln!("SmolLM2 GGUF logits: max abs diff {worst:.2e} vs transformers; greedy margin {margin:.2e}");
    assert!(worst <= 1e-4, "logits differ from transformers by {worst}");

    // All prompts decoded together (different lengths, left-padded): identical to transformers' greedy.
    let engine = Engine::with_options(&loaded.model, tokenizer, EngineOptions::default());
    let params = SamplingParams {
        ignore_eos: true,
        ..SamplingParams::greedy(64)
    };
    let out = engine.generate(&prompts, &params).unwrap();
    for (i, c) in out.iter().enumerate() {
        assert_eq!(
            c.tokens,
            ids(&reference["greedy"][i]),
            "prompt {i}: greedy continuation"
        );
        assert_eq!(c.finish_reason, FinishReason::Length);
    }
    // With EOS honoured the chat answer ends at <|im_end|>, which is kept as the last token but not in the text.
    let out = engine.generate(&prompts[..1], &SamplingParams::greedy(64)).unwrap();
    let want = ids(&reference["greedy"][0]);
    let eos_at = want.iter().position(|&t| t == 2).expect("reference answer ends");
    assert_eq!(out[0].tokens, want[..=eos_at].to_vec());
    assert_eq!(out[0].finish_reason, FinishReason::Eos);
    assert_eq!(out[0].text, tokenizer.decode(&want[..eos_at], true).unwrap());
}
