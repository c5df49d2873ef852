// Split-K decode attention over the engine's head-major K/V cache, for grouped-query attention with one query
// token per row.
//
// Why a kernel: with one query token the step is a streaming read of K and V. SDPA's kernels (cuDNN flash,
// FlashAttention varlen) reach ~1.1-1.6 TB/s on it on an H200 at batch 256-512. Here each row's history is cut
// into splits of 64-key tiles, one block of two warps per (split, K/V head, row); a block copies its tiles into
// shared memory two deep with cp.async, so the next tile's loads fly while this one is computed, and scores and
// P·V run on tensor cores with fragments from ldmatrix and the keys on the MMAs' 16 rows (each simpler design was
// measured slower: scalar FMAs were compute-bound at cuDNN's speed, one tile per block left each block's load
// latency exposed, the query heads on the rows padded a group of 6-7 heads to 16 and took 119-159 registers;
// docs/benchmarks.md). Each warp keeps an online softmax over its 32 keys of every tile, the warps merge in shared
// memory, and with more than one split a second kernel merges the splits. All query heads of a K/V group share the
// block's K/V reads.
//
// Layout: q [B, H, D] (head h = kv_head * GROUP + j; any batch stride, heads and dims contiguous); K and V
// [B, KVH, S, D] with D contiguous and rows of D; row b attends to slots [starts[b], slots[b]] (its prompt was
// left-padded to start at starts[b]; slots[b] is the slot written by this step). Output [B, H, D], contiguous.
// Compiled by NVRTC with SEEKMATH_KIND 1 (bf16) or 2 (f16), HEAD_DIM (a multiple of 16, <= 128) and GROUP
// (1..16); the two stages take 2 * 2 * 64 * (HEAD_DIM + 8) * 2 bytes of dynamic shared memory (70 KB at 128,
// above the default 48 KB: the host raises the limit). WARPS and STAGES may be overridden for measurements
// (scripts/gpu/decode_tune.py); the host launches the defaults. Needs sm_80 or newer.

#include "common.cuh"

// A tile is TILE_KEYS = 64 keys (the host plans splits in these units), shared by the WARPS warps of a block:
// each warp scores and accumulates KEYS_PER_WARP of them, 16 keys per key block, with tensor-core MMAs (m16n8k16:
// 16 keys as rows, 8 query heads as columns, HEAD_TILES column tiles for groups above 8). Tiles load STAGES deep
// (cp.async). Two warps of 32 keys: with the keys on the rows a warp needs 64 registers (D = 64), and two warps
// were faster than four in 10 of 12 measured shapes (scripts/gpu/decode_tune.py --cold; docs/benchmarks.md).
#ifndef WARPS
#define WARPS 2
#endif
#ifndef STAGES
#define STAGES 2
#endif
#define TILE_KEYS 64
#define KEYS_PER_WARP (TILE_KEYS / WARPS)
#define THREADS (32 * WARPS)
#define KEY_BLOCKS (KEYS_PER_WARP / 16)
#define K_STEPS (HEAD_DIM / 16)
#define DIM_STEPS (HEAD_DIM / 16)
#define HEAD_TILES ((GROUP + 7) / 8)
// Row pitch of the shared tiles: 16 bytes of padding put consecutive rows 4 banks apart, so the eight row
// addresses of an ldmatrix hit distinct banks.
#define PITCH (HEAD_DIM + 8)
#define STAGE_ELEMS (2 * TILE_KEYS * PITCH)
// Splits per row the merge kernel accepts (the host never plans more: a split is at least one 64-key tile).
#define MAX_SPLITS 256

#if THREADS < NORM_LANES
#error "a block needs NORM_LANES threads for folded_norm_scale"
#endif
#if KEYS_PER_WARP != 16 && KEYS_PER_WARP != 32
#error "WARPS must be 2 or 4 (16 or 32 keys of a tile per warp)"
#endif

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

