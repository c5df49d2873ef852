// Split-K decode attention over the engine's head-major K/V cache, for grouped-query attention with one query
// token per row.
//
// Why a kernel: with one query token the step is a streaming read of K and V. SDPA's kernels (cuDNN flash,
// FlashAttention varlen) reach ~1.1-1.6 TB/s on it on an H200 at batch 256-512. Here each row's history is cut
// into splits of 64-key tiles, one block of two warps per (split, K/V head, row); a block copies its tiles into
// shared memory two deep with cp.async, so the next tile's loads fly while this one is computed, and scores and
// P·V run on tensor cores (each simpler design was measured slower: scalar FMAs were compute-bound at cuDNN's
// speed, one tile per block left each block's load latency exposed; docs/benchmarks.md). Each warp keeps an
// online softmax over its 32 keys of every tile, the two warps merge in shared memory, and with more than one
// split a second kernel merges the splits. All query heads of a K/V group share the block's K/V reads.
//
// Layout: q [B, H, D] (head h = kv_head * GROUP + j; any batch stride, heads and dims contiguous); K and V
// [B, KVH, S, D] with D contiguous and rows of D; row b attends to slots [starts[b], slots[b]] (its prompt was
// left-padded to start at starts[b]; slots[b] is the slot written by this step). Output [B, H, D], contiguous.
// Compiled by NVRTC with SEEKMATH_KIND 1 (bf16) or 2 (f16), HEAD_DIM (a multiple of 16, <= 128) and GROUP
// (1..16); the two stages take 2 * 2 * 64 * (HEAD_DIM + 8) * 2 bytes of dynamic shared memory (70 KB at 128,
// above the default 48 KB: the host raises the limit). Needs sm_80 or newer.

#include "common.cuh"

// Each warp scores and accumulates KEYS_PER_WARP keys of every tile with tensor-core MMAs (m16n8k16: the GROUP
// query heads are the 16 rows, padded with zeros); a tile is TILE_KEYS keys, one per block of WARPS warps.
#define KEYS_PER_WARP 32
#define WARPS 2
#define TILE_KEYS (KEYS_PER_WARP * WARPS)
#define THREADS (32 * WARPS)
#define KEY_TILES (KEYS_PER_WARP / 8)
#define K_STEPS (HEAD_DIM / 16)
#define DIM_TILES (HEAD_DIM / 8)
// Row pitch of the shared tiles: 16 bytes of padding put consecutive rows 4 banks apart, so fragment reads of eight
// rows hit distinct banks.
#define PITCH (HEAD_DIM + 8)
#define STAGE_ELEMS (2 * TILE_KEYS * PITCH)
// Splits per row the merge kernel accepts (the host never plans more: a split is at least one 64-key tile).
#define MAX_SPLITS 256

typedef element_t kv_t;

// Two floats as one register of two 16-bit values, `low` in the low half (the lower column of a fragment).
__device__ __forceinline__ unsigned int pack(float low, float high) {
  unsigned int r;
#if SEEKMATH_KIND == 1
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(high), "f"(low));
#else
  asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(high), "f"(low));
#endif
  return r;
}

// c += a · b for one m16n8k16 tile (fp32 accumulators).
__device__ __forceinline__ void mma(float* c, const unsigned int* a, unsigned int b0, unsigned int b1) {
#if SEEKMATH_KIND == 1
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
#else
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
#endif
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// 16 bytes global -> shared without a register round trip, so all of a tile's loads are in flight at once.
__device__ __forceinline__ void copy16(void* shared_dst, const void* global_src) {
  unsigned int dst = (unsigned int)__cvta_generic_to_shared(shared_dst);
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(global_src));
}

