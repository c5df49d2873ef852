//! llama2.c checkpoints (legacy "version 0" `.bin`: 7 × i32 header, then f32 weights) and their tokenizer.
//!
//! llama2.c rotates adjacent pairs (i, i+1) of each head; transformers rotates the two halves. Permuting the rows
//! of `wq`/`wk` inside each head (the same permutation transformers' Llama converter applies) turns one into the
//! other, so the checkpoint becomes an ordinary Hugging Face Llama.

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use tch::{Device, Kind, Tensor};

use super::{from_named_tensors, LoadedModel};
use crate::config::{ModelConfig, TokenIds};
use crate::tokenizer::Tokenizer;

/// The llama2.c header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Llama2cHeader {
    /// Model width.
    pub dim: usize,
    /// FFN hidden width.
    pub hidden_dim: usize,
    /// Layers.
    pub n_layers: usize,
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads.
    pub n_kv_heads: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Whether the classifier shares the embedding (positive vocab size in the file).
    pub shared_classifier: bool,
    /// Maximum sequence length.
    pub seq_len: usize,
}

fn parse_header(bytes: &[u8], path: &Path) -> Result<Llama2cHeader> {
    ensure!(bytes.len() >= 28, "{}: too short for a llama2.c header", path.display());
    let field = |i: usize| i32::from_le_bytes(bytes[4 * i..4 * i + 4].try_into().expect("4 bytes"));
    let positive = |i: usize, what: &str| -> Result<usize> {
        let v = field(i);
        ensure!(v > 0, "{}: llama2.c header field {what} is {v}", path.display());
        Ok(v as usize)
    };
    let vocab = field(5);
    ensure!(vocab != 0, "{}: llama2.c header has vocab_size 0", path.display());
    Ok(Llama2cHeader {
        dim: positive(0, "dim")?,
        hidden_dim: positive(1, "hidden_dim")?,
        n_layers: positive(2, "n_layers")?,
        n_heads: positive(3, "n_heads")?,
        n_kv_heads: positive(4, "n_kv_heads")?,
        vocab_size: vocab.unsigned_abs() as usize,
        shared_classifier: vocab > 0,
        seq_len: positive(6, "seq_len")?,
    })
}

/// The Hugging Face config equivalent to a llama2.c header (RMSNorm eps 1e-5, RoPE base 10000, BOS 1, EOS 2).
pub fn config_for(h: &Llama2cHeader) -> ModelConfig {
    let mut cfg = ModelConfig::llama(
        h.vocab_size,
        h.dim,
        h.hidden_dim,
        h.n_layers,
        h.n_heads,
        h.n_kv_heads,
        h.seq_len,
        1e-5,
    );
    cfg.tie_word_embeddings = h.shared_classifier;
    cfg.bos_token_id = Some(1);
    cfg.eos_token_id = Some(TokenIds::One(2));
    cfg
}

/// Interleaved-pair rows → half-split rows, per head: `[heads*hd, in]` viewed as `[heads, hd/2, 2, in]`.
fn interleaved_to_half(w: &Tensor, heads: usize) -> Tensor {
    let (out, inp) = w.size2().expect("2-D weight");
    let hd = out / heads as i64;
    w.view([heads as i64, hd / 2, 2, inp])
        .transpose(1, 2)
        .reshape([out, inp])
}

