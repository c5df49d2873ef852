//! The tokenizer a GGUF file describes in its `tokenizer.*` metadata, rebuilt as a Hugging Face `tokenizer.json`.
//!
//! llama.cpp stores the vocabulary, merges, token types and special ids, but not the pipeline around them; the
//! pipeline is implied by `tokenizer.ggml.model` (`gpt2`: byte-level BPE; `llama`: sentencepiece-style BPE with
//! byte fallback) and, for byte-level vocabularies, by `tokenizer.ggml.pre` (the pre-tokenizer split regex).
//! The result is what transformers builds from the same file, so token ids agree with it.

use std::collections::{HashMap, HashSet};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::reader::{GgufFile, MetadataValue};

/// llama.cpp token types (`tokenizer.ggml.token_type`).
const TOKEN_TYPE_UNKNOWN: i64 = 2;
const TOKEN_TYPE_CONTROL: i64 = 3;
const TOKEN_TYPE_USER_DEFINED: i64 = 4;

/// Split regex of llama-3-style byte-level vocabularies (digits in runs of up to three).
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Split regex of Qwen2 vocabularies (single digits).
const QWEN2_SPLIT: &str =
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Everything needed to build a tokenizer from GGUF metadata.
#[derive(Debug, Clone)]
pub struct GgufTokenizer {
    /// A complete `tokenizer.json` document (loadable by the `tokenizers` crate and by transformers).
    pub tokenizer_json: Value,
    /// `tokenizer.chat_template`, if the file has one.
    pub chat_template: Option<String>,
    /// Beginning-of-sequence token id.
    pub bos_token_id: Option<u32>,
    /// End-of-sequence id followed by end-of-turn/end-of-message ids, deduplicated.
    pub eos_token_ids: Vec<u32>,
    /// Padding token id.
    pub pad_token_id: Option<u32>,
    /// Unknown-token id.
    pub unk_token_id: Option<u32>,
    /// Whether encoding with special tokens prepends BOS.
    pub add_bos_token: bool,
    /// Whether encoding with special tokens appends EOS.
    pub add_eos_token: bool,
}

impl GgufTokenizer {
    /// Token string for an id, as the vocabulary spells it.
    pub fn token(&self, id: u32) -> Option<String> {
        self.tokenizer_json["added_tokens"]
            .as_array()?
            .iter()
            .find(|t| t["id"].as_u64() == Some(id.into()))
            .and_then(|t| t["content"].as_str().map(str::to_string))
            .or_else(|| {
                self.tokenizer_json["model"]["vocab"]
                    .as_object()?
                    .iter()
                    .find(|(_, v)| v.as_u64() == Some(id.into()))
                    .map(|(k, _)| k.clone())
            })
    }

    /// Builds the `tokenizers` tokenizer.
    pub fn build(&self) -> Result<tokenizers::Tokenizer> {
        let text = serde_json::to_string(&self.tokenizer_json)?;
        text.parse::<tokenizers::Tokenizer>()
            .map_err(|e| anyhow::anyhow!("building the tokenizer from GGUF metadata: {e}"))
    }
}