// Copies the live rows [lo, hi) of one 64-key tile of K and V into a shared stage, zeroing the other rows
// (0 · V must stay 0, not NaN).
__device__ __forceinline__ void load_tile(kv_t* stage, const kv_t* k_src, const kv_t* v_src, int lo, int hi) {
  kv_t* k_tile = stage;
  kv_t* v_tile = stage + TILE_KEYS * PITCH;
  for (int i = threadIdx.x; i < TILE_KEYS * (HEAD_DIM / 8); i += THREADS) {
    const int row = i / (HEAD_DIM / 8), col = (i % (HEAD_DIM / 8)) * 8;
    if (row >= lo && row < hi) {
      copy16(&k_tile[row * PITCH + col], k_src + row * HEAD_DIM + col);
      copy16(&v_tile[row * PITCH + col], v_src + row * HEAD_DIM + col);
    } else {
      *reinterpret_cast<uint4*>(&k_tile[row * PITCH + col]) = make_uint4(0, 0, 0, 0);
      *reinterpret_cast<uint4*>(&v_tile[row * PITCH + col]) = make_uint4(0, 0, 0, 0);
    }
  }
  asm volatile("cp.async.commit_group;\n" ::);
}

// Per (row, K/V head, split, warp): m = max score (log2 units), l = sum of exp2(score - m), acc = sum of
// exp2(score - m) * v over the warp's keys of the split, for each of the GROUP query heads. A split is
// `tiles_per_split` tiles of TILE_KEYS keys, loaded two stages deep so the next tile's copies fly while this one
// is computed; warp w takes keys 32w..32w+31 of every tile. Part index = split * WARPS + warp. Dynamic shared
// memory: 2 * STAGE_BYTES.
extern "C" __global__ void __launch_bounds__(THREADS)
seekmath_decode_attention_partial(const kv_t* q, long long q_batch_stride, const kv_t* keys, const kv_t* values,
                                  long long kv_batch_stride, long long kv_head_stride, const long long* starts,
                                  const long long* slots, float scale_log2, int tiles_per_split, float* part_max,
                                  float* part_sum, float* part_acc, kv_t* final_out) {
  const int split = blockIdx.x;
  const int kv_head = blockIdx.y, kv_heads = gridDim.y;
  const long long b = blockIdx.z;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int group = lane >> 2, quad = lane & 3;  // fragment row and column pair

  extern __shared__ __align__(16) kv_t stages[];

  const long long start = starts[b], end = slots[b] + 1;
  const long long split_start = (long long)split * tiles_per_split * TILE_KEYS;
  const kv_t* k_base = keys + b * kv_batch_stride + kv_head * kv_head_stride;
  const kv_t* v_base = values + b * kv_batch_stride + kv_head * kv_head_stride;
  // Tiles of this split that hold live keys.
  const long long live_from = max(split_start, start), live_to = min(split_start + (long long)tiles_per_split * TILE_KEYS, end);
  const int first_tile = live_from < live_to ? (int)((live_from - split_start) / TILE_KEYS) : 0;
  const int tile_count = live_from < live_to ? (int)((live_to - 1 - split_start) / TILE_KEYS) + 1 - first_tile : 0;
  auto tile_bounds = [&](int tile, int* lo, int* hi) {
    const long long tile_start = split_start + (long long)(first_tile + tile) * TILE_KEYS;
    *lo = (int)max(start - tile_start, 0LL);
    *hi = (int)max(min(end - tile_start, (long long)TILE_KEYS), 0LL);
  };
  if (tile_count > 0) {
    int lo, hi;
    tile_bounds(0, &lo, &hi);
    const long long offset = (split_start + (long long)first_tile * TILE_KEYS) * HEAD_DIM;
    load_tile(stages, k_base + offset, v_base + offset, lo, hi);
  }

  // Query fragments (rows = query heads of this K/V group, zero past GROUP), straight from global memory.
  const unsigned int* q_words =
      reinterpret_cast<const unsigned int*>(q + b * q_batch_stride + (long long)kv_head * GROUP * HEAD_DIM);
  unsigned int qa[K_STEPS][4];
#pragma unroll
  for (int s = 0; s < K_STEPS; ++s) {
    const int col = 8 * s + quad;
    qa[s][0] = group < GROUP ? q_words[group * (HEAD_DIM / 2) + col] : 0u;
    qa[s][1] = group + 8 < GROUP ? q_words[(group + 8) * (HEAD_DIM / 2) + col] : 0u;
    qa[s][2] = group < GROUP ? q_words[group * (HEAD_DIM / 2) + col + 4] : 0u;
    qa[s][3] = group + 8 < GROUP ? q_words[(group + 8) * (HEAD_DIM / 2) + col + 4] : 0u;
  }

  // Running softmax state of the warp's two fragment rows (heads `group` and `group + 8`).
  float m0 = NEG_INF, m1 = NEG_INF, l0 = 0.0f, l1 = 0.0f;
  float out[DIM_TILES][4];
#pragma unroll
  for (int d = 0; d < DIM_TILES; ++d) out[d][0] = out[d][1] = out[d][2] = out[d][3] = 0.0f;

  for (int tile = 0; tile < tile_count; ++tile) {
    kv_t* stage = stages + (tile & 1) * STAGE_ELEMS;
    if (tile + 1 < tile_count) {
      int lo, hi;
      tile_bounds(tile + 1, &lo, &hi);
      const long long offset = (split_start + (long long)(first_tile + tile + 1) * TILE_KEYS) * HEAD_DIM;
      load_tile(stages + ((tile + 1) & 1) * STAGE_ELEMS, k_base + offset, v_base + offset, lo, hi);
      asm volatile("cp.async.wait_group 1;\n" ::);
    } else {
      asm volatile("cp.async.wait_group 0;\n" ::);
    }
    __syncthreads();
    int lo, hi;
    tile_bounds(tile, &lo, &hi);
    const kv_t* k_tile = stage;
    const kv_t* v_tile = stage + TILE_KEYS * PITCH;

    // Scores S[head][key] for the warp's keys: key tile n holds keys 8n..8n+7 of the warp's 32.
    const int warp_key0 = warp * KEYS_PER_WARP;
    float score[KEY_TILES][4];
#pragma unroll
    for (int n = 0; n < KEY_TILES; ++n) {
      score[n][0] = score[n][1] = score[n][2] = score[n][3] = 0.0f;
      const unsigned int* k_words = reinterpret_cast<const unsigned int*>(&k_tile[(warp_key0 + 8 * n + group) * PITCH]);
#pragma unroll
      for (int s = 0; s < K_STEPS; ++s) mma(score[n], qa[s], k_words[8 * s + quad], k_words[8 * s + quad + 4]);
    }
    // Scale, mask keys outside [lo, hi), new row maxima (a row lives in the 4 lanes of a quad).
    float t0 = NEG_INF, t1 = NEG_INF;
#pragma unroll
    for (int n = 0; n < KEY_TILES; ++n) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int key = warp_key0 + 8 * n + 2 * quad + e;
        const bool live = key >= lo && key < hi;
        score[n][e] = live ? score[n][e] * scale_log2 : NEG_INF;
        score[n][e + 2] = live ? score[n][e + 2] * scale_log2 : NEG_INF;
        t0 = fmaxf(t0, score[n][e]);
        t1 = fmaxf(t1, score[n][e + 2]);
      }
    }