/// Loads a llama2.c checkpoint. `tokenizer` defaults to `tok{vocab}.bin` or `tokenizer.bin` beside the model; the
/// model loads without a tokenizer if neither exists.
pub fn load(path: &Path, tokenizer: Option<&Path>, device: Device, dtype: Kind) -> Result<LoadedModel> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let h = parse_header(&bytes, path)?;
    let cfg = config_for(&h);
    ensure!(
        h.dim % h.n_heads == 0,
        "{}: dim {} not divisible by n_heads {}",
        path.display(),
        h.dim,
        h.n_heads
    );
    let head_dim = h.dim / h.n_heads;
    let kv_dim = h.n_kv_heads * head_dim;
    let (d, f, l, v) = (h.dim, h.hidden_dim, h.n_layers, h.vocab_size);

    let mut offset = 28usize;
    let mut take = |shape: &[usize], what: &str| -> Result<Tensor> {
        let n: usize = shape.iter().product();
        let end = offset + 4 * n;
        if end > bytes.len() {
            bail!(
                "{}: file ends inside {what} (needs {end} bytes, has {})",
                path.display(),
                bytes.len()
            );
        }
        let dims: Vec<i64> = shape.iter().map(|&x| x as i64).collect();
        let t = Tensor::from_data_size(&bytes[offset..end], &dims, Kind::Float);
        offset = end;
        Ok(t)
    };
    let embed = take(&[v, d], "token_embedding_table")?;
    let rms_att = take(&[l, d], "rms_att_weight")?;
    let wq = take(&[l, d, d], "wq")?;
    let wk = take(&[l, kv_dim, d], "wk")?;
    let wv = take(&[l, kv_dim, d], "wv")?;
    let wo = take(&[l, d, d], "wo")?;
    let rms_ffn = take(&[l, d], "rms_ffn_weight")?;
    let w1 = take(&[l, f, d], "w1")?;
    let w2 = take(&[l, d, f], "w2")?;
    let w3 = take(&[l, f, d], "w3")?;
    let rms_final = take(&[d], "rms_final_weight")?;
    // Precomputed RoPE tables (unused: recomputed from the config).
    let _ = take(&[h.seq_len, head_dim / 2], "freq_cis_real")?;
    let _ = take(&[h.seq_len, head_dim / 2], "freq_cis_imag")?;
    let wcls = if h.shared_classifier {
        None
    } else {
        Some(take(&[v, d], "wcls")?)
    };
    ensure!(
        offset == bytes.len(),
        "{}: {} trailing bytes after the weights (not a llama2.c v0 checkpoint?)",
        path.display(),
        bytes.len() - offset
    );

    let mut named: Vec<(String, Tensor)> = vec![
        ("model.embed_tokens.weight".into(), embed),
        ("model.norm.weight".into(), rms_final),
    ];
    if let Some(wcls) = wcls {
        named.push(("lm_head.weight".into(), wcls));
    }
    for i in 0..l as i64 {
        let p = |s: &str| format!("model.layers.{i}.{s}");
        named.push((p("input_layernorm.weight"), rms_att.get(i)));
        named.push((p("self_attn.q_proj.weight"), interleaved_to_half(&wq.get(i), h.n_heads)));
        named.push((
            p("self_attn.k_proj.weight"),
            interleaved_to_half(&wk.get(i), h.n_kv_heads),
        ));
        named.push((p("self_attn.v_proj.weight"), wv.get(i)));
        named.push((p("self_attn.o_proj.weight"), wo.get(i)));
        named.push((p("post_attention_layernorm.weight"), rms_ffn.get(i)));
        named.push((p("mlp.gate_proj.weight"), w1.get(i)));
        named.push((p("mlp.down_proj.weight"), w2.get(i)));
        named.push((p("mlp.up_proj.weight"), w3.get(i)));
    }

    let tok_path = match tokenizer {
        Some(p) => Some(p.to_path_buf()),
        None => find_tokenizer(path, v),
    };
    let tokenizer = match tok_path {
        Some(p) => Some(Tokenizer::from_llama2c_file(&p, v)?),
        None => {
            tracing::warn!(path = %path.display(), "no llama2.c tokenizer found beside the model");
            None
        }
    };
    from_named_tensors(cfg, named.into_iter().map(Ok), device, dtype, tokenizer)
        .with_context(|| format!("loading {}", path.display()))
}

fn find_tokenizer(model: &Path, vocab: usize) -> Option<PathBuf> {
    let dir = model.parent()?;
    [format!("tok{vocab}.bin"), "tokenizer.bin".to_string()]
        .into_iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}