// Four 8x8 16-bit matrices from shared memory, one row address per lane (lanes 8i..8i+7 give matrix i's rows);
// with `transposed` each lane receives a column pair instead of a row pair.
template <bool transposed>
__device__ __forceinline__ void load_matrices(unsigned int* r, const kv_t* row) {
  const unsigned int address = (unsigned int)__cvta_generic_to_shared(row);
  if (transposed) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(address));
  } else {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(address));
  }
}

// The transpose of an 8x8 16-bit matrix held as a fragment (lane 4r + c: row r, columns 2c and 2c + 1).
__device__ __forceinline__ unsigned int transpose8x8(unsigned int x) {
  unsigned int r;
  asm volatile("movmatrix.sync.aligned.m8n8.trans.b16 %0, %1;\n" : "=r"(r) : "r"(x));
  return r;
}

// 16 bytes global -> shared without a register round trip, so all of a tile's loads are in flight at once.
__device__ __forceinline__ void copy16(void* shared_dst, const void* global_src) {
  unsigned int dst = (unsigned int)__cvta_generic_to_shared(shared_dst);
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(global_src));
}

// Starts copying the live rows [lo, hi) of one 64-key tile of K and V into a shared stage, zeroing the other rows
// (0 · V must stay 0, not NaN). The caller commits the copy group.
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
}

__device__ __forceinline__ void commit_copies() { asm volatile("cp.async.commit_group;\n" ::); }

