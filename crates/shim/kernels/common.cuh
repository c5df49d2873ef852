// Shared by the kernels in this folder (NVRTC supplies it as a header): the element kind a kernel reads, chosen
// at compile time by SEEKMATH_KIND (0 f32, 1 bf16, 2 f16), and its conversions to and from f32. No CUDA headers:
// 16-bit values travel as raw bits.
#pragma once

#define FULL_MASK 0xffffffffu
#define NEG_INF (-__int_as_float(0x7f800000))

#if SEEKMATH_KIND == 0
typedef float element_t;
__device__ __forceinline__ float to_float(element_t v) { return v; }
__device__ __forceinline__ element_t from_float(float f) { return f; }
#else
typedef unsigned short element_t;

__device__ __forceinline__ float to_float(element_t v) {
#if SEEKMATH_KIND == 1
  return __uint_as_float(((unsigned int)v) << 16);
#else
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(v));
  return f;
#endif
}

__device__ __forceinline__ element_t from_float(float f) {
  unsigned short h;
#if SEEKMATH_KIND == 1
  asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(f));
#else
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
#endif
  return h;
}
#endif

// Element i of a head `x` of `head_dim` = 2 * half elements after RoPE in transformers' rotate_half convention
// (cos/sin: the row's angles, head_dim each), in f32:
//   out[i] = x[i] cos[i] - x[i + half] sin[i],  out[i + half] = x[i + half] cos[i + half] + x[i] sin[i + half].
// Explicit roundings (no contraction into FMAs), so every kernel that rotates gives bit-identical results.
__device__ __forceinline__ float rope_at(const element_t* x, const element_t* cos, const element_t* sin, int i,
                                         int half) {
  const float rotated = i < half ? -to_float(x[i + half]) : to_float(x[i - half]);
  return __fadd_rn(__fmul_rn(to_float(x[i]), to_float(cos[i])), __fmul_rn(rotated, to_float(sin[i])));
}