/// Reads the tokenizer from `file`'s metadata; `Ok(None)` if the file has no vocabulary.
pub fn read_tokenizer(file: &GgufFile) -> Result<Option<GgufTokenizer>> {
    let Some(tokens) = file.get("tokenizer.ggml.tokens") else {
        return Ok(None);
    };
    let tokens = string_array(tokens).context("tokenizer.ggml.tokens")?;
    let model = file.get_str("tokenizer.ggml.model")?.to_string();
    let token_types = match file.get("tokenizer.ggml.token_type") {
        Some(v) => int_array(v).context("tokenizer.ggml.token_type")?,
        None => vec![1; tokens.len()],
    };
    if token_types.len() != tokens.len() {
        bail!("{} token types for {} tokens", token_types.len(), tokens.len());
    }
    let merges = match file.get("tokenizer.ggml.merges") {
        Some(v) => Some(string_array(v).context("tokenizer.ggml.merges")?),
        None => None,
    };
    let id = |key: &str| -> Result<Option<u32>> {
        let v = file.get_u64(key)?;
        match v {
            Some(v) if (v as usize) < tokens.len() => Ok(Some(v as u32)),
            Some(v) => bail!("{key} = {v} is outside the vocabulary of {}", tokens.len()),
            None => Ok(None),
        }
    };
    let bos = id("tokenizer.ggml.bos_token_id")?;
    let eos = id("tokenizer.ggml.eos_token_id")?;
    let unk = id("tokenizer.ggml.unknown_token_id")?;
    let pad = id("tokenizer.ggml.padding_token_id")?;
    let mut eos_ids = Vec::new();
    for key in [
        "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.eot_token_id",
        "tokenizer.ggml.eom_token_id",
    ] {
        if let Some(v) = id(key)? {
            if !eos_ids.contains(&v) {
                eos_ids.push(v);
            }
        }
    }
    let flag = |key: &str| file.get(key).and_then(MetadataValue::as_bool);
    // llama.cpp adds BOS for sentencepiece vocabularies unless told otherwise.
    let add_bos = flag("tokenizer.ggml.add_bos_token").unwrap_or(model == "llama");
    let add_eos = flag("tokenizer.ggml.add_eos_token").unwrap_or(false);
    let add_prefix_space = flag("tokenizer.ggml.add_space_prefix").unwrap_or(true);
    let pre = file
        .get("tokenizer.ggml.pre")
        .and_then(MetadataValue::as_str)
        .unwrap_or("default");

    let mut json = match model.as_str() {
        "gpt2" => byte_level(&tokens, merges.as_deref(), pre)?,
        "llama" => {
            let scores = match file.get("tokenizer.ggml.scores") {
                Some(v) => Some(float_array(v).context("tokenizer.ggml.scores")?),
                None => None,
            };
            let unk_token = unk.map(|u| tokens[u as usize].clone());
            sentencepiece(
                &tokens,
                merges.as_deref(),
                scores.as_deref(),
                unk_token,
                add_prefix_space,
            )?
        }
        other => bail!("unsupported GGUF tokenizer model {other:?} (supported: gpt2, llama)"),
    };
    let special_ids: Vec<u32> = [bos, eos, unk, pad].into_iter().flatten().collect();
    json["added_tokens"] = Value::Array(added_tokens(&tokens, &token_types, &special_ids, model == "gpt2"));
    json["post_processor"] = template_processing(&tokens, bos.filter(|_| add_bos), eos.filter(|_| add_eos));

    let chat_template = file
        .get("tokenizer.chat_template")
        .and_then(MetadataValue::as_str)
        .map(str::to_string);
    Ok(Some(GgufTokenizer {
        tokenizer_json: json,
        chat_template,
        bos_token_id: bos,
        eos_token_ids: eos_ids,
        pad_token_id: pad,
        unk_token_id: unk,
        add_bos_token: add_bos,
        add_eos_token: add_eos,
    }))
}

fn string_array(v: &MetadataValue) -> Result<Vec<String>> {
    v.as_array()
        .context("not an array")?
        .iter()
        .map(|s| s.as_str().map(str::to_string).context("array item is not a string"))
        .collect()
}

fn int_array(v: &MetadataValue) -> Result<Vec<i64>> {
    v.as_array()
        .context("not an array")?
        .iter()
        .map(|x| x.as_f64().map(|f| f as i64).context("array item is not a number"))
        .collect()
}

fn float_array(v: &MetadataValue) -> Result<Vec<f64>> {
    v.as_array()
        .context("not an array")?
        .iter()
        .map(|x| x.as_f64().context("array item is not a number"))
        .collect()
}

fn parse_merges(merges: &[String]) -> Result<Vec<(String, String)>> {
    merges
        .iter()
        .enumerate()
        .map(|(i, m)| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .with_context(|| format!("merge {i} ({m:?}) is not two space-separated pieces"))
        })
        .collect()
}

fn added_token(id: usize, content: &str, special: bool) -> Value {
    json!({"id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false,
           "normalized": false, "special": special})
}

