//! Automatic mixed precision: inside an [`AutocastGuard`], matmuls and attention run in bf16 (or f16) while the
//! parameters stay f32, which is PyTorch's `torch.autocast` and the usual way to get "bf16 compute with f32 master
//! weights" without keeping two copies of the weights by hand.

use crate::{ffi, Result, ShimError};
use tch::{Device, Kind};

/// Enables autocast for a device type until dropped; guards nest like `torch.autocast` regions (the previous state
/// is restored on drop, and the weight-cast cache is cleared when the outermost region ends).
#[derive(Debug)]
pub struct AutocastGuard {
    cuda: bool,
    previous_enabled: i32,
    previous_dtype: i32,
}

impl AutocastGuard {
    /// Autocast on `device`'s type to `dtype` (`Kind::BFloat16` or `Kind::Half`).
    pub fn new(device: Device, dtype: Kind) -> Result<Self> {
        // c10::ScalarType codes.
        let code = match dtype {
            Kind::Half => 5,
            Kind::BFloat16 => 15,
            other => {
                return Err(ShimError::InvalidArgument(format!(
                    "autocast dtype must be Half or BFloat16, got {other:?}"
                )))
            }
        };
        let cuda = match device {
            Device::Cuda(_) => true,
            Device::Cpu => false,
            other => {
                return Err(ShimError::InvalidArgument(format!(
                    "autocast on {other:?} is not supported"
                )))
            }
        };
        let (mut previous_enabled, mut previous_dtype) = (0, 0);
        // SAFETY: toggles libtorch's thread-local autocast state; the out-pointers are live locals.
        ffi::check(unsafe {
            ffi::seekmath_autocast_enter(cuda as i32, code, &mut previous_enabled, &mut previous_dtype)
        })?;
        Ok(Self {
            cuda,
            previous_enabled,
            previous_dtype,
        })
    }

    /// Whether autocast is currently on for CUDA (`cuda = true`) or for CPU.
    pub fn is_active(cuda: bool) -> bool {
        // SAFETY: a read of thread-local state.
        unsafe { ffi::seekmath_autocast_is_enabled(cuda as i32) != 0 }
    }
}

impl Drop for AutocastGuard {
    fn drop(&mut self) {
        // SAFETY: restores the state saved by `new`; it cannot fail for CPU/CUDA device types, and drop cannot
        // report an error anyway.
        let _ = ffi::check(unsafe {
            ffi::seekmath_autocast_exit(self.cuda as i32, self.previous_enabled, self.previous_dtype)
        });
    }
}
