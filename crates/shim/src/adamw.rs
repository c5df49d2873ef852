//! The fused AdamW step (`at::_fused_adamw_`): one multi-tensor kernel launch for all parameters instead of a dozen
//! element-wise ops per parameter, which is what makes `torch.optim.AdamW(fused=True)` fast on CUDA.

use crate::{ffi, Result, ShimError};
use tch::Tensor;
use torch_sys::C_tensor;

/// In-place AdamW step over parallel lists of params/grads/exp_avg/exp_avg_sq (CPU and CUDA).
///
/// Same update as `torch.optim.AdamW(fused=True)` without amsgrad: `param *= 1 - lr*weight_decay`, then the Adam
/// update with bias corrections for `step` (1-based: the count *including* this update). All lists must have the
/// same length; entry `i` of each list must share device, dtype and shape. Runs outside autograd.
#[allow(clippy::too_many_arguments)]
pub fn fused_adamw(
    params: &[Tensor],
    grads: &[Tensor],
    exp_avgs: &[Tensor],
    exp_avg_sqs: &[Tensor],
    step: i64,
    lr: f64,
    beta1: f64,
    beta2: f64,
    weight_decay: f64,
    eps: f64,
) -> Result<()> {
    let count = params.len();
    if grads.len() != count || exp_avgs.len() != count || exp_avg_sqs.len() != count {
        return Err(ShimError::InvalidArgument(format!(
            "fused_adamw: list lengths differ (params {count}, grads {}, exp_avgs {}, exp_avg_sqs {})",
            grads.len(),
            exp_avgs.len(),
            exp_avg_sqs.len()
        )));
    }
    if step < 1 {
        return Err(ShimError::InvalidArgument(format!(
            "fused_adamw: step must be >= 1, got {step}"
        )));
    }
    for (i, grad) in grads.iter().enumerate() {
        if !grad.defined() {
            return Err(ShimError::InvalidArgument(format!(
                "fused_adamw: gradient {i} is undefined"
            )));
        }
        // The CPU kernel trusts its inputs (a shape mismatch would read out of bounds), so check here.
        let p = &params[i];
        for (what, t) in [
            ("gradient", grad),
            ("exp_avg", &exp_avgs[i]),
            ("exp_avg_sq", &exp_avg_sqs[i]),
        ] {
            if t.size() != p.size() || t.kind() != p.kind() || t.device() != p.device() {
                return Err(ShimError::InvalidArgument(format!(
                    "fused_adamw: {what} {i} is {:?} {:?} on {:?}, its parameter {:?} {:?} on {:?}",
                    t.size(),
                    t.kind(),
                    t.device(),
                    p.size(),
                    p.kind(),
                    p.device()
                )));
            }
        }
    }
    let raw = |list: &[Tensor]| list.iter().map(|t| t.as_ptr() as *mut C_tensor).collect::<Vec<_>>();
    let (p, g, m, v) = (raw(params), raw(grads), raw(exp_avgs), raw(exp_avg_sqs));
    // SAFETY: every pointer is a live `at::Tensor*` borrowed from the slices for the duration of the call; the
    // kernel mutates tensor storage in place, which tch tensors allow through shared references (as tch's own
    // in-place ops do).
    ffi::check(unsafe {
        ffi::seekmath_fused_adamw(
            p.as_ptr(),
            g.as_ptr(),
            m.as_ptr(),
            v.as_ptr(),
            count as i64,
            step as f64,
            lr,
            beta1,
            beta2,
            weight_decay,
            eps,
        )
    })
}
