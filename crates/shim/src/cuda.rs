//! CUDA streams and CUDA graphs.
//!
//! A CUDA graph records a fixed sequence of kernel launches once and replays it with a single launch, removing the
//! per-kernel CPU overhead that dominates small-batch decoding and optimizer steps. Capture must run on a side
//! stream, which [`CudaGraph::capture`] arranges; tensors used inside the capture must keep their storage alive and
//! in place for as long as the graph is replayed (update them with `copy_`, never re-bind them).

use crate::{ffi, Result, ShimError};
use std::ffi::c_void;
use tch::Device;

/// Number of CUDA devices libtorch sees (0 without a GPU or without CUDA support in the shim).
pub fn cuda_device_count() -> usize {
    // SAFETY: a query that does not throw (c10::cuda::device_count is noexcept).
    unsafe { ffi::seekmath_cuda_device_count().max(0) as usize }
}

/// The name of CUDA device `index` (e.g. "NVIDIA H200"), used to look up its peak FLOP/s for MFU.
pub fn cuda_device_name(index: usize) -> Result<String> {
    let index = cuda_index(Device::Cuda(index))?;
    let mut buffer = vec![0 as std::ffi::c_char; 256];
    // SAFETY: the buffer outlives the call and its size is passed.
    ffi::check(unsafe { ffi::seekmath_cuda_device_name(index, buffer.as_mut_ptr(), buffer.len() as i32) })?;
    // SAFETY: the shim NUL-terminates within the buffer.
    Ok(unsafe { std::ffi::CStr::from_ptr(buffer.as_ptr()) }
        .to_string_lossy()
        .into_owned())
}

fn cuda_index(device: Device) -> Result<i32> {
    let index = match device {
        Device::Cuda(index) => index as i32,
        other => {
            return Err(ShimError::InvalidArgument(format!(
                "expected a CUDA device, got {other:?}"
            )))
        }
    };
    let count = cuda_device_count();
    if !crate::built_with_cuda() {
        return Err(ShimError::CudaUnavailable(
            "seekmath-shim was built without CUDA headers".into(),
        ));
    }
    if index as usize >= count {
        return Err(ShimError::CudaUnavailable(format!(
            "cuda:{index} requested but {count} CUDA device(s) visible"
        )));
    }
    Ok(index)
}

/// A CUDA stream (a handle; streams come from libtorch's pool and are never destroyed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CudaStream {
    id: i64,
    device_index: i64,
    device_type: i64,
}

impl CudaStream {
    /// A stream from libtorch's pool for `device` (round-robin over a fixed set, like `torch.cuda.Stream()`).
    pub fn from_pool(device: Device, high_priority: bool) -> Result<Self> {
        let index = cuda_index(device)?;
        let mut stream = Self {
            id: 0,
            device_index: 0,
            device_type: 0,
        };
        // SAFETY: out-pointers are fields of a live local.
        ffi::check(unsafe {
            ffi::seekmath_cuda_stream_from_pool(
                index,
                high_priority as i32,
                &mut stream.id,
                &mut stream.device_index,
                &mut stream.device_type,
            )
        })?;
        Ok(stream)
    }

    /// The stream that libtorch currently launches kernels on for `device`.
    pub fn current(device: Device) -> Result<Self> {
        let index = cuda_index(device)?;
        let mut stream = Self {
            id: 0,
            device_index: 0,
            device_type: 0,
        };
        // SAFETY: as in `from_pool`.
        ffi::check(unsafe {
            ffi::seekmath_cuda_current_stream(index, &mut stream.id, &mut stream.device_index, &mut stream.device_type)
        })?;
        Ok(stream)
    }

    /// Blocks until all work queued on this stream has finished.
    pub fn synchronize(&self) -> Result<()> {
        // SAFETY: the triple came from libtorch.
        ffi::check(unsafe { ffi::seekmath_stream_synchronize(self.id, self.device_index, self.device_type) })
    }

    /// Makes this the current stream of its device until the returned guard is dropped.
    pub fn make_current(&self) -> Result<StreamGuard> {
        let previous = Self::current(Device::Cuda(self.device_index as usize))?;
        set_current(self)?;
        Ok(StreamGuard { previous })
    }
}

fn set_current(stream: &CudaStream) -> Result<()> {
    // SAFETY: the triple came from libtorch.
    ffi::check(unsafe { ffi::seekmath_cuda_set_current_stream(stream.id, stream.device_index, stream.device_type) })
}

