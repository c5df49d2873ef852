//! A small C++ shim for the libtorch APIs that tch does not bind.
//!
//! tch covers tensors and autograd, but a trainer that wants to match PyTorch's speed also needs a few things that
//! only exist in libtorch's C++ API: the fused multi-tensor AdamW kernel (`at::_fused_adamw_`, CPU and CUDA), CUDA
//! graphs (`at::cuda::CUDAGraph`), CUDA streams, and bf16 autocast. It also carries the decode step's own CUDA
//! kernels ([`sample_rows`], [`decode_attention`] and [`decode_attention_rope`], [`rope_kv_write`], [`silu_mul`],
//! [`rms_norm`]), compiled at run time with NVRTC. This crate compiles two C++ files (`csrc/shim.cpp`, and
//! `csrc/decode_kernels.cpp` for the kernels' launchers) against the same libtorch that torch-sys links and exposes
//! those calls safely.
//!
//! Tensors cross the boundary as tch's raw `C_tensor` pointer, which is an `at::Tensor*` on the C++ side; no tensor
//! is ever copied or owned by the shim. Every C++ exception comes back as [`ShimError::Torch`].
//!
//! The CUDA parts are compiled whenever the CUDA runtime headers are present at build time (see `build.rs`), and are
//! guarded at run time: on a machine without a GPU they return [`ShimError::CudaUnavailable`].

mod adamw;
mod autocast;
mod cuda;
mod ffi;
mod kernels;

pub use adamw::fused_adamw;
pub use autocast::AutocastGuard;
pub use cuda::{cuda_device_count, cuda_device_name, CudaEvent, CudaGraph, CudaStream, StreamGuard};
pub use kernels::{
    cuda_kernels_status, decode_attention, decode_attention_rope, decode_attention_supports, rms_norm, rope_kv_write,
    sample_rows, sample_rows_advance, silu_mul, DecodeStepState, FoldedNorm,
};

/// Errors from the shim.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    /// libtorch raised an exception; the message is libtorch's own.
    #[error("libtorch: {0}")]
    Torch(String),
    /// The arguments are inconsistent (list lengths, missing gradients...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A CUDA feature was asked for but no CUDA device is usable (or the shim was built without CUDA headers).
    #[error("CUDA unavailable: {0}")]
    CudaUnavailable(String),
}

/// Result alias for the shim.
pub type Result<T> = std::result::Result<T, ShimError>;

/// True when the shim was compiled with its CUDA parts (CUDA headers were found at build time).
pub fn built_with_cuda() -> bool {
    // SAFETY: a pure query with no arguments.
    unsafe { ffi::seekmath_shim_has_cuda_support() != 0 }
}