#pragma unroll
    for (int o = 1; o < 4; o <<= 1) {
      t0 = fmaxf(t0, __shfl_xor_sync(FULL_MASK, t0, o));
      t1 = fmaxf(t1, __shfl_xor_sync(FULL_MASK, t1, o));
    }
    const float n0 = fmaxf(m0, t0), n1 = fmaxf(m1, t1);
    // Rescale what was accumulated under the old maxima (exp2(-inf) = 0 covers the first live tile).
    const float r0 = n0 == NEG_INF ? 1.0f : exp2f(m0 - n0), r1 = n1 == NEG_INF ? 1.0f : exp2f(m1 - n1);
    m0 = n0;
    m1 = n1;
    l0 *= r0;
    l1 *= r1;
#pragma unroll
    for (int d = 0; d < DIM_TILES; ++d) {
      out[d][0] *= r0;
      out[d][1] *= r0;
      out[d][2] *= r1;
      out[d][3] *= r1;
    }
#pragma unroll
    for (int n = 0; n < KEY_TILES; ++n) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        score[n][e] = score[n][e] == NEG_INF ? 0.0f : exp2f(score[n][e] - m0);
        score[n][e + 2] = score[n][e + 2] == NEG_INF ? 0.0f : exp2f(score[n][e + 2] - m1);
        l0 += score[n][e];
        l1 += score[n][e + 2];
      }
    }
    // O += P · V: two key tiles make one A fragment (16 keys); V fragments from the shared tile.
