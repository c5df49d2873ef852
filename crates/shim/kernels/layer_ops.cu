// The elementwise parts of a decoder layer's decode step, one launch each.
//
// Why: with one token per row, a layer's elementwise work is a few hundred KB, so every ATen op of it costs its
// launch-and-drain time (2.5-5 µs on an H200 under graph replay), not its bytes. In ATen, RoPE over the stacked
// q/k heads plus the K/V cache write is five kernels (multiply, gather, multiply-add, two index copies) and SiLU·up
// is two; at 24 layers that is ~170 launches of a ~450-launch step for the 0.5B shape. Here each is one kernel.
//
// Both compute in f32 and round once to the element kind (SEEKMATH_KIND, see common.cuh); ATen rounds after every
// op in 16-bit kinds, so 16-bit results can differ from it by an ulp.

#include "common.cuh"

// RoPE in the rotate_half convention (transformers' Llama/Qwen2) on the query and key heads of one stacked q/k/v
// projection row per block, the rotated queries to `q_out` [N, H, D] (contiguous), the rotated key and the value to
// the K/V cache [N / T, KVH, S, D] at slot `slots[n * slot_stride]` of cache row n / T (cache rows of D contiguous).
// A decode step has one token per cache row (T = 1); a prefill passes its T tokens per row, token-major.
// With `norm_input` (row n at n * norm_row_stride, `norm_width` elements) the product was taken of the
// un-normalised rows with the input RMSNorm folded into its weights: each element is first scaled by the row's
// folded_norm_scale, then `bias` (the projection's, [(H + 2 KVH) D], or null) is added (see Projected).
//   out[i]     = x[i] cos[i]         - x[i + D/2] sin[i]
//   out[i+D/2] = x[i + D/2] cos[i+D/2] + x[i]   sin[i+D/2]          (0 <= i < D/2)
extern "C" __global__ void seekmath_rope_kv_write(const element_t* qkv, long long qkv_row_stride, const element_t* cos,
                                                  const element_t* sin, long long angle_row_stride, int heads,
                                                  int kv_heads, int head_dim, element_t* q_out, element_t* keys,
                                                  element_t* values, long long cache_batch_stride,
                                                  long long cache_head_stride, long long cache_slot_stride,
                                                  const long long* slots, int slot_stride, int tokens_per_row,
                                                  const element_t* norm_input, long long norm_row_stride,
                                                  int norm_width, float norm_eps, const element_t* bias) {
  const long long b = blockIdx.x;
  const int half = head_dim / 2;
  const float scale =
      folded_norm_scale(norm_input == nullptr ? nullptr : norm_input + b * norm_row_stride, norm_width, norm_eps);
  const Projected row{qkv + b * qkv_row_stride, bias, scale};
  const element_t* c = cos + b * angle_row_stride;
  const element_t* s = sin + b * angle_row_stride;
  const long long slot_offset = slots[b * slot_stride] * cache_slot_stride;
  const long long cache_row = (b / tokens_per_row) * cache_batch_stride + slot_offset;

  const int rotated_pairs = (heads + kv_heads) * half;
  for (int p = threadIdx.x; p < rotated_pairs; p += blockDim.x) {
    const int head = p / half, i = p - head * half;
    const Projected x = row.from(head * head_dim);
    element_t* dst = head < heads ? q_out + (b * heads + head) * head_dim
                                  : keys + cache_row + (head - heads) * cache_head_stride;
    dst[i] = from_float(rope_at(x, c, s, i, half));
    dst[i + half] = from_float(rope_at(x, c, s, i + half, half));
  }
  const Projected v = row.from((heads + kv_heads) * head_dim);
  const int value_elems = kv_heads * head_dim;
  for (int e = threadIdx.x; e < value_elems; e += blockDim.x) {
    const int head = e / head_dim, i = e - head * head_dim;
    values[cache_row + head * cache_head_stride + i] = from_float(v[e]);
  }
}

// SiLU(gate) · up for a stacked [gate; up] projection: `gate_up` [B, 2W] (row stride given, halves adjacent) to
// `out` [B, W] (contiguous). Grid (B, column blocks); each thread handles VEC consecutive columns when the row
// layout allows 16-byte accesses (`vectorized`), else one. With `norm_input` the product was taken of the
// un-normalised rows with the post-attention RMSNorm folded in: gate and up are scaled by the row's
// folded_norm_scale, and `bias` ([2W] or null) added, before the SiLU (see Projected).
#if SEEKMATH_KIND == 0
#define VEC 4
#else
#define VEC 8
#endif

// silu(g) · u. In 16-bit kinds with the fast exponential and division (ex2.approx, rcp.approx: a few f32 ulps, far
// below one 16-bit rounding), which made the kernel instruction-bound no more; f32 keeps expf and the IEEE division.
// SILU_FAST=0 selects the accurate form in every kind (a measurement switch).
#ifndef SILU_FAST
#define SILU_FAST 1
#endif
__device__ __forceinline__ float silu_times(float g, float u) {
#if SILU_FAST && SEEKMATH_KIND != 0
  return __fdividef(g, 1.0f + __expf(-g)) * u;
#else
  return g / (1.0f + expf(-g)) * u;
#endif
}

