// Kernels for measurements only (scripts/gpu/decode_layer.py --prefetch / --down-split), not used by the engine:
// each tries one way to shorten the decode step, and docs/benchmarks.md ("Session 8") records what it gave.
// Compiled by NVRTC with common.cuh (SEEKMATH_KIND picks the element kind).
#include "common.cuh"

// Asks L2 to fetch the live K/V cache rows [starts[b], slots[b]) of a later layer (cache [B, KVH, S, D], rows of D
// contiguous), at most `max_bytes` per (row, K/V head, K or V) region, one block of 32 threads per region, each
// lane one chunk. `mode` 0: one bulk prefetch per lane (the TMA unit), 1: one `prefetch.global.L2` per 128-byte
// line. `evict_last`: the lines get the evict-last L2 policy. A prefetch is only a hint: it changes no value.
extern "C" __global__ void __launch_bounds__(32)
probe_prefetch_kv(const element_t* keys, const element_t* values, long long kv_batch_stride,
                  long long kv_head_stride, int head_dim, int kv_heads, const long long* starts,
                  const long long* slots, long long max_bytes, int mode, int evict_last) {
  const int region = blockIdx.x;
  const long long pair = region >> 1;
  const long long b = pair / kv_heads;
  const long long head = pair % kv_heads;
  const long long row_bytes = (long long)head_dim * sizeof(element_t);
  const char* base = reinterpret_cast<const char*>(((region & 1) ? values : keys) + b * kv_batch_stride +
                                                   head * kv_head_stride) +
                     starts[b] * row_bytes;
  long long bytes = (slots[b] - starts[b]) * row_bytes;
  bytes = (bytes < max_bytes ? bytes : max_bytes) & ~15LL;
  if (bytes <= 0) return;
  unsigned long long policy = 0;
  if (evict_last) asm volatile("createpolicy.fractional.L2::evict_last.b64 %0, 1.0;" : "=l"(policy));
  const int lane = threadIdx.x;
  if (mode == 0) {
    const long long chunk = ((bytes + 31) / 32 + 15) & ~15LL;
    const long long lo = lane * chunk, hi = lo + chunk < bytes ? lo + chunk : bytes;
    if (lo >= hi) return;
    if (evict_last)
      asm volatile("cp.async.bulk.prefetch.L2.global.L2::cache_hint [%0], %1, %2;" ::"l"(base + lo),
                   "r"((unsigned int)(hi - lo)), "l"(policy)
                   : "memory");
    else
      asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(base + lo), "r"((unsigned int)(hi - lo))
                   : "memory");
    return;
  }
  for (long long at = lane * 128LL; at < bytes; at += 32 * 128LL) {
    if (evict_last)
      asm volatile("prefetch.global.L2::evict_last [%0];" ::"l"(base + at));
    else
      asm volatile("prefetch.global.L2 [%0];" ::"l"(base + at));
  }
}

// x[b] += partials[0][b] + ... + partials[splits - 1][b] (f32 partial sums of a product split along K, [splits, B,
// C], rounded once: what cuBLAS's split-K reduction with beta = 1 computes), then out[b] = RMSNorm(x[b]) · weight.
// One block of 128 threads per row; thread t takes the same VEC-wide column chunks in the same order as the
// engine's seekmath_rms_norm (C = 128 · 4 · VEC at most), so the sums of squares round alike. Scalar accesses.
#if SEEKMATH_KIND == 0
#define PROBE_VEC 4
#else
#define PROBE_VEC 8
#endif
extern "C" __global__ void __launch_bounds__(128)
probe_add_rms_norm(element_t* x, long long row_stride, int width, const element_t* weight, float eps,
                   element_t* out, const float* partials, int splits, long long split_stride) {
  __shared__ float warp_sums[4];
  const long long b = blockIdx.x;
  element_t* row = x + b * row_stride;
  float sum = 0.0f;
  for (int k = 0; k < 4; ++k) {
    const int first = (k * 128 + threadIdx.x) * PROBE_VEC;
    for (int column = first; column < first + PROBE_VEC && column < width; ++column) {
      float acc = 0.0f;
      for (int s = 0; s < splits; ++s) acc += partials[s * split_stride + b * width + column];
      row[column] = from_float(acc + to_float(row[column]));
      const float v = to_float(row[column]);
      sum += v * v;
    }
  }
  for (int offset = 16; offset > 0; offset >>= 1) sum += __shfl_xor_sync(FULL_MASK, sum, offset);
  if ((threadIdx.x & 31) == 0) warp_sums[threadIdx.x >> 5] = sum;
  __syncthreads();
  const float scale = rsqrtf((warp_sums[0] + warp_sums[1] + warp_sums[2] + warp_sums[3]) / (float)width + eps);
  for (int k = 0; k < 4; ++k) {
    const int first = (k * 128 + threadIdx.x) * PROBE_VEC;
    for (int column = first; column < first + PROBE_VEC && column < width; ++column)
      out[b * (long long)width + column] = from_float(to_float(row[column]) * scale * to_float(weight[column]));
  }
}
