//! The sampling engine on CPU: batch independence (a sample depends only on seed, prompt and sample index),
//! log-probs equal to teacher-forced log-softmax, n samples sharing a prefill, stop strings, EOS and max tokens.
//! A tiny random model with SmolLM2's tokenizer (read from the GGUF metadata) keeps it fast.

use std::path::Path;

use seekmath_model::engine::{Engine, EngineOptions, FinishReason, SamplingParams};
use seekmath_model::gguf::{self, GgufFile};
use seekmath_model::{LoadedModel, ModelConfig, Tokenizer};
use tch::{Device, Kind, Tensor};

fn tokenizer() -> Option<Tokenizer> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf");
    if !path.is_file() {
        eprintln!("SKIP: {} missing (run scripts/setup.sh)", path.display());
        return None;
    }
    let file = GgufFile::open(&path).unwrap();
    Some(gguf::to_tokenizer(&gguf::read_tokenizer(&file).unwrap().unwrap()).unwrap())
}

fn tiny_model() -> LoadedModel {
    let config: ModelConfig = serde_json::from_value(serde_json::json!({
        "model_type": "llama", "vocab_size": 49152, "hidden_size": 32, "intermediate_size": 64,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 256,
        "rms_norm_eps": 1e-5, "tie_word_embeddings": true, "initializer_range": 0.5
    }))
    .unwrap();
    LoadedModel::random(config, 3, Device::Cpu, Kind::Float).unwrap()
}

fn prompts(tokenizer: &Tokenizer) -> Vec<Vec<u32>> {
    ["Hello there", "The derivative of x^2 is", "1 + 1 ="]
        .iter()
        .map(|p| tokenizer.encode(p, true).unwrap())
        .collect()
}

fn sampling(n: usize, seed: u64) -> SamplingParams {
    SamplingParams {
        temperature: 0.9,
        top_p: 0.95,
        top_k: 50,
        seed,
        n,
        max_new_tokens: 12,
        ..Default::default()
    }
}

#[test]
fn samples_do_not_depend_on_batch_composition() {
    let Some(tok) = tokenizer() else { return };
    let model = tiny_model();
    let engine = Engine::new(&model.model, &tok);
    let prompts = prompts(&tok);
    let together = engine.generate(&prompts, &sampling(3, 11)).unwrap();
    assert_eq!(together.len(), 9);
    for (k, c) in together.iter().enumerate() {
        assert_eq!((c.prompt_index, c.sample_index), (k / 3, k % 3), "prompt-major order");
    }
    // Prompt 0 alone (unpadded, batch of 3 instead of 9) must give the same three samples; the samples of a
    // prompt must differ from each other.
    let alone = Engine::new(&model.model, &tok)
        .generate(&prompts[..1], &sampling(3, 11))
        .unwrap();
    for j in 0..3 {
        assert_eq!(alone[j].tokens, together[j].tokens, "sample {j}");
    }
    assert!(together[0].tokens != together[1].tokens || together[1].tokens != together[2].tokens);
    // Same seed, same output; another seed, another output.
    assert_eq!(engine.generate(&prompts, &sampling(3, 11)).unwrap(), together);
    assert_ne!(engine.generate(&prompts, &sampling(3, 12)).unwrap(), together);
}

#[test]
fn logprobs_are_teacher_forced_log_softmax() {
    let Some(tok) = tokenizer() else { return };
    let model = tiny_model();
    let engine = Engine::new(&model.model, &tok);
    let prompts = prompts(&tok);
    let out = engine.generate(&prompts, &sampling(2, 5)).unwrap();
    for c in &out {
        let prompt = &prompts[c.prompt_index];
        let full: Vec<i64> = prompt.iter().chain(&c.tokens).map(|&t| t as i64).collect();
        let logits = tch::no_grad(|| model.model.forward(&Tensor::from_slice(&full).unsqueeze(0), None));
        let logp = logits.get(0).log_softmax(-1, Kind::Float);
        for (s, (&token, &lp)) in c.tokens.iter().zip(&c.logprobs).enumerate() {
            let want = logp.double_value(&[(prompt.len() + s - 1) as i64, token as i64]);
            assert!((want - lp as f64).abs() < 1e-4, "step {s}: {lp} vs {want}");
        }
    }
}

#[test]
fn greedy_samples_agree_and_top_k_one_is_greedy() {
    let Some(tok) = tokenizer() else { return };
    let model = tiny_model();
    let engine = Engine::new(&model.model, &tok);
    let prompts = prompts(&tok);
    let greedy = engine
        .generate(
            &prompts,
            &SamplingParams {
                n: 2,
                ..SamplingParams::greedy(10)
            },
        )
        .unwrap();
    for pair in greedy.chunks(2) {
        assert_eq!(pair[0].tokens, pair[1].tokens);
    }
    let top1 = SamplingParams {
        temperature: 1.3,
        top_k: 1,
        n: 2,
        ..SamplingParams::greedy(10)
    };
    let sampled = engine.generate(&prompts, &top1).unwrap();
    for (a, b) in greedy.iter().zip(&sampled) {
        assert_eq!(a.tokens, b.tokens);
    }
}

#[test]
fn stop_strings_cut_text_and_finish() {
    let Some(tok) = tokenizer() else { return };
    let model = tiny_model();
    let engine = Engine::with_options(
        &model.model,
        &tok,
        EngineOptions {
            max_batch_rows: 2,
            ..Default::default()
        },
    );
    let prompts = prompts(&tok);
    let free = engine
        .generate(
            &prompts[..1],
            &SamplingParams {
                ignore_eos: true,
                ..SamplingParams::greedy(16)
            },
        )
        .unwrap();
    assert_eq!(free[0].tokens.len(), 16);
    assert_eq!(free[0].finish_reason, FinishReason::Length);
    // Stop at the text of tokens 5..7 of the free run.
    let piece = tok.decode(&free[0].tokens[5..7], true).unwrap();
    assert!(!piece.is_empty());
    let params = SamplingParams {
        ignore_eos: true,
        stop: vec![piece.clone()],
        ..SamplingParams::greedy(16)
    };
    let stopped = engine.generate(&prompts[..1], &params).unwrap();
    let c = &stopped[0];
    assert_eq!(c.finish_reason, FinishReason::Stop);
    assert!(c.tokens.len() <= 7 && free[0].tokens.starts_with(&c.tokens));
    let full_text = tok.decode(&free[0].tokens, true).unwrap();
    assert_eq!(c.text, full_text[..full_text.find(&piece).unwrap()]);
    // Waves: 3 prompts with max_batch_rows 2 run as two waves and keep prompt order.
    let waves = engine.generate(&prompts, &SamplingParams::greedy(4)).unwrap();
    let one = Engine::new(&model.model, &tok)
        .generate(&prompts, &SamplingParams::greedy(4))
        .unwrap();
    assert_eq!(waves.len(), one.len());
    for (a, b) in waves.iter().zip(&one) {
        // Different batch shapes round differently in the last bits; the choices and texts must not change.
        assert_eq!(
            (&a.tokens, &a.text, a.finish_reason),
            (&b.tokens, &b.text, b.finish_reason)
        );
        assert!(a.logprobs.iter().zip(&b.logprobs).all(|(x, y)| (x - y).abs() < 1e-4));
    }
    assert!(engine.generate(&[vec![]], &SamplingParams::greedy(4)).is_err());
    assert!(engine
        .generate(
            &prompts,
            &SamplingParams {
                top_p: 0.0,
                ..SamplingParams::greedy(4)
            }
        )
        .is_err());
}
