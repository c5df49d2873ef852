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

// An RMSNorm folded into the matrix product after it (the norm's weight multiplied into the product's weight
// columns, so the product reads the un-normalised row x): the factor rsqrt(mean(x²) + eps) of the norm's input row
// `x` (`width` elements) turns that product into the product of the normalised row. The block's first
// NORM_LANES threads reduce the row in a fixed order (16-byte loads, four in flight per thread), so every kernel
// gets the same bits whatever its block size, as long as it has at least NORM_LANES threads (RoPE inside
// attention and seekmath_rope_kv_write must agree exactly). Every thread must call it; each gets the factor. 1 when
// `x` is null (no norm folded).
#define NORM_LANES 64
__device__ __forceinline__ float folded_norm_scale(const element_t* x, int width, float eps) {
  __shared__ float warp_sums[NORM_LANES / 32];
  if (x == nullptr) return 1.0f;
  if (threadIdx.x < NORM_LANES) {
    constexpr int chunk = 16 / sizeof(element_t);
    const int lane = threadIdx.x;
    float sum = 0.0f;
    if (width % chunk == 0 && (reinterpret_cast<unsigned long long>(x) & 15) == 0) {
      union Pack {
        uint4 raw;
        element_t e[chunk];
      } held;
#pragma unroll 4
      for (int column = lane * chunk; column < width; column += NORM_LANES * chunk) {
        held.raw = *reinterpret_cast<const uint4*>(x + column);
#pragma unroll
        for (int j = 0; j < chunk; ++j) {
          const float v = to_float(held.e[j]);
          sum = __fadd_rn(sum, __fmul_rn(v, v));
        }
      }
    } else {
#pragma unroll 4
      for (int column = lane; column < width; column += NORM_LANES) {
        const float v = to_float(x[column]);
        sum = __fadd_rn(sum, __fmul_rn(v, v));
      }
    }
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) sum += __shfl_xor_sync(FULL_MASK, sum, offset);
    if ((lane & 31) == 0) warp_sums[lane >> 5] = sum;
  }
  __syncthreads();
  float total = 0.0f;
#pragma unroll
  for (int w = 0; w < NORM_LANES / 32; ++w) total += warp_sums[w];
  return rsqrtf(total / (float)width + eps);
}

// A row of a matrix product as the next op sees it: element i = values[i] · scale + bias[i] in f32 (`scale` from
// folded_norm_scale, 1 when no norm is folded; `bias` null when the product has none). With scale 1 and no bias
// this is values[i] exactly. Explicit roundings, like rope_at.
struct Projected {
  const element_t* values;
  const element_t* bias;
  float scale;

  __device__ __forceinline__ float operator[](int i) const {
    const float v = __fmul_rn(to_float(values[i]), scale);
    return bias == nullptr ? v : __fadd_rn(v, to_float(bias[i]));
  }
  // The same row from element n on (a head of a stacked q/k/v row).
  __device__ __forceinline__ Projected from(long long n) const {
    return Projected{values + n, bias == nullptr ? nullptr : bias + n, scale};
  }
};

// Element i of a head `x` of `head_dim` = 2 * half elements after RoPE in transformers' rotate_half convention
// (cos/sin: the row's angles, head_dim each), in f32:
//   out[i] = x[i] cos[i] - x[i + half] sin[i],  out[i + half] = x[i + half] cos[i + half] + x[i] sin[i + half].
// Explicit roundings (no contraction into FMAs), so every kernel that rotates gives bit-identical results.
__device__ __forceinline__ float rope_at(const Projected& x, const element_t* cos, const element_t* sin, int i,
                                         int half) {
  const float rotated = i < half ? -x[i + half] : x[i - half];
  return __fadd_rn(__fmul_rn(x[i], to_float(cos[i])), __fmul_rn(rotated, to_float(sin[i])));
}