// Per (row, K/V head, split): m = max score (log2 units), l = sum of exp2(score - m), acc = sum of
// exp2(score - m) * v over the keys of the split, for each of the GROUP query heads. A split is `tiles_per_split`
// tiles of TILE_KEYS keys, loaded STAGES deep; warp w takes keys [w * KEYS_PER_WARP, (w + 1) * KEYS_PER_WARP) of
// every tile, and the warps merge their states at the end. With one split the block writes the normalised output;
// otherwise part index = (row, K/V head, split) and the merge kernel finishes. Dynamic shared memory: STAGES *
// STAGE_ELEMS elements.
//
// With ROPE, `q` is the stacked q/k/v projection row (q_batch_stride its row stride; heads * HEAD_DIM query
// values, then the K/V heads' keys, then their values): the query heads are rotated (rope_at, rounded once) as
// their fragments load, and the block whose split holds slot slots[b] first writes this step's rotated key and its
// value into the cache there (what seekmath_rope_kv_write does unfused), so the step needs no separate kernel.
template <bool ROPE>
__device__ __forceinline__ void attention_partial(const kv_t* q, long long q_batch_stride, kv_t* keys, kv_t* values,
                                                  long long kv_batch_stride, long long kv_head_stride,
                                                  const long long* starts, const long long* slots, float scale_log2,
                                                  int tiles_per_split, float* part_max, float* part_sum,
                                                  float* part_acc, kv_t* final_out, const kv_t* cos, const kv_t* sin,
                                                  long long angle_row_stride, int heads, const kv_t* norm_input,
                                                  long long norm_row_stride, int norm_width, float norm_eps,
                                                  const kv_t* bias) {
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
  const kv_t* q_row = q + b * q_batch_stride;
  const kv_t* row_cos = ROPE ? cos + b * angle_row_stride : nullptr;
  const kv_t* row_sin = ROPE ? sin + b * angle_row_stride : nullptr;
  // Tiles of this split that hold live keys.
  const long long live_from = max(split_start, start), live_to = min(split_start + (long long)tiles_per_split * TILE_KEYS, end);
  const int first_tile = live_from < live_to ? (int)((live_from - split_start) / TILE_KEYS) : 0;
  const int tile_count = live_from < live_to ? (int)((live_to - 1 - split_start) / TILE_KEYS) + 1 - first_tile : 0;
  auto tile_bounds = [&](int tile, int* lo, int* hi) {
    const long long tile_start = split_start + (long long)(first_tile + tile) * TILE_KEYS;
    *lo = (int)max(start - tile_start, 0LL);
    *hi = (int)max(min(end - tile_start, (long long)TILE_KEYS), 0LL);
  };
  auto issue = [&](int tile) {  // one copy group per tile index, empty past the last tile
    if (tile < tile_count) {
      int lo, hi;
      tile_bounds(tile, &lo, &hi);
      const long long offset = (split_start + (long long)(first_tile + tile) * TILE_KEYS) * HEAD_DIM;
      load_tile(stages + (tile % STAGES) * STAGE_ELEMS, k_base + offset, v_base + offset, lo, hi);
    }
    commit_copies();
  };
  // With ROPE the block whose split holds the new slot writes this step's key and value there before any tile
  // that holds the slot is loaded. The first tiles that cannot hold it start loading now, so that their loads fly
  // while the norm factor below is computed.
  const bool writes_new_slot =
      ROPE && end - 1 >= split_start && end - 1 < split_start + (long long)tiles_per_split * TILE_KEYS;
  const int new_slot_tile = writes_new_slot ? (int)((end - 1 - split_start) / TILE_KEYS) - first_tile : -1;
  int issued = 0;
  while (issued < STAGES - 1 && issued != new_slot_tile) issue(issued++);

  // With ROPE the projection row as seekmath_rope_kv_write reads it: scaled by the folded input norm's factor
  // (the same reduction in both kernels, so the results are bit-identical), bias added.
  const Projected projected{q_row, bias,
                            ROPE ? folded_norm_scale(norm_input == nullptr ? nullptr : norm_input + b * norm_row_stride,
                                                     norm_width, norm_eps)
                                 : 1.0f};
  if (writes_new_slot) {
    // The barrier orders the stores before this block's later copies; no other block reads the slot in this step.
    const Projected key = projected.from((heads + kv_head) * HEAD_DIM);
    const Projected value = projected.from((heads + kv_heads + kv_head) * HEAD_DIM);
    const long long at = (end - 1) * HEAD_DIM;
    for (int i = threadIdx.x; i < HEAD_DIM; i += THREADS) {
      keys[b * kv_batch_stride + kv_head * kv_head_stride + at + i] =
          from_float(rope_at(key, row_cos, row_sin, i, HEAD_DIM / 2));
      values[b * kv_batch_stride + kv_head * kv_head_stride + at + i] = from_float(value[i]);
    }
    __syncthreads();
  }
  while (issued < STAGES - 1) issue(issued++);

  // The MMAs put keys on their 16 rows and query heads on their 8 columns (S^T = K·Q^T, then O^T = V^T·P^T), so
  // a group of up to 8 heads fills the columns instead of padding 16 rows. Query fragments (B operand, column j =
  // head head_tile * 8 + j, zero past GROUP), straight from global memory: the register of dims (dim, dim + 1).
  auto q_word = [&](int j, int dim) -> unsigned int {
    if (j >= GROUP) return 0u;
    const long long offset = (long long)(kv_head * GROUP + j) * HEAD_DIM;
    if (!ROPE) return *reinterpret_cast<const unsigned int*>(q_row + offset + dim);
    const Projected head = projected.from(offset);
    return pack(rope_at(head, row_cos, row_sin, dim, HEAD_DIM / 2), rope_at(head, row_cos, row_sin, dim + 1, HEAD_DIM / 2));
  };
  unsigned int qb[HEAD_TILES][K_STEPS][2];
#pragma unroll
  for (int t = 0; t < HEAD_TILES; ++t) {
#pragma unroll
    for (int s = 0; s < K_STEPS; ++s) {
      qb[t][s][0] = q_word(8 * t + group, 16 * s + 2 * quad);
      qb[t][s][1] = q_word(8 * t + group, 16 * s + 2 * quad + 8);
    }
  }

  // Running softmax state of this lane's two heads per head tile (8t + 2 quad + e), the same in every lane of a
  // column after the shuffles; out[d][t] holds O^T for dims 16d + group (+ 8) of those heads.
  float m[HEAD_TILES][2], l[HEAD_TILES][2];
  float out[DIM_STEPS][HEAD_TILES][4];
#pragma unroll
  for (int t = 0; t < HEAD_TILES; ++t) {
    m[t][0] = m[t][1] = NEG_INF;
    l[t][0] = l[t][1] = 0.0f;
#pragma unroll
    for (int d = 0; d < DIM_STEPS; ++d) out[d][t][0] = out[d][t][1] = out[d][t][2] = out[d][t][3] = 0.0f;
  }

  const int warp_key0 = warp * KEYS_PER_WARP;
  // ldmatrix row addresses of this lane: lanes 8i..8i+7 address the rows of matrix i.
  const int matrix = lane >> 3, matrix_row = lane & 7;
  for (int tile = 0; tile < tile_count; ++tile) {
    issue(tile + STAGES - 1);
    asm volatile("cp.async.wait_group %0;\n" ::"n"(STAGES - 1));
    __syncthreads();
    const kv_t* k_tile = stages + (tile % STAGES) * STAGE_ELEMS;
    const kv_t* v_tile = k_tile + TILE_KEYS * PITCH;
    int lo, hi;
    tile_bounds(tile, &lo, &hi);

    // S^T[key][head] for the warp's keys, 16 per key block: one ldmatrix.x4 gives the A fragment of a 16-dim step
    // (matrices: keys 0-7 / 8-15 of the block at dims 16s..16s+7, then at 16s+8..16s+15).
    float score[KEY_BLOCKS][HEAD_TILES][4];
#pragma unroll
    for (int k = 0; k < KEY_BLOCKS; ++k) {
#pragma unroll
      for (int t = 0; t < HEAD_TILES; ++t) score[k][t][0] = score[k][t][1] = score[k][t][2] = score[k][t][3] = 0.0f;
      const kv_t* k_row = &k_tile[(warp_key0 + 16 * k + 8 * (matrix & 1) + matrix_row) * PITCH + 8 * (matrix >> 1)];
#pragma unroll
      for (int s = 0; s < K_STEPS; ++s) {
        unsigned int ka[4];
        load_matrices<false>(ka, k_row + 16 * s);
#pragma unroll
        for (int t = 0; t < HEAD_TILES; ++t) mma(score[k][t], ka, qb[t][s][0], qb[t][s][1]);
      }
    }
    // Scale, mask keys outside [lo, hi), new column maxima (a column lives in the 8 lanes of one quad index).
    float tile_max[HEAD_TILES][2];
#pragma unroll
    for (int t = 0; t < HEAD_TILES; ++t) {
      tile_max[t][0] = tile_max[t][1] = NEG_INF;
#pragma unroll
      for (int k = 0; k < KEY_BLOCKS; ++k) {
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          const int key = warp_key0 + 16 * k + 8 * half + group;
          const bool live = key >= lo && key < hi;
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            float& v = score[k][t][2 * half + e];
            v = live ? v * scale_log2 : NEG_INF;
            tile_max[t][e] = fmaxf(tile_max[t][e], v);
          }
        }
      }
#pragma unroll
      for (int o = 4; o < 32; o <<= 1) {
        tile_max[t][0] = fmaxf(tile_max[t][0], __shfl_xor_sync(FULL_MASK, tile_max[t][0], o));
        tile_max[t][1] = fmaxf(tile_max[t][1], __shfl_xor_sync(FULL_MASK, tile_max[t][1], o));
      }
    }
