//! The tokenizer of a model: Hugging Face `tokenizer.json` through the `tokenizers` crate (also used for GGUF
//! vocabularies), or a llama2.c `tokenizer.bin`; plus the chat template rendered with minijinja.
//!
//! Special-token ids are resolved once at load time from `tokenizer_config.json`, `generation_config.json` and
//! `config.json`, so callers (the sampling engine, RL, eval) never parse those files themselves.

mod chat;
mod llama2c;

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

pub use chat::render_chat_template;
pub use llama2c::Llama2cVocab;

/// One chat turn, as passed to a chat template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text of the turn.
    pub content: String,
}

impl ChatMessage {
    /// Convenience constructor.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// Special tokens by their text (as in `tokenizer_config.json`); ids are looked up in the vocabulary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecialTokens {
    /// Beginning-of-sequence token.
    pub bos_token: Option<String>,
    /// End-of-sequence token (the template's `eos_token`).
    pub eos_token: Option<String>,
    /// Padding token.
    pub pad_token: Option<String>,
    /// Unknown token.
    pub unk_token: Option<String>,
    /// Further ids that end generation (e.g. `generation_config.json`'s `eos_token_id` list, `<|im_end|>`).
    pub extra_eos_ids: Vec<u32>,
}

#[allow(clippy::large_enum_variant)]
enum Backend {
    Hf(Box<tokenizers::Tokenizer>),
    Llama2c(Llama2cVocab),
}

/// A model's tokenizer with its special tokens and chat template.
pub struct Tokenizer {
    backend: Backend,
    special: SpecialTokens,
    bos_id: Option<u32>,
    eos_ids: Vec<u32>,
    pad_id: Option<u32>,
    chat_template: Option<String>,
    clean_up_spaces: bool,
    /// `tokenizer_config.json` as read, re-written by `save` so no field is lost.
    hf_config: Option<serde_json::Value>,
    /// `tokenizer.json` as read: `save` writes it back byte for byte, because re-serialising through the
    /// `tokenizers` crate can change how Python's tokenizers reads it (ids differed on digits in testing).
    raw_json: Option<String>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = match &self.backend {
            Backend::Hf(_) => "tokenizers",
            Backend::Llama2c(_) => "llama2.c",
        };
        f.debug_struct("Tokenizer")
            .field("backend", &backend)
            .field("vocab_size", &self.vocab_size())
            .field("special", &self.special)
            .field("bos_id", &self.bos_id)
            .field("eos_ids", &self.eos_ids)
            .field("pad_id", &self.pad_id)
            .field("has_chat_template", &self.chat_template.is_some())
            .finish()
    }
}

/// A special token in tokenizer_config.json is a string or an AddedToken object `{"content": ...}`.
fn token_text(value: Option<&serde_json::Value>) -> Option<String> {
    match value? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(o) => o.get("content").and_then(|c| c.as_str()).map(str::to_string),
        _ => None,
    }
}

/// `eos_token_id` of config.json / generation_config.json: an int or a list.
fn ids_from_json(value: Option<&serde_json::Value>) -> Vec<u32> {
    match value {
        Some(serde_json::Value::Number(n)) => n.as_u64().map(|v| vec![v as u32]).unwrap_or_default(),
        Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_u64()).map(|v| v as u32).collect(),
        _ => Vec::new(),
    }
}

fn read_json(path: &Path) -> Result<Option<serde_json::Value>> {
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Some(
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?,
    ))
}

/// transformers' `clean_up_tokenization` (applied after decoding when `clean_up_tokenization_spaces` is true).
fn clean_up_tokenization(text: &str) -> String {
    text.replace(" .", ".")
        .replace(" ?", "?")
        .replace(" !", "!")
        .replace(" ,", ",")
        .replace(" ' ", "'")
        .replace(" n't", "n't")
        .replace(" 'm", "'m")
        .replace(" 's", "'s")
        .replace(" 've", "'ve")
        .replace(" 're", "'re")
}

impl Tokenizer {
    /// Wraps a `tokenizers` tokenizer (e.g. built from GGUF metadata) with its special tokens and chat template.
    pub fn from_hf(inner: tokenizers::Tokenizer, special: SpecialTokens, chat_template: Option<String>) -> Self {
        Self::build(Backend::Hf(Box::new(inner)), special, chat_template, false, None)
    }

