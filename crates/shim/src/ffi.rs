//! Raw declarations of `csrc/shim.cpp`; only this crate's safe wrappers call them.

use std::ffi::{c_char, c_int, c_void, CStr};
use torch_sys::C_tensor;

extern "C" {
    pub fn seekmath_shim_free_error(message: *mut c_char);
    pub fn seekmath_shim_has_cuda_support() -> c_int;
    pub fn seekmath_fused_adamw(
        params: *const *mut C_tensor,
        grads: *const *mut C_tensor,
        exp_avgs: *const *mut C_tensor,
        exp_avg_sqs: *const *mut C_tensor,
        count: i64,
        step: f64,
        lr: f64,
        beta1: f64,
        beta2: f64,
        weight_decay: f64,
        eps: f64,
    ) -> *mut c_char;
    pub fn seekmath_autocast_enter(
        device_is_cuda: c_int,
        dtype: c_int,
        previous_enabled: *mut c_int,
        previous_dtype: *mut c_int,
    ) -> *mut c_char;
    pub fn seekmath_autocast_exit(device_is_cuda: c_int, previous_enabled: c_int, previous_dtype: c_int)
        -> *mut c_char;
    pub fn seekmath_autocast_is_enabled(device_is_cuda: c_int) -> c_int;
    pub fn seekmath_cuda_stream_from_pool(
        device: c_int,
        high_priority: c_int,
        id: *mut i64,
        device_index: *mut i64,
        device_type: *mut i64,
    ) -> *mut c_char;
    pub fn seekmath_cuda_current_stream(
        device: c_int,
        id: *mut i64,
        device_index: *mut i64,
        device_type: *mut i64,
    ) -> *mut c_char;
    pub fn seekmath_cuda_set_current_stream(id: i64, device_index: i64, device_type: i64) -> *mut c_char;
    pub fn seekmath_stream_synchronize(id: i64, device_index: i64, device_type: i64) -> *mut c_char;
    pub fn seekmath_cuda_graph_new(out: *mut *mut c_void) -> *mut c_char;
    pub fn seekmath_cuda_graph_free(graph: *mut c_void);
    pub fn seekmath_cuda_graph_capture_begin(graph: *mut c_void, device: c_int) -> *mut c_char;
    pub fn seekmath_cuda_graph_capture_end(graph: *mut c_void) -> *mut c_char;
    pub fn seekmath_cuda_graph_replay(graph: *mut c_void) -> *mut c_char;
    pub fn seekmath_cuda_event_new(out: *mut *mut c_void) -> *mut c_char;
    pub fn seekmath_cuda_event_free(event: *mut c_void);
    pub fn seekmath_cuda_event_record(event: *mut c_void, device: c_int) -> *mut c_char;
    pub fn seekmath_cuda_event_synchronize(event: *mut c_void) -> *mut c_char;
    pub fn seekmath_cuda_device_name(device: c_int, buffer: *mut c_char, size: c_int) -> *mut c_char;
    pub fn seekmath_cuda_device_count() -> c_int;
    pub fn seekmath_cuda_kernels_status(buffer: *mut c_char, size: c_int);
    pub fn seekmath_sample_rows(
        logits: *mut C_tensor,
        uniforms: *mut C_tensor,
        inv_temperature: f64,
        greedy: c_int,
        tokens: *mut C_tensor,
        logprobs: *mut C_tensor,
    ) -> *mut c_char;
    #[allow(clippy::too_many_arguments)]
    pub fn seekmath_sample_rows_advance(
        logits: *mut C_tensor,
        uniforms: *mut C_tensor,
        inv_temperature: f64,
        greedy: c_int,
        ids: *mut C_tensor,
        positions: *mut C_tensor,
        slots: *mut C_tensor,
        first_slot: *mut C_tensor,
        packed: *mut C_tensor,
    ) -> *mut c_char;
    pub fn seekmath_decode_attention_plan(
        device: c_int,
        batch: i64,
        kv_heads: i64,
        head_dim: i64,
        attended: i64,
        splits: *mut i64,
        tiles_per_split: *mut i64,
    ) -> *mut c_char;
    pub fn seekmath_decode_attention(
        q: *mut C_tensor,
        keys: *mut C_tensor,
        values: *mut C_tensor,
        starts: *mut C_tensor,
        slots: *mut C_tensor,
        splits: i64,
        tiles_per_split: i64,
        part_max: *mut C_tensor,
        part_sum: *mut C_tensor,
        part_acc: *mut C_tensor,
        out: *mut C_tensor,
        cos: *mut C_tensor,
        sin: *mut C_tensor,
        norm_input: *mut C_tensor,
        norm_eps: f64,
        bias: *mut C_tensor,
    ) -> *mut c_char;
    #[allow(clippy::too_many_arguments)]
    pub fn seekmath_rope_kv_write(
        qkv: *mut C_tensor,
        cos: *mut C_tensor,
        sin: *mut C_tensor,
        heads: i64,
        kv_heads: i64,
        keys: *mut C_tensor,
        values: *mut C_tensor,
        slots: *mut C_tensor,
        q_out: *mut C_tensor,
        norm_input: *mut C_tensor,
        norm_eps: f64,
        bias: *mut C_tensor,
    ) -> *mut c_char;
    pub fn seekmath_silu_mul(
        gate_up: *mut C_tensor,
        out: *mut C_tensor,
        norm_input: *mut C_tensor,
        norm_eps: f64,
        bias: *mut C_tensor,
    ) -> *mut c_char;
    pub fn seekmath_rms_norm(x: *mut C_tensor, weight: *mut C_tensor, eps: f64, out: *mut C_tensor) -> *mut c_char;
}

/// Turns a returned error pointer into a `Result`, freeing the C++ allocation.
pub fn check(message: *mut c_char) -> crate::Result<()> {
    if message.is_null() {
        return Ok(());
    }
    // SAFETY: non-null pointers returned by the shim are NUL-terminated strings from malloc.
    let text = unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned();
    // SAFETY: freed exactly once, by the allocator that made it.
    unsafe { seekmath_shim_free_error(message) };
    Err(crate::ShimError::Torch(text))
}