#pragma unroll
    for (int t = 0; t < HEAD_TILES; ++t) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const float n = fmaxf(m[t][e], tile_max[t][e]);
        // Rescale what was accumulated under the old maximum (exp2(-inf) = 0 covers the first live tile).
        const float r = n == NEG_INF ? 1.0f : exp2f(m[t][e] - n);
        m[t][e] = n;
        l[t][e] *= r;
#pragma unroll
        for (int d = 0; d < DIM_STEPS; ++d) {
          out[d][t][e] *= r;
          out[d][t][2 + e] *= r;
        }
#pragma unroll
        for (int k = 0; k < KEY_BLOCKS; ++k) {
#pragma unroll
          for (int half = 0; half < 2; ++half) {
            float& v = score[k][t][2 * half + e];
            v = v == NEG_INF ? 0.0f : exp2f(v - n);
            l[t][e] += v;
          }
        }
      }
    }
    // O^T += V^T · P^T per key block: P^T's B fragment is the transpose of the scores' C fragment (movmatrix), and
    // one transposed ldmatrix.x4 gives V^T's A fragment of a 16-dim step (matrices: keys 0-7 at dims 16d..16d+7,
    // keys 0-7 at 16d+8.., keys 8-15 at 16d.., keys 8-15 at 16d+8..).
