// The libtorch calls that tch does not bind. Every entry point is `extern "C"`, catches all C++ exceptions and
// returns them as a heap-allocated message (null on success) that Rust frees with `seekmath_shim_free_error`.
// Tensors cross the boundary as `at::Tensor*`, which is exactly what tch's `C_tensor` pointer is.
//
// Built with SEEKMATH_SHIM_CUDA when the CUDA runtime headers are present; without them the CUDA entry points exist
// but return an error, so the crate (and everything above it) still builds on a machine with a CPU-only torch.

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <ATen/core/grad_mode.h>
#include <c10/core/Stream.h>

#include <cstring>
#include <string>
#include <vector>

#include "guard.h"

#ifdef SEEKMATH_SHIM_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/core/Event.h>
#include <cuda_runtime_api.h>

#include "device_properties.h"
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>
#include <optional>
#endif

namespace {

using seekmath_shim::guarded;

std::vector<at::Tensor> gather(at::Tensor** tensors, int64_t count) {
  std::vector<at::Tensor> out;
  out.reserve(count);
  for (int64_t i = 0; i < count; ++i) out.push_back(*tensors[i]);
  return out;
}

#ifdef SEEKMATH_SHIM_CUDA
// A capture needs its own stream (capturing on the legacy default stream is illegal); the guard restores the
// caller's stream when the capture ends.
struct GraphState {
  at::cuda::CUDAGraph graph;
  std::optional<c10::cuda::CUDAStream> previous;
  bool captured = false;
};
#endif

}  // namespace

extern "C" {

void seekmath_shim_free_error(char* message) { std::free(message); }

int seekmath_shim_has_cuda_support() {
#ifdef SEEKMATH_SHIM_CUDA
  return 1;
#else
  return 0;
#endif
}

// One AdamW step (decoupled weight decay) over parallel tensor lists, through the fused kernel. `step` is the
// 1-based step count after this update (PyTorch increments state_step before calling the kernel).
char* seekmath_fused_adamw(at::Tensor** params, at::Tensor** grads, at::Tensor** exp_avgs, at::Tensor** exp_avg_sqs,
                           int64_t count, double step, double lr, double beta1, double beta2, double weight_decay,
                           double eps) {
  return guarded([&] {
    if (count == 0) return;
    // The update is an in-place write to leaf tensors that require grad: outside autograd, as in torch.optim.
    at::NoGradGuard no_grad;
    auto p = gather(params, count);
    auto g = gather(grads, count);
    auto m = gather(exp_avgs, count);
    auto v = gather(exp_avg_sqs, count);
    // The kernel only reads the step tensors, so one per device is shared by every parameter on it.
    std::vector<at::Tensor> steps;
    steps.reserve(count);
    at::Tensor shared_step;
    for (int64_t i = 0; i < count; ++i) {
      if (!shared_step.defined() || shared_step.device() != p[i].device()) {
        shared_step = at::full({}, step, at::TensorOptions().dtype(at::kFloat).device(p[i].device()));
      }
      steps.push_back(shared_step);
    }
    at::_fused_adamw_(p, g, m, v, /*max_exp_avg_sqs=*/{}, steps, lr, beta1, beta2, weight_decay, eps,
                      /*amsgrad=*/false, /*maximize=*/false);
  });
}

// Enters an autocast region on CUDA (or CPU) with `dtype` (a c10::ScalarType code), reporting the previous state so
// that the exit restores it; mirrors torch.autocast.__enter__/__exit__.
char* seekmath_autocast_enter(int device_is_cuda, int dtype, int* previous_enabled, int* previous_dtype) {
  return guarded([&] {
    auto device_type = device_is_cuda ? at::kCUDA : at::kCPU;
    *previous_enabled = at::autocast::is_autocast_enabled(device_type) ? 1 : 0;
    *previous_dtype = static_cast<int>(at::autocast::get_autocast_dtype(device_type));
    at::autocast::set_autocast_dtype(device_type, static_cast<at::ScalarType>(dtype));
    at::autocast::set_autocast_enabled(device_type, true);
    at::autocast::increment_nesting();
  });
}

char* seekmath_autocast_exit(int device_is_cuda, int previous_enabled, int previous_dtype) {
  return guarded([&] {
    auto device_type = device_is_cuda ? at::kCUDA : at::kCPU;
    // Leaving the outermost region drops the cached low-precision weight copies.
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(device_type, previous_enabled != 0);
    at::autocast::set_autocast_dtype(device_type, static_cast<at::ScalarType>(previous_dtype));
  });
}

int seekmath_autocast_is_enabled(int device_is_cuda) {
  return at::autocast::is_autocast_enabled(device_is_cuda ? at::kCUDA : at::kCPU) ? 1 : 0;
}

// ---- CUDA streams -------------------------------------------------------------------------------------------
// A stream travels to Rust as its packed (id, device index, device type) triple.

char* seekmath_cuda_stream_from_pool(int device, int high_priority, int64_t* id, int64_t* device_index,
                                     int64_t* device_type) {
  return guarded([&] {
#ifdef SEEKMATH_SHIM_CUDA
    auto stream = c10::cuda::getStreamFromPool(high_priority != 0, static_cast<c10::DeviceIndex>(device));
    *id = stream.id();
    *device_index = stream.device_index();
    *device_type = static_cast<int64_t>(stream.unwrap().device_type());
#else
    (void)device, (void)high_priority, (void)id, (void)device_index, (void)device_type;
    throw std::runtime_error("seekmath-shim was built without CUDA headers");
#endif
  });
}

char* seekmath_cuda_current_stream(int device, int64_t* id, int64_t* device_index, int64_t* device_type) {
  return guarded([&] {
#ifdef SEEKMATH_SHIM_CUDA
    auto stream = c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(device));
    *id = stream.id();
    *device_index = stream.device_index();
    *device_type = static_cast<int64_t>(stream.unwrap().device_type());
#else
    (void)device, (void)id, (void)device_index, (void)device_type;
    throw std::runtime_error("seekmath-shim was built without CUDA headers");
#endif
  });
}