/// Restores the previously current stream when dropped.
#[derive(Debug)]
pub struct StreamGuard {
    previous: CudaStream,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let _ = set_current(&self.previous);
    }
}

/// A captured CUDA graph (`at::cuda::CUDAGraph`).
#[derive(Debug)]
pub struct CudaGraph {
    raw: *mut c_void,
    device: i32,
    captured: bool,
}

impl CudaGraph {
    /// An empty graph for `device`; fails with [`ShimError::CudaUnavailable`] without a usable GPU.
    pub fn new(device: Device) -> Result<Self> {
        let device = cuda_index(device)?;
        let mut raw = std::ptr::null_mut();
        // SAFETY: the out-pointer is a live local; ownership passes to `Self` and is released in `Drop`.
        ffi::check(unsafe { ffi::seekmath_cuda_graph_new(&mut raw) })?;
        Ok(Self {
            raw,
            device,
            captured: false,
        })
    }

    /// Records every kernel that `body` launches on this device (on a side stream that is current during `body`).
    /// Run `body` once or twice un-captured first (warm-up), as with `torch.cuda.graph`, so that lazy
    /// initialisation does not happen inside the capture.
    pub fn capture<R>(&mut self, body: impl FnOnce() -> R) -> Result<R> {
        if self.captured {
            return Err(ShimError::InvalidArgument("CUDA graph already captured".into()));
        }
        // SAFETY: `raw` is a live GraphState.
        ffi::check(unsafe { ffi::seekmath_cuda_graph_capture_begin(self.raw, self.device) })?;
        // End the capture even if `body` panics, so the caller's stream is restored.
        struct EndCapture(*mut c_void, bool);
        impl Drop for EndCapture {
            fn drop(&mut self) {
                if !self.1 {
                    // SAFETY: the capture begun above is still open.
                    let _ = ffi::check(unsafe { ffi::seekmath_cuda_graph_capture_end(self.0) });
                }
            }
        }
        let mut end = EndCapture(self.raw, false);
        let out = body();
        end.1 = true;
        // SAFETY: the capture begun above is still open.
        ffi::check(unsafe { ffi::seekmath_cuda_graph_capture_end(self.raw) })?;
        self.captured = true;
        Ok(out)
    }

    /// Launches the recorded kernels again (on the current stream).
    pub fn replay(&self) -> Result<()> {
        if !self.captured {
            return Err(ShimError::InvalidArgument("CUDA graph replayed before capture".into()));
        }
        // SAFETY: `raw` is a live, captured GraphState.
        ffi::check(unsafe { ffi::seekmath_cuda_graph_replay(self.raw) })
    }
}

impl Drop for CudaGraph {
    fn drop(&mut self) {
        // SAFETY: `raw` was allocated by `seekmath_cuda_graph_new` and is freed once.
        unsafe { ffi::seekmath_cuda_graph_free(self.raw) }
    }
}

/// A CUDA event (`c10::Event`): marks a point in a device's current stream that the host can wait for without
/// waiting for later work, e.g. a device-to-host copy queued before the next decode step.
#[derive(Debug)]
pub struct CudaEvent {
    raw: *mut c_void,
    device: i32,
}

impl CudaEvent {
    /// A new, unrecorded event for `device`; fails with [`ShimError::CudaUnavailable`] without a usable GPU.
    pub fn new(device: Device) -> Result<Self> {
        let device = cuda_index(device)?;
        let mut raw = std::ptr::null_mut();
        // SAFETY: the out-pointer is a live local; ownership passes to `Self` and is released in `Drop`.
        ffi::check(unsafe { ffi::seekmath_cuda_event_new(&mut raw) })?;
        Ok(Self { raw, device })
    }

    /// Marks the work queued so far on the device's current stream.
    pub fn record(&self) -> Result<()> {
        // SAFETY: `raw` is a live event.
        ffi::check(unsafe { ffi::seekmath_cuda_event_record(self.raw, self.device) })
    }

    /// Blocks until the work marked by the last [`CudaEvent::record`] has run.
    pub fn synchronize(&self) -> Result<()> {
        // SAFETY: `raw` is a live event.
        ffi::check(unsafe { ffi::seekmath_cuda_event_synchronize(self.raw) })
    }
}

impl Drop for CudaEvent {
    fn drop(&mut self) {
        // SAFETY: `raw` was allocated by `seekmath_cuda_event_new` and is freed once.
        unsafe { ffi::seekmath_cuda_event_free(self.raw) }
    }
}