#pragma unroll
    for (int k = 0; k < KEY_BLOCKS; ++k) {
      unsigned int pb[HEAD_TILES][2];
#pragma unroll
      for (int t = 0; t < HEAD_TILES; ++t) {
        pb[t][0] = transpose8x8(pack(score[k][t][0], score[k][t][1]));
        pb[t][1] = transpose8x8(pack(score[k][t][2], score[k][t][3]));
      }
      const kv_t* v_row = &v_tile[(warp_key0 + 16 * k + 8 * (matrix >> 1) + matrix_row) * PITCH + 8 * (matrix & 1)];
#pragma unroll
      for (int d = 0; d < DIM_STEPS; ++d) {
        unsigned int va[4];
        load_matrices<true>(va, v_row + 16 * d);
#pragma unroll
        for (int t = 0; t < HEAD_TILES; ++t) mma(out[d][t], va, pb[t][0], pb[t][1]);
      }
    }
    __syncthreads();  // the stage is refilled STAGES tiles later
  }
  asm volatile("cp.async.wait_group 0;\n" ::);  // no copy may land in the stages reused below
#pragma unroll
  for (int t = 0; t < HEAD_TILES; ++t) {
#pragma unroll
    for (int o = 4; o < 32; o <<= 1) {
      l[t][0] += __shfl_xor_sync(FULL_MASK, l[t][0], o);
      l[t][1] += __shfl_xor_sync(FULL_MASK, l[t][1], o);
    }
  }

  // Merge the warps' states through shared memory (the stages are free now): warps 1.. hand their fragments over,
  // each in its own slot of [16 heads][HEAD_DIM] accumulators, [16] maxima, [16] sums.
  float* handover = reinterpret_cast<float*>(stages);
  const int slot_floats = 16 * HEAD_DIM + 32;
  __syncthreads();
  if (warp > 0) {
    float* acc = handover + (warp - 1) * slot_floats;
#pragma unroll
    for (int t = 0; t < HEAD_TILES; ++t) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int head = 8 * t + 2 * quad + e;
#pragma unroll
        for (int d = 0; d < DIM_STEPS; ++d) {
          acc[head * HEAD_DIM + 16 * d + group] = out[d][t][e];
          acc[head * HEAD_DIM + 16 * d + group + 8] = out[d][t][2 + e];
        }
        if (group == 0) {
          acc[16 * HEAD_DIM + head] = m[t][e];
          acc[16 * HEAD_DIM + 16 + head] = l[t][e];
        }
      }
    }
  }
  __syncthreads();
  if (warp > 0) return;
