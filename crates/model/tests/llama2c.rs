//! The llama2.c golden model: `stories260K.bin` + `tok512.bin` must reproduce `stories260K.expected.json`
//! (200 greedy tokens from BOS, the decoded text, and the position-0 logits).

mod common;

use seekmath_model::load;
use serde::Deserialize;
use tch::{Device, Kind, Tensor};

#[derive(Deserialize)]
struct Golden {
    prompt_tokens: Vec<i64>,
    steps: usize,
    greedy_tokens: Vec<i64>,
    text: String,
    logits_pos0: Vec<f64>,
}

#[test]
fn stories260k_reproduces_golden_output() {
    let Some(data) = common::shared_data() else { return };
    let dir = data.join("models/tiny");
    let golden: Golden =
        serde_json::from_str(&std::fs::read_to_string(dir.join("stories260K.expected.json")).unwrap()).unwrap();
    let loaded = load(&dir.join("stories260K.bin"), Device::Cpu, Kind::Float).unwrap();
    let cfg = &loaded.config;
    assert_eq!(
        (
            cfg.hidden_size,
            cfg.num_hidden_layers,
            cfg.num_attention_heads,
            cfg.num_kv_heads()
        ),
        (64, 5, 8, 4)
    );
    assert!(cfg.tie_word_embeddings);

    let ids = Tensor::from_slice(&golden.prompt_tokens).unsqueeze(0);
    let logits = tch::no_grad(|| loaded.model.forward(&ids, None)).get(0);
    let diff = common::max_abs_diff(&logits, std::slice::from_ref(&golden.logits_pos0));
    println!("stories260K: max |Δlogit| at position 0 = {diff:.2e}");
    assert!(diff <= 1e-4, "position-0 logits differ by {diff}");

    let tokens = common::greedy(&loaded.model, &golden.prompt_tokens, golden.steps);
    assert_eq!(tokens, golden.greedy_tokens);

    let tok = loaded.tokenizer.as_ref().expect("tok512.bin found beside the model");
    let ids: Vec<u32> = tokens.iter().map(|&t| t as u32).collect();
    assert_eq!(tok.decode(&ids, false).unwrap(), golden.text);
    assert_eq!(tok.bos_token_id(), Some(1));
    assert_eq!(tok.eos_token_ids(), &[2]);
    // Encoding the golden text reproduces the golden tokens (BPE by score, dummy-prefix space).
    let encoded = tok.encode(golden.text.trim_start(), true).unwrap();
    assert_eq!(encoded[0], 1);
    assert_eq!(tok.decode(&encoded[1..], false).unwrap(), golden.text);
}