/// GPT-2's reversible map from bytes to printable characters, as a byte → char table.
fn bytes_to_unicode() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next = 256u32;
    for b in 0..=255u8 {
        let printable = (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b);
        table[b as usize] = if printable {
            b as char
        } else {
            let c = char::from_u32(next).expect("valid char");
            next += 1;
            c
        };
    }
    table
}

fn byte_level(tokens: &[String], merges: Option<&[String]>, pre: &str) -> Result<Value> {
    let spelling = bytes_to_unicode();
    let alphabet: HashSet<char> = spelling.iter().copied().collect();
    let in_alphabet = |t: &str| t.chars().all(|c| alphabet.contains(&c));
    let mut vocab = serde_json::Map::new();
    for (id, token) in tokens.iter().enumerate() {
        // Some converters store a few tokens (e.g. added ones) as raw text; spell them in the byte alphabet.
        let spelled = if in_alphabet(token) {
            token.clone()
        } else {
            token.bytes().map(|b| spelling[b as usize]).collect()
        };
        vocab.insert(spelled, json!(id));
    }
    let merges = match merges {
        Some(m) => parse_merges(m)?,
        None => bail!("byte-level GGUF vocabulary without tokenizer.ggml.merges"),
    };
    let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true});
    let split = |regex: &str| {
        json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": false},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]})
    };
    let pre_tokenizer = match pre {
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "smaug-bpe" | "dbrx" | "pixtral" => split(LLAMA3_SPLIT),
        "qwen2" | "deepseek-r1-qwen" | "megrez" => split(QWEN2_SPLIT),
        // SmolLM's own tokenizer.json isolates every digit before the GPT-2 split.
        "smollm" => json!({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true}, byte_level.clone()]}),
        "default" | "gpt2" | "gpt-2" => byte_level.clone(),
        other => {
            tracing::warn!(pre = other, "unknown GGUF pre-tokenizer; using GPT-2's split");
            byte_level.clone()
        }
    };
    Ok(json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": vocab, "merges": merges}
    }))
}

fn sentencepiece(
    tokens: &[String],
    merges: Option<&[String]>,
    scores: Option<&[f64]>,
    unk_token: Option<String>,
    add_prefix_space: bool,
) -> Result<Value> {
    let mut vocab = serde_json::Map::new();
    for (id, token) in tokens.iter().enumerate() {
        vocab.insert(token.clone(), json!(id));
    }
    let merges = match (merges, scores) {
        (Some(m), _) => parse_merges(m)?,
        (None, Some(scores)) => merges_from_scores(tokens, scores),
        (None, None) => bail!("sentencepiece GGUF vocabulary with neither merges nor scores"),
    };
    let mut decoders = vec![
        json!({"type": "Replace", "pattern": {"String": "\u{2581}"}, "content": " "}),
        json!({"type": "ByteFallback"}),
        json!({"type": "Fuse"}),
    ];
    if add_prefix_space {
        decoders.push(json!({"type": "Strip", "content": " ", "start": 1, "stop": 0}));
    }
    Ok(json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null,
        "pre_tokenizer": {"type": "Metaspace", "replacement": "\u{2581}",
                          "prepend_scheme": if add_prefix_space { "first" } else { "never" }, "split": false},
        "post_processor": null,
        "decoder": {"type": "Sequence", "decoders": decoders},
        "model": {"type": "BPE", "dropout": null, "unk_token": unk_token, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": true, "byte_fallback": true, "ignore_merges": false,
                  "vocab": vocab, "merges": merges}
    }))
}