#pragma unroll
  for (int w = 1; w < WARPS; ++w) {
    const float* acc = handover + (w - 1) * slot_floats;
#pragma unroll
    for (int t = 0; t < HEAD_TILES; ++t) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int head = 8 * t + 2 * quad + e;
        const float other = acc[16 * HEAD_DIM + head];
        const float n = fmaxf(m[t][e], other);
        const float a = m[t][e] == NEG_INF ? 0.0f : exp2f(m[t][e] - n), b = other == NEG_INF ? 0.0f : exp2f(other - n);
        l[t][e] = l[t][e] * a + acc[16 * HEAD_DIM + 16 + head] * b;
        m[t][e] = n;
#pragma unroll
        for (int d = 0; d < DIM_STEPS; ++d) {
          out[d][t][e] = out[d][t][e] * a + acc[head * HEAD_DIM + 16 * d + group] * b;
          out[d][t][2 + e] = out[d][t][2 + e] * a + acc[head * HEAD_DIM + 16 * d + group + 8] * b;
        }
      }
    }
  }

  if (gridDim.x == 1) {
    // One split: this block has the whole row; write the normalised output, no merge kernel needed.
    kv_t* o = final_out + (b * kv_heads + kv_head) * GROUP * HEAD_DIM;
#pragma unroll
    for (int t = 0; t < HEAD_TILES; ++t) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int head = 8 * t + 2 * quad + e;
        if (head >= GROUP) continue;
        const float inverse = l[t][e] > 0.0f ? 1.0f / l[t][e] : 0.0f;
#pragma unroll
        for (int d = 0; d < DIM_STEPS; ++d) {
          o[head * HEAD_DIM + 16 * d + group] = from_float(out[d][t][e] * inverse);
          o[head * HEAD_DIM + 16 * d + group + 8] = from_float(out[d][t][2 + e] * inverse);
        }
      }
    }
    return;
  }
  const long long part = ((b * kv_heads + kv_head) * gridDim.x + split) * GROUP;
#pragma unroll
  for (int t = 0; t < HEAD_TILES; ++t) {
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const int head = 8 * t + 2 * quad + e;
      if (head >= GROUP) continue;
      if (group == 0) {
        part_max[part + head] = m[t][e];
        part_sum[part + head] = l[t][e];
      }
#pragma unroll
      for (int d = 0; d < DIM_STEPS; ++d) {
        part_acc[(part + head) * HEAD_DIM + 16 * d + group] = out[d][t][e];
        part_acc[(part + head) * HEAD_DIM + 16 * d + group + 8] = out[d][t][2 + e];
      }
    }
  }
}

extern "C" __global__ void __launch_bounds__(THREADS)
seekmath_decode_attention_partial(const kv_t* q, long long q_batch_stride, const kv_t* keys, const kv_t* values,
                                  long long kv_batch_stride, long long kv_head_stride, const long long* starts,
                                  const long long* slots, float scale_log2, int tiles_per_split, float* part_max,
                                  float* part_sum, float* part_acc, kv_t* final_out) {
  attention_partial<false>(q, q_batch_stride, const_cast<kv_t*>(keys), const_cast<kv_t*>(values), kv_batch_stride,
                           kv_head_stride, starts, slots, scale_log2, tiles_per_split, part_max, part_sum, part_acc,
                           final_out, nullptr, nullptr, 0, 0, nullptr, 0, 0, 0.0f, nullptr);
}

// The same with RoPE and the K/V cache write fused in (see attention_partial): `qkv` [B, (heads + 2 KVH) D],
// `cos`/`sin` [B, D] (rows `angle_row_stride` apart); `norm_input` (null: none), `norm_row_stride`, `norm_width`,
// `norm_eps` and `bias` (null: none) as for seekmath_rope_kv_write.
extern "C" __global__ void __launch_bounds__(THREADS)
seekmath_decode_attention_rope(const kv_t* qkv, long long qkv_row_stride, const kv_t* cos, const kv_t* sin,
                               long long angle_row_stride, int heads, kv_t* keys, kv_t* values,
                               long long kv_batch_stride, long long kv_head_stride, const long long* starts,
                               const long long* slots, float scale_log2, int tiles_per_split, float* part_max,
                               float* part_sum, float* part_acc, kv_t* final_out, const kv_t* norm_input,
                               long long norm_row_stride, int norm_width, float norm_eps, const kv_t* bias) {
  attention_partial<true>(qkv, qkv_row_stride, keys, values, kv_batch_stride, kv_head_stride, starts, slots,
                          scale_log2, tiles_per_split, part_max, part_sum, part_acc, final_out, cos, sin,
                          angle_row_stride, heads, norm_input, norm_row_stride, norm_width, norm_eps, bias);
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
