// at::cuda::getDeviceProperties, declared here rather than through ATen/cuda/CUDAContextLight.h, which pulls in
// cuSPARSE/cuBLAS headers that need CUDA's C++ core library (CCCL) headers as well; the definition lives in
// libtorch_cuda. Include only when SEEKMATH_SHIM_CUDA is defined.
#pragma once

#include <c10/core/Device.h>
#include <c10/macros/Export.h>
#include <cuda_runtime_api.h>

namespace at::cuda {
TORCH_CUDA_CPP_API cudaDeviceProp* getDeviceProperties(c10::DeviceIndex device);
}
