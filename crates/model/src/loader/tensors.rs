//! Reading safetensors files into tch tensors.

use std::path::Path;

use anyhow::{bail, Context, Result};
use safetensors::{Dtype, SafeTensors};
use tch::{Kind, Tensor};

/// All tensors of one `.safetensors` file, on the CPU in their stored kind.
pub fn read_safetensors(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let file = SafeTensors::deserialize(&bytes).with_context(|| format!("parsing safetensors {}", path.display()))?;
    let mut out = Vec::with_capacity(file.len());
    for (name, view) in file.tensors() {
        let kind = match view.dtype() {
            Dtype::F32 => Kind::Float,
            Dtype::F16 => Kind::Half,
            Dtype::BF16 => Kind::BFloat16,
            Dtype::F64 => Kind::Double,
            Dtype::I64 => Kind::Int64,
            Dtype::I32 => Kind::Int,
            other => bail!("{}: tensor {name} has unsupported dtype {other:?}", path.display()),
        };
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        let tensor = Tensor::f_from_data_size(view.data(), &shape, kind)
            .with_context(|| format!("{}: tensor {name}", path.display()))?;
        out.push((name, tensor));
    }
    Ok(out)
}
