// Plain streaming reads for scripts/gpu/read_anchor.py: how fast an H200 reads the decode-attention kernel's bytes
// when nothing but loads is done with them (the anchor for that kernel). Loads are XOR-folded into one word per
// block so the compiler keeps them. READ_THREADS threads per block, UNROLL 16-byte loads in flight per thread.
#ifndef READ_THREADS
#define READ_THREADS 256
#endif
#ifndef UNROLL
#define UNROLL 8
#endif

// The live rows [starts[b], slots[b]] of K and V of one (K/V head, row) per block, from caches [B, KVH, S, D] of
// 16-bit elements (rows of `row_bytes`).
extern "C" __global__ void __launch_bounds__(READ_THREADS)
read_regions(const char* keys, const char* values, long long batch_stride, long long head_stride, int row_bytes,
             const long long* starts, const long long* slots, unsigned int* out) {
  const int head = blockIdx.x;
  const long long b = blockIdx.y;
  const long long from = starts[b] * row_bytes, to = (slots[b] + 1) * row_bytes;
  unsigned int folded = 0;
  for (int which = 0; which < 2; ++which) {
    const char* base = (which ? values : keys) + b * batch_stride + head * head_stride;
    for (long long at = from + threadIdx.x * 16LL; at < to; at += READ_THREADS * 16LL * UNROLL) {
      uint4 v[UNROLL];
#pragma unroll
      for (int u = 0; u < UNROLL; ++u) {
        const long long p = at + u * READ_THREADS * 16LL;
        v[u] = p < to ? __ldcs(reinterpret_cast<const uint4*>(base + p)) : make_uint4(0, 0, 0, 0);
      }
#pragma unroll
      for (int u = 0; u < UNROLL; ++u) folded ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
    }
  }
  if (folded == 0x9e3779b9u) out[blockIdx.y * gridDim.x + blockIdx.x] = folded;
}

// A flat buffer of `bytes` (a multiple of 16), grid-stride.
extern "C" __global__ void __launch_bounds__(READ_THREADS)
read_flat(const char* data, long long bytes, unsigned int* out) {
  unsigned int folded = 0;
  const long long stride = (long long)gridDim.x * READ_THREADS * 16LL;
  for (long long at = ((long long)blockIdx.x * READ_THREADS + threadIdx.x) * 16LL; at < bytes; at += stride * UNROLL) {
    uint4 v[UNROLL];
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      const long long p = at + u * stride;
      v[u] = p < bytes ? __ldcs(reinterpret_cast<const uint4*>(data + p)) : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) folded ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
  }
  if (folded == 0x9e3779b9u) out[blockIdx.x] = folded;
}