/// Recovers BPE merges from a scored vocabulary: every split of a token into two vocabulary pieces is a merge,
/// ranked by the merged token's score (best first), ties by shorter left then right piece.
fn merges_from_scores(tokens: &[String], scores: &[f64]) -> Vec<(String, String)> {
    let ids: HashMap<&str, usize> = tokens.iter().enumerate().map(|(i, t)| (t.as_str(), i)).collect();
    let mut merges: Vec<(String, String, f64)> = Vec::new();
    let mut seen = HashSet::new();
    for (token, &score) in tokens.iter().zip(scores) {
        if !seen.insert(token.as_str()) {
            continue;
        }
        let mut local = Vec::new();
        for (split, _) in token.char_indices().skip(1) {
            let (left, right) = token.split_at(split);
            if let (Some(&l), Some(&r)) = (ids.get(left), ids.get(right)) {
                local.push((l, r, left.to_string(), right.to_string()));
            }
        }
        local.sort_by_key(|&(l, r, _, _)| (l, r));
        merges.extend(local.into_iter().map(|(_, _, a, b)| (a, b, score)));
    }
    merges.sort_by(|a, b| {
        let key = |m: &(String, String, f64)| (m.2, m.0.chars().count(), m.1.chars().count());
        let (ka, kb) = (key(a), key(b));
        kb.0.total_cmp(&ka.0).then(kb.1.cmp(&ka.1)).then(kb.2.cmp(&ka.2))
    });
    merges.into_iter().map(|(a, b, _)| (a, b)).collect()
}

fn template_processing(tokens: &[String], bos: Option<u32>, eos: Option<u32>) -> Value {
    let mut single = Vec::new();
    let mut pair = Vec::new();
    let mut special = serde_json::Map::new();
    let mut special_piece = |id: u32| {
        let token = tokens[id as usize].clone();
        special.insert(token.clone(), json!({"id": token, "ids": [id], "tokens": [token]}));
        json!({"SpecialToken": {"id": tokens[id as usize], "type_id": 0}})
    };
    if let Some(b) = bos {
        let piece = special_piece(b);
        single.push(piece.clone());
        pair.push(piece);
    }
    single.push(json!({"Sequence": {"id": "A", "type_id": 0}}));
    pair.push(json!({"Sequence": {"id": "A", "type_id": 0}}));
    if let Some(e) = eos {
        let piece = special_piece(e);
        single.push(piece.clone());
        pair.push(piece);
    }
    if let Some(b) = bos {
        pair.push(json!({"SpecialToken": {"id": tokens[b as usize], "type_id": 1}}));
    }
    pair.push(json!({"Sequence": {"id": "B", "type_id": 1}}));
    if let Some(e) = eos {
        pair.push(json!({"SpecialToken": {"id": tokens[e as usize], "type_id": 1}}));
    }
    json!({"type": "TemplateProcessing", "single": single, "pair": pair, "special_tokens": special})
}

/// Tokens matched whole before the model runs: control and unknown tokens and the declared bos/eos/unk/pad as
/// special, user-defined ones (like `<think>`) as plain added tokens.
fn added_tokens(tokens: &[String], types: &[i64], special_ids: &[u32], byte_level: bool) -> Vec<Value> {
    let alphabet: HashSet<char> = bytes_to_unicode().iter().copied().collect();
    let mut added = Vec::new();
    for (id, (token, &ty)) in tokens.iter().zip(types).enumerate() {
        let declared = special_ids.contains(&(id as u32));
        // In a byte-level vocabulary a control token spelled outside the byte alphabet is a converter mislabel;
        // adding it would change ids.
        let spelled = !byte_level || token.chars().all(|c| alphabet.contains(&c));
        if (ty == TOKEN_TYPE_CONTROL || ty == TOKEN_TYPE_UNKNOWN || declared) && spelled {
            added.push(added_token(id, token, true));
        } else if ty == TOKEN_TYPE_USER_DEFINED {
            added.push(added_token(id, token, false));
        }
    }
    added
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_alphabet_is_a_bijection() {
        let table = bytes_to_unicode();
        let unique: HashSet<char> = table.iter().copied().collect();
        assert_eq!(unique.len(), 256);
        assert_eq!(table[b' ' as usize], '\u{120}');
        assert_eq!(table[b'a' as usize], 'a');
    }

    #[test]
    fn merges_from_scores_rank_by_score_then_length() {
        let tokens: Vec<String> = ["a", "b", "c", "ab", "abc", "bc"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let scores = [0.0, 0.0, 0.0, -1.0, -3.0, -2.0];
        let merges = merges_from_scores(&tokens, &scores);
        let pairs: Vec<(&str, &str)> = merges.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        assert_eq!(pairs, vec![("a", "b"), ("b", "c"), ("ab", "c"), ("a", "bc")]);
    }
}
