//! llama.cpp tensor names → Hugging Face parameter names, and undoing the converter's Q/K row permutation.

use anyhow::{bail, Result};

/// Hugging Face name for a llama.cpp tensor name of a llama-family model; `None` for tensors with no HF
/// counterpart (they are skipped with a log line).
pub fn hf_name(gguf_name: &str) -> Result<Option<String>> {
    let global = match gguf_name {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        // llama3-style rope frequency factors are recomputed from the config's rope scaling.
        "rope_freqs.weight" => return Ok(None),
        _ => None,
    };
    if let Some(name) = global {
        return Ok(Some(name.to_string()));
    }
    let Some(rest) = gguf_name.strip_prefix("blk.") else {
        bail!("unknown GGUF tensor {gguf_name}");
    };
    let Some((layer, rest)) = rest.split_once('.') else {
        bail!("unknown GGUF tensor {gguf_name}");
    };
    if layer.parse::<usize>().is_err() {
        bail!("unknown GGUF tensor {gguf_name}");
    }
    let Some((module, suffix)) = rest.rsplit_once('.') else {
        bail!("unknown GGUF tensor {gguf_name}");
    };
    let hf_module = match module {
        "attn_norm" => "input_layernorm",
        "ffn_norm" => "post_attention_layernorm",
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        // Not needed at inference; llama.cpp stores a precomputed rotary table for some models.
        "attn_rot_embd" => return Ok(None),
        _ => bail!("unknown GGUF tensor {gguf_name} (not a llama-family layer tensor)"),
    };
    Ok(Some(format!("model.layers.{layer}.{hf_module}.{suffix}")))
}

/// Which rows of a Q or K projection need their rotary halves restored, and for how many heads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowPermutation {
    /// Leave the tensor as stored.
    None,
    /// Undo llama.cpp's interleaving for a projection with this many heads.
    Heads(usize),
}

/// The permutation to undo for `gguf_name`: llama.cpp's converter interleaves the two rotary halves of every
/// head's rows in `attn_q`/`attn_k` for the `llama` architecture (its kernels rotate adjacent pairs, HF rotates
/// halves). Qwen2 and others are stored in HF order.
pub fn row_permutation(arch: &str, gguf_name: &str, n_head: usize, n_head_kv: usize) -> RowPermutation {
    if arch != "llama" {
        return RowPermutation::None;
    }
    if gguf_name.contains(".attn_q.") {
        RowPermutation::Heads(n_head)
    } else if gguf_name.contains(".attn_k.") {
        RowPermutation::Heads(n_head_kv)
    } else {
        RowPermutation::None
    }
}

/// Restores HF row order in a `[rows, ...]` tensor that llama.cpp stored as `(head, dim/2, 2)` per row index;
/// HF's order is `(head, 2, dim/2)`.
pub fn unpermute_rows(tensor: &tch::Tensor, n_head: usize) -> Result<tch::Tensor> {
    let shape = tensor.size();
    let rows = shape[0] as usize;
    if n_head == 0 || rows % (2 * n_head) != 0 {
        bail!("cannot split {rows} rows into {n_head} rotary heads");
    }
    let half = (rows / n_head / 2) as i64;
    let mut split: Vec<i64> = vec![n_head as i64, half, 2];
    split.extend_from_slice(&shape[1..]);
    Ok(tensor
        .reshape(split.as_slice())
        .transpose(1, 2)
        .contiguous()
        .reshape(shape.as_slice()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_layer_and_global_names() {
        assert_eq!(
            hf_name("blk.12.attn_k.bias").unwrap().unwrap(),
            "model.layers.12.self_attn.k_proj.bias"
        );
        assert_eq!(
            hf_name("blk.0.ffn_norm.weight").unwrap().unwrap(),
            "model.layers.0.post_attention_layernorm.weight"
        );
        assert_eq!(hf_name("output.weight").unwrap().unwrap(), "lm_head.weight");
        assert_eq!(hf_name("rope_freqs.weight").unwrap(), None);
        assert!(hf_name("blk.x.attn_q.weight").is_err());
        assert!(hf_name("blk.0.ffn_gate_exps.weight").is_err());
    }

    #[test]
    fn unpermute_inverts_llama_cpp_interleave() {
        // Two heads of dim 4, one column: HF rows per head are [r0 r1 | r2 r3] (halves), llama.cpp stores pairs
        // (r0 r2) (r1 r3).
        let hf = tch::Tensor::arange(8, (tch::Kind::Float, tch::Device::Cpu)).reshape([8, 1]);
        let gguf = hf.reshape([2, 2, 2, 1]).transpose(1, 2).contiguous().reshape([8, 1]);
        let gguf_rows: Vec<f32> = Vec::try_from(gguf.flatten(0, -1)).unwrap();
        assert_eq!(gguf_rows, vec![0., 2., 1., 3., 4., 6., 5., 7.]);
        let back = unpermute_rows(&gguf, 2).unwrap();
        assert!(back.equal(&hf));
    }
}