#pragma unroll
    for (int k = 0; k < KEY_TILES / 2; ++k) {
      unsigned int pa[4] = {pack(score[2 * k][0], score[2 * k][1]), pack(score[2 * k][2], score[2 * k][3]),
                            pack(score[2 * k + 1][0], score[2 * k + 1][1]),
                            pack(score[2 * k + 1][2], score[2 * k + 1][3])};
      const kv_t* v0 = &v_tile[(warp_key0 + 16 * k + 2 * quad) * PITCH + group];
#pragma unroll
      for (int d = 0; d < DIM_TILES; ++d) {
        const kv_t* v = v0 + 8 * d;
        const unsigned int b0 = (unsigned int)v[0] | ((unsigned int)v[PITCH] << 16);
        const unsigned int b1 = (unsigned int)v[8 * PITCH] | ((unsigned int)v[9 * PITCH] << 16);
        mma(out[d], pa, b0, b1);
      }
    }
    __syncthreads();  // the stage is refilled two tiles later
  }
#pragma unroll
  for (int o = 1; o < 4; o <<= 1) {
    l0 += __shfl_xor_sync(FULL_MASK, l0, o);
    l1 += __shfl_xor_sync(FULL_MASK, l1, o);
  }

  // Merge the two warps' states through shared memory (the stages are free now): warp 1 hands its fragments over.
  float* handover = reinterpret_cast<float*>(stages);  // [16][HEAD_DIM] accumulators, then [16] maxima, [16] sums
  float* handover_max = handover + 16 * HEAD_DIM;
  float* handover_sum = handover_max + 16;
  const int row0 = group, row1 = group + 8;
  if (warp == 1) {
#pragma unroll
    for (int d = 0; d < DIM_TILES; ++d) {
      const int col = 8 * d + 2 * quad;
      *reinterpret_cast<float2*>(&handover[row0 * HEAD_DIM + col]) = make_float2(out[d][0], out[d][1]);
      *reinterpret_cast<float2*>(&handover[row1 * HEAD_DIM + col]) = make_float2(out[d][2], out[d][3]);
    }
    if (quad == 0) {
      handover_max[row0] = m0;
      handover_max[row1] = m1;
      handover_sum[row0] = l0;
      handover_sum[row1] = l1;
    }
  }
  __syncthreads();
  if (warp == 1) return;
  const float o0 = handover_max[row0], o1 = handover_max[row1];
  const float n0 = fmaxf(m0, o0), n1 = fmaxf(m1, o1);
  const float a0 = m0 == NEG_INF ? 0.0f : exp2f(m0 - n0), b0 = o0 == NEG_INF ? 0.0f : exp2f(o0 - n0);
  const float a1 = m1 == NEG_INF ? 0.0f : exp2f(m1 - n1), b1 = o1 == NEG_INF ? 0.0f : exp2f(o1 - n1);
  l0 = l0 * a0 + handover_sum[row0] * b0;
  l1 = l1 * a1 + handover_sum[row1] * b1;