char* seekmath_cuda_set_current_stream(int64_t id, int64_t device_index, int64_t device_type) {
  return guarded([&] {
#ifdef SEEKMATH_SHIM_CUDA
    auto stream = c10::cuda::CUDAStream::unpack3(id, static_cast<c10::DeviceIndex>(device_index),
                                                 static_cast<c10::DeviceType>(device_type));
    c10::cuda::setCurrentCUDAStream(stream);
#else
    (void)id, (void)device_index, (void)device_type;
    throw std::runtime_error("seekmath-shim was built without CUDA headers");
#endif
  });
}

char* seekmath_stream_synchronize(int64_t id, int64_t device_index, int64_t device_type) {
  return guarded([&] {
    // c10::Stream::synchronize dispatches through the device guard, so no CUDA runtime symbol is needed here.
    c10::Stream::unpack3(id, static_cast<c10::DeviceIndex>(device_index), static_cast<c10::DeviceType>(device_type))
        .synchronize();
  });
}

// ---- CUDA graphs --------------------------------------------------------------------------------------------

char* seekmath_cuda_graph_new(void** out) {
  return guarded([&] {
#ifdef SEEKMATH_SHIM_CUDA
    *out = new GraphState();
#else
    (void)out;
    throw std::runtime_error("seekmath-shim was built without CUDA headers");
#endif
  });
}

void seekmath_cuda_graph_free(void* graph) {
#ifdef SEEKMATH_SHIM_CUDA
  delete static_cast<GraphState*>(graph);
#else
  (void)graph;
#endif
}