extern "C" __global__ void seekmath_silu_mul(const element_t* gate_up, long long row_stride, int width,
                                             int vectorized, element_t* out, const element_t* norm_input,
                                             long long norm_row_stride, int norm_width, float norm_eps,
                                             const element_t* bias) {
  const long long b = blockIdx.x;
  const element_t* norm_row = norm_input == nullptr ? nullptr : norm_input + b * norm_row_stride;
  const element_t* gate_row = gate_up + b * row_stride;
  element_t* dst = out + b * (long long)width;
  const int lane = blockIdx.y * blockDim.x + threadIdx.x;
  if (vectorized) {
    union Pack {
      uint4 raw;
      element_t e[VEC];
    } g, u, o;
    const int column = lane * VEC;
    // The loads fly while the norm factor is reduced.
    if (column < width) {
      g.raw = *reinterpret_cast<const uint4*>(gate_row + column);
      u.raw = *reinterpret_cast<const uint4*>(gate_row + width + column);
    }
    const float scale = folded_norm_scale(norm_row, norm_width, norm_eps);
    if (column >= width) return;
    if (bias == nullptr) {
#pragma unroll
      for (int k = 0; k < VEC; ++k)
        o.e[k] = from_float(silu_times(__fmul_rn(to_float(g.e[k]), scale), __fmul_rn(to_float(u.e[k]), scale)));
    } else {
#pragma unroll
      for (int k = 0; k < VEC; ++k) {
        const float gk = __fadd_rn(__fmul_rn(to_float(g.e[k]), scale), to_float(bias[column + k]));
        const float uk = __fadd_rn(__fmul_rn(to_float(u.e[k]), scale), to_float(bias[width + column + k]));
        o.e[k] = from_float(silu_times(gk, uk));
      }
    }
    *reinterpret_cast<uint4*>(dst + column) = o.raw;
  } else {
    const Projected gate{gate_row, bias, folded_norm_scale(norm_row, norm_width, norm_eps)};
    const Projected up = gate.from(width);
    for (int column = lane; column < width; column += gridDim.y * blockDim.x)
      dst[column] = from_float(silu_times(gate[column], up[column]));
  }
}

// RMSNorm of `x` [B, C] (row stride given, rows contiguous) into `out` [B, C] (contiguous): y = x · rsqrt(mean(x²) +
// eps) · weight, in f32 and rounded once, as at::_fused_rms_norm. One block per row; each thread holds VEC-wide
// chunks when the layout allows 16-byte accesses (`vectorized`), else strides over single elements.
#define NORM_THREADS 128
#define NORM_MAX_CHUNKS 4  // 128 threads x 4 chunks x 8 elements: C up to 4096 in 16-bit kinds (2048 in f32)

extern "C" __global__ void __launch_bounds__(NORM_THREADS)
seekmath_rms_norm(const element_t* x, long long row_stride, int width, const element_t* weight, float eps,
                  int vectorized, element_t* out) {
  __shared__ float warp_sums[NORM_THREADS / 32];
  const long long b = blockIdx.x;
  const element_t* row = x + b * row_stride;
  element_t* dst = out + b * (long long)width;
  union Pack {
    uint4 raw;
    element_t e[VEC];
  };
  Pack held[NORM_MAX_CHUNKS];
  float sum = 0.0f;
  if (vectorized) {
#pragma unroll
    for (int k = 0; k < NORM_MAX_CHUNKS; ++k) {
      const int column = (k * NORM_THREADS + threadIdx.x) * VEC;
      if (column < width) {
        held[k].raw = *reinterpret_cast<const uint4*>(row + column);
#pragma unroll
        for (int j = 0; j < VEC; ++j) {
          const float v = to_float(held[k].e[j]);
          sum += v * v;
        }
      }
    }
  } else {
    for (int column = threadIdx.x; column < width; column += NORM_THREADS) {
      const float v = to_float(row[column]);
      sum += v * v;
    }
  }
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) sum += __shfl_xor_sync(FULL_MASK, sum, offset);
  if ((threadIdx.x & 31) == 0) warp_sums[threadIdx.x >> 5] = sum;
  __syncthreads();
  float total = 0.0f;
#pragma unroll
  for (int w = 0; w < NORM_THREADS / 32; ++w) total += warp_sums[w];
  const float scale = rsqrtf(total / (float)width + eps);
  if (vectorized) {
#pragma unroll
    for (int k = 0; k < NORM_MAX_CHUNKS; ++k) {
      const int column = (k * NORM_THREADS + threadIdx.x) * VEC;
      if (column < width) {
        Pack w, o;
        w.raw = *reinterpret_cast<const uint4*>(weight + column);
#pragma unroll
        for (int j = 0; j < VEC; ++j) o.e[j] = from_float(to_float(held[k].e[j]) * scale * to_float(w.e[j]));
        *reinterpret_cast<uint4*>(dst + column) = o.raw;
      }
    }
  } else {
    for (int column = threadIdx.x; column < width; column += NORM_THREADS)
      dst[column] = from_float(to_float(row[column]) * scale * to_float(weight[column]));
  }
}