    fn build(
        backend: Backend,
        special: SpecialTokens,
        chat_template: Option<String>,
        clean_up_spaces: bool,
        hf_config: Option<serde_json::Value>,
    ) -> Self {
        let mut tok = Tokenizer {
            backend,
            special,
            bos_id: None,
            eos_ids: Vec::new(),
            pad_id: None,
            chat_template,
            clean_up_spaces,
            hf_config,
            raw_json: None,
        };
        let lookup = |t: &Option<String>| t.as_deref().and_then(|s| tok.token_to_id(s));
        let (bos_id, pad_id, eos_id) = (
            lookup(&tok.special.bos_token),
            lookup(&tok.special.pad_token),
            lookup(&tok.special.eos_token),
        );
        let mut eos: Vec<u32> = eos_id.into_iter().collect();
        for id in &tok.special.extra_eos_ids {
            if !eos.contains(id) {
                eos.push(*id);
            }
        }
        tok.bos_id = bos_id;
        tok.pad_id = pad_id;
        tok.eos_ids = eos;
        tok
    }

    /// Loads `tokenizer.json` of a Hugging Face folder, with special tokens and the chat template from
    /// `tokenizer_config.json` (or `chat_template.jinja`), and extra EOS ids from `generation_config.json` and
    /// `config.json`.
    pub fn from_hf_folder(dir: &Path) -> Result<Self> {
        let path = dir.join("tokenizer.json");
        let raw_json = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let inner = raw_json
            .parse::<tokenizers::Tokenizer>()
            .map_err(|e| anyhow!("loading tokenizer {}: {e}", path.display()))?;
        let config = read_json(&dir.join("tokenizer_config.json"))?;
        let get = |key: &str| config.as_ref().and_then(|c| token_text(c.get(key)));
        let mut extra_eos_ids = ids_from_json(
            read_json(&dir.join("generation_config.json"))?
                .as_ref()
                .and_then(|g| g.get("eos_token_id")),
        );
        extra_eos_ids.extend(ids_from_json(
            read_json(&dir.join("config.json"))?
                .as_ref()
                .and_then(|c| c.get("eos_token_id")),
        ));
        let special = SpecialTokens {
            bos_token: get("bos_token"),
            eos_token: get("eos_token"),
            pad_token: get("pad_token"),
            unk_token: get("unk_token"),
            extra_eos_ids,
        };
        let jinja = dir.join("chat_template.jinja");
        let chat_template = if jinja.is_file() {
            Some(std::fs::read_to_string(&jinja).with_context(|| format!("reading {}", jinja.display()))?)
        } else {
            config
                .as_ref()
                .and_then(|c| chat::template_from_config(c.get("chat_template")))
        };
        let clean_up = config
            .as_ref()
            .and_then(|c| c.get("clean_up_tokenization_spaces"))
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        let mut tokenizer = Self::build(Backend::Hf(Box::new(inner)), special, chat_template, clean_up, config);
        tokenizer.raw_json = Some(raw_json);
        Ok(tokenizer)
    }

    /// Loads a llama2.c `tokenizer.bin` with `vocab_size` pieces (BOS 1, EOS 2, no chat template).
    pub fn from_llama2c_file(path: &Path, vocab_size: usize) -> Result<Self> {
        let vocab = Llama2cVocab::from_file(path, vocab_size)?;
        let special = SpecialTokens {
            bos_token: None,
            eos_token: None,
            pad_token: None,
            unk_token: None,
            extra_eos_ids: vec![llama2c::EOS_ID],
        };
        let mut tok = Self::build(Backend::Llama2c(vocab), special, None, false, None);
        tok.bos_id = Some(llama2c::BOS_ID);
        Ok(tok)
    }