#pragma unroll
  for (int d = 0; d < DIM_TILES; ++d) {
    const int col = 8 * d + 2 * quad;
    const float2 h0 = *reinterpret_cast<const float2*>(&handover[row0 * HEAD_DIM + col]);
    const float2 h1 = *reinterpret_cast<const float2*>(&handover[row1 * HEAD_DIM + col]);
    out[d][0] = out[d][0] * a0 + h0.x * b0;
    out[d][1] = out[d][1] * a0 + h0.y * b0;
    out[d][2] = out[d][2] * a1 + h1.x * b1;
    out[d][3] = out[d][3] * a1 + h1.y * b1;
  }

  if (gridDim.x == 1) {
    // One split: this block has the whole row; write the normalised output, no merge kernel needed.
    kv_t* o = final_out + (b * kv_heads + kv_head) * GROUP * HEAD_DIM;
    const float i0 = l0 > 0.0f ? 1.0f / l0 : 0.0f, i1 = l1 > 0.0f ? 1.0f / l1 : 0.0f;
#pragma unroll
    for (int d = 0; d < DIM_TILES; ++d) {
      const int col = 8 * d + 2 * quad;
      if (row0 < GROUP) *reinterpret_cast<unsigned int*>(&o[row0 * HEAD_DIM + col]) = pack(out[d][0] * i0, out[d][1] * i0);
      if (row1 < GROUP) *reinterpret_cast<unsigned int*>(&o[row1 * HEAD_DIM + col]) = pack(out[d][2] * i1, out[d][3] * i1);
    }
    return;
  }
  const long long part = ((b * kv_heads + kv_head) * gridDim.x + split) * GROUP;
  if (quad == 0) {
    if (row0 < GROUP) { part_max[part + row0] = n0; part_sum[part + row0] = l0; }
    if (row1 < GROUP) { part_max[part + row1] = n1; part_sum[part + row1] = l1; }
  }
#pragma unroll
  for (int d = 0; d < DIM_TILES; ++d) {
    const int col = 8 * d + 2 * quad;
    if (row0 < GROUP) *reinterpret_cast<float2*>(&part_acc[(part + row0) * HEAD_DIM + col]) = make_float2(out[d][0], out[d][1]);
    if (row1 < GROUP) *reinterpret_cast<float2*>(&part_acc[(part + row1) * HEAD_DIM + col]) = make_float2(out[d][2], out[d][3]);
  }
}

// Merges the splits of each (row, K/V head) when there is more than one: out = sum_s exp2(m_s - M) acc_s /
// sum_s exp2(m_s - M) l_s. One thread per output element; the per-split weights are computed once per head row.
extern "C" __global__ void __launch_bounds__(128)
seekmath_decode_attention_combine(const float* part_max, const float* part_sum, const float* part_acc, int splits,
                                  kv_t* out) {
  const int kv_head = blockIdx.x, kv_heads = gridDim.x;
  const long long b = blockIdx.y;
  const long long base = (b * kv_heads + kv_head) * splits;
  __shared__ float weight[GROUP][MAX_SPLITS];
  __shared__ float inverse_total[GROUP];
  if (threadIdx.x < GROUP) {
    const int j = threadIdx.x;
    float m = NEG_INF;
    for (int s = 0; s < splits; ++s) m = fmaxf(m, part_max[(base + s) * GROUP + j]);
    float total = 0.0f;
    for (int s = 0; s < splits; ++s) {
      const float ms = part_max[(base + s) * GROUP + j];
      const float w = ms == NEG_INF ? 0.0f : exp2f(ms - m);
      weight[j][s] = w;
      total += w * part_sum[(base + s) * GROUP + j];
    }
    inverse_total[j] = total > 0.0f ? 1.0f / total : 0.0f;
  }
  __syncthreads();
  for (int i = threadIdx.x; i < GROUP * HEAD_DIM; i += 128) {
    const int j = i / HEAD_DIM;
    float sum = 0.0f;
#pragma unroll 4
    for (int s = 0; s < splits; ++s) sum += weight[j][s] * part_acc[((base + s) * GROUP + j) * HEAD_DIM + i % HEAD_DIM];
    out[(b * kv_heads + kv_head) * GROUP * HEAD_DIM + i] = from_float(sum * inverse_total[j]);
  }
}