char* seekmath_cuda_graph_capture_begin(void* graph, int device) {
  return guarded([&] {
#ifdef SEEKMATH_SHIM_CUDA
    auto* state = static_cast<GraphState*>(graph);
    auto index = static_cast<c10::DeviceIndex>(device);
    state->previous = c10::cuda::getCurrentCUDAStream(index);
    auto side = c10::cuda::getStreamFromPool(false, index);
    // The side stream must see all work queued so far on the caller's stream.
    state->previous->unwrap().synchronize();
    c10::cuda::setCurrentCUDAStream(side);
    try {
      state->graph.capture_begin();
    } catch (...) {
      c10::cuda::setCurrentCUDAStream(*state->previous);
      state->previous.reset();
      throw;
    }
#else
    (void)graph, (void)device;
    throw std::runtime_error("seekmath-shim was built without CUDA headers");
#endif
  });
}

char* seekmath_cuda_graph_capture_end(void* graph) {
  return guarded([&] {
#ifdef SEEKMATH_SHIM_CUDA
    auto* state = static_cast<GraphState*>(graph);
    auto restore = [&] {
      if (state->previous) {
        c10::cuda::setCurrentCUDAStream(*state->previous);
        state->previous.reset();
      }
    };
    try {
      state->graph.capture_end();
    } catch (...) {
      restore();
      throw;
    }
    restore();
    state->captured = true;
#else
    (void)graph;
    throw std::runtime_error("seekmath-shim was built without CUDA headers");
#endif
  });
}

char* seekmath_cuda_graph_replay(void* graph) {
  return guarded([&] {
#ifdef SEEKMATH_SHIM_CUDA
    auto* state = static_cast<GraphState*>(graph);
    if (!state->captured) throw std::runtime_error("CUDA graph replayed before a capture ended");
    state->graph.replay();
#else
    (void)graph;
    throw std::runtime_error("seekmath-shim was built without CUDA headers");
#endif
  });
}

// ---- CUDA events ------------------------------------------------------------------------------------------
// c10::Event dispatches through c10_cuda's device guard (no CUDA runtime call is inlined here).

char* seekmath_cuda_event_new(void** out) {
  return guarded([&] {
#ifdef SEEKMATH_SHIM_CUDA
    *out = new c10::Event(c10::DeviceType::CUDA);
#else
    (void)out;
    throw std::runtime_error("seekmath-shim was built without CUDA headers");
#endif
  });
}

void seekmath_cuda_event_free(void* event) {
#ifdef SEEKMATH_SHIM_CUDA
  delete static_cast<c10::Event*>(event);
#else
  (void)event;
#endif
}

// Records the event on `device`'s current stream: it completes when the work queued there so far has.
char* seekmath_cuda_event_record(void* event, int device) {
  return guarded([&] {
#ifdef SEEKMATH_SHIM_CUDA
    static_cast<c10::Event*>(event)->record(c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(device)).unwrap());
#else
    (void)event, (void)device;
    throw std::runtime_error("seekmath-shim was built without CUDA headers");
#endif
  });
}

// Blocks the host until the last recorded work of the event has run (returns at once if never recorded).
char* seekmath_cuda_event_synchronize(void* event) {
  return guarded([&] {
#ifdef SEEKMATH_SHIM_CUDA
    static_cast<c10::Event*>(event)->synchronize();
#else
    (void)event;
    throw std::runtime_error("seekmath-shim was built without CUDA headers");
#endif
  });
}

// Writes the device's marketing name (e.g. "NVIDIA H200") into `buffer` (NUL-terminated, truncated to `size`).
char* seekmath_cuda_device_name(int device, char* buffer, int size) {
  return guarded([&] {
#ifdef SEEKMATH_SHIM_CUDA
    const cudaDeviceProp* prop = at::cuda::getDeviceProperties(static_cast<c10::DeviceIndex>(device));
    std::strncpy(buffer, prop->name, static_cast<size_t>(size) - 1);
    buffer[size - 1] = '\0';
#else
    (void)device, (void)buffer, (void)size;
    throw std::runtime_error("seekmath-shim was built without CUDA headers");
#endif
  });
}

int seekmath_cuda_device_count() {
#ifdef SEEKMATH_SHIM_CUDA
  return static_cast<int>(c10::cuda::device_count());
#else
  return 0;
#endif
}

}  // extern "C"