    /// Token ids of `text`; `add_special_tokens` adds what the tokenizer's post-processor adds (e.g. BOS).
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        match &self.backend {
            Backend::Hf(t) => Ok(t
                .encode(text, add_special_tokens)
                .map_err(|e| anyhow!("tokenizing {} bytes of text: {e}", text.len()))?
                .get_ids()
                .to_vec()),
            Backend::Llama2c(v) => Ok(v.encode(text, add_special_tokens)),
        }
    }

    /// Text of `ids`; `skip_special_tokens` drops special tokens (BOS, EOS, chat markers).
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        match &self.backend {
            Backend::Hf(t) => {
                let text = t
                    .decode(ids, skip_special_tokens)
                    .map_err(|e| anyhow!("decoding {} token ids: {e}", ids.len()))?;
                Ok(if self.clean_up_spaces {
                    clean_up_tokenization(&text)
                } else {
                    text
                })
            }
            Backend::Llama2c(v) => v.decode(ids, skip_special_tokens),
        }
    }

    /// Ids that end generation (the EOS token plus `generation_config.json` / `config.json` ids), deduplicated.
    pub fn eos_token_ids(&self) -> &[u32] {
        &self.eos_ids
    }

    /// Beginning-of-sequence id, if the tokenizer has one.
    pub fn bos_token_id(&self) -> Option<u32> {
        self.bos_id
    }

    /// Padding id, if the tokenizer defines one.
    pub fn pad_token_id(&self) -> Option<u32> {
        self.pad_id
    }

    /// Special tokens by text.
    pub fn special_tokens(&self) -> &SpecialTokens {
        &self.special
    }

    /// The chat template source, if any.
    pub fn chat_template(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }

    /// Replaces the chat template (e.g. for a base model without one).
    pub fn set_chat_template(&mut self, template: Option<String>) {
        self.chat_template = template;
    }

    /// Number of ids (including added tokens).
    pub fn vocab_size(&self) -> usize {
        match &self.backend {
            Backend::Hf(t) => t.get_vocab_size(true),
            Backend::Llama2c(v) => v.len(),
        }
    }

    /// Id of a token string (added tokens included).
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        match &self.backend {
            Backend::Hf(t) => t.token_to_id(token),
            Backend::Llama2c(v) => v.piece_id(token.as_bytes()),
        }
    }

    /// Token string of an id.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        match &self.backend {
            Backend::Hf(t) => t.id_to_token(id),
            Backend::Llama2c(v) => v.piece(id).map(|p| String::from_utf8_lossy(p).into_owned()),
        }
    }

    /// The underlying `tokenizers` tokenizer (None for llama2.c vocabularies).
    pub fn hf_tokenizer(&self) -> Option<&tokenizers::Tokenizer> {
        match &self.backend {
            Backend::Hf(t) => Some(t.as_ref()),
            Backend::Llama2c(_) => None,
        }
    }

    /// Renders the chat template like transformers' `apply_chat_template(..., tokenize=False)`.
    pub fn apply_chat_template(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        self.apply_chat_template_with(messages, add_generation_prompt, serde_json::Map::new())
    }

    /// [`Tokenizer::apply_chat_template`] with extra template variables (`tools`, `enable_thinking`, ...).
    pub fn apply_chat_template_with(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
        extra: serde_json::Map<String, serde_json::Value>,
    ) -> Result<String> {
        let Some(template) = &self.chat_template else {
            bail!("this tokenizer has no chat template");
        };
        render_chat_template(template, messages, add_generation_prompt, &self.special, extra)
    }

    /// Writes `tokenizer.json` and `tokenizer_config.json` (with the chat template) into `dir`, loadable by
    /// transformers' `AutoTokenizer`. llama2.c vocabularies cannot be written in that format (error).
    pub fn save(&self, dir: &Path) -> Result<()> {
        let Backend::Hf(inner) = &self.backend else {
            bail!("a llama2.c tokenizer cannot be saved as a Hugging Face tokenizer.json");
        };
        let path = dir.join("tokenizer.json");
        // A tokenizer read from a file is written back byte for byte: re-serialising through the tokenizers crate
        // changed how transformers splits digits in some files.
        match &self.raw_json {
            Some(raw) => std::fs::write(&path, raw).with_context(|| format!("writing {}", path.display()))?,
            None => inner
                .save(&path, false)
                .map_err(|e| anyhow!("writing {}: {e}", path.display()))?,
        }
        let mut config = match &self.hf_config {
            Some(serde_json::Value::Object(o)) => o.clone(),
            _ => {
                let mut o = serde_json::Map::new();
                o.insert("tokenizer_class".into(), "PreTrainedTokenizerFast".into());
                o.insert("clean_up_tokenization_spaces".into(), false.into());
                o
            }
        };
        // Without a class, transformers picks one from config.json's model_type, whose own pre-tokenizer then
        // overrides tokenizer.json's; the generic fast class keeps the file authoritative. (transformers >= 5 ignores
        // the declared class for some model types, qwen2 among them, and always uses its own: a qwen2 folder must
        // carry a Qwen2-style tokenizer to round-trip, which real Qwen2 checkpoints do.)
        config
            .entry("tokenizer_class")
            .or_insert_with(|| "PreTrainedTokenizerFast".into());
        let sp = &self.special;
        for (key, value) in [
            ("bos_token", &sp.bos_token),
            ("eos_token", &sp.eos_token),
            ("pad_token", &sp.pad_token),
            ("unk_token", &sp.unk_token),
        ] {
            if let Some(v) = value {
                config.insert(key.into(), v.clone().into());
            }
        }
        match &self.chat_template {
            Some(t) => config.insert("chat_template".into(), t.clone().into()),
            None => config.remove("chat_template"),
        };
        let path = dir.join("tokenizer_config.json");
        let text = serde_json::to_string_pretty(&serde_json::Value::Object(config))?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleanup_matches_transformers_rules() {
        assert_eq!(clean_up_tokenization("Hi , I 'm here . Do n't"), "Hi, I'm here. Don't");
    }

    #[test]
    fn special_token_text_accepts_added_token_objects() {
        let v: serde_json::Value = serde_json::json!({"content": "<s>", "lstrip": false});
        assert_eq!(token_text(Some(&v)).as_deref(), Some("<s>"));
        assert_eq!(ids_from_json(Some(&serde_json::json!([1, 2]))), vec![1, 2]);
        assert_eq!(ids_from_json(Some(&serde_json::json!(7))), vec![7]);
    }
}
