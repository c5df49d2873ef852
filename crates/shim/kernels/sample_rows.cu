// One-pass token sampler for the decode step: one thread block of 1024 threads per row of logits.
//
// Why a kernel: in ATen the unfiltered temperature sampler is five passes over [B, V] (max, shift to f32, exp,
// block sums, running sums), ~0.45 ms of a 3 ms step at batch 256 with a 152k vocabulary on an H200. Here each
// row is read once from memory: every warp reduces 1024-token tiles to (max, sum of exp) pairs kept in shared
// memory (online softmax), the tile pairs give the row's totals, warp 0 finds the tile where u * total falls and
// then the token inside that tile (one more 1024-token read, from L2).
//
// The kernel is bound by the work of one row on one SM, not by bytes (~18 µs per row on an H200 however many loads
// are in flight, docs/benchmarks.md, sessions 7 and 9), so the per-logit work is kept to a fused multiply-add and
// one ex2 per weight, the running first maximum (three more instructions per logit) is tracked only when greedy,
// and the warp reductions come once per TILE logits (below).
//
// Semantics (those of the ATen sampler in crates/model/src/engine/sampler.rs, up to summation order and ex2):
//   weights w_i = exp((l_i - max) * inv_temperature); the token is the first i whose running sum of w exceeds
//   u * sum(w); greedy (flag) takes the first index of the maximum; the log-prob is l_token - logsumexp(l) at
//   temperature 1. Compiled by NVRTC with SEEKMATH_KIND 0 (f32), 1 (bf16) or 2 (f16) (see common.cuh).
//
// In a decode step (`slots` non-null) the kernel also does the step's bookkeeping that would otherwise be eight
// small ATen kernels (~15 µs of a 1.6 ms step at batch 256, scripts/gpu/decode_layer.py --epilogue): it picks each
// row's uniform from the row's table by the slot it is at, feeds the token back and advances the row's counters.

#include "common.cuh"

// A warp reduces TILE logits at a time, LANE_ELEMS consecutive ones per lane. Each tile ends in warp-wide
// reductions (max, then sums) whose shuffle latency, not the loads, bounded the kernel at 256-logit tiles: 1024
// took batch 256 x 152k from 44.8 to 29.0 µs on an H200 (scripts/gpu/decode_kernels.py --only sampler; more loads in
// flight per warp at 256 changed nothing). The host sizes shared memory for its kSamplerTile (csrc/decode_kernels.cpp,
// the same 1024); TILE may be overridden for measurements by a host that sizes it for the smaller tile.
#ifndef TILE
#define TILE 1024
#endif
#define LANE_ELEMS (TILE / 32)
#define WARPS 32
#define LOG2E 1.4426950408889634f

typedef element_t logit_t;

// LANE_ELEMS consecutive logits starting at `index` (-inf past the end of the row), 16 bytes per load when aligned.
__device__ __forceinline__ void load_lane(const logit_t* row, long long index, int vocab, bool aligned, float* out) {
  if (aligned && index + LANE_ELEMS <= vocab) {
#pragma unroll
    for (int c = 0; c < LANE_ELEMS / 8; ++c) {
      float* o = out + 8 * c;
#if SEEKMATH_KIND == 0
      const float4* p = reinterpret_cast<const float4*>(row + index + 8 * c);
      float4 a = p[0], b = p[1];
      o[0] = a.x; o[1] = a.y; o[2] = a.z; o[3] = a.w;
      o[4] = b.x; o[5] = b.y; o[6] = b.z; o[7] = b.w;
#else
      uint4 raw = *reinterpret_cast<const uint4*>(row + index + 8 * c);
      unsigned int words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        o[2 * k] = to_float((logit_t)(words[k] & 0xffffu));
        o[2 * k + 1] = to_float((logit_t)(words[k] >> 16));
      }
#endif
    }
  } else {
#pragma unroll
    for (int k = 0; k < LANE_ELEMS; ++k) {
      long long i = index + k;
      out[k] = i < vocab ? to_float(row[i]) : NEG_INF;
    }
  }
}

// exp((x - m) * scale) as 2^(x * scale_log2 - m_scaled), m_scaled = m * scale_log2: one FFMA and one MUFU.EX2
// (ex2.approx, relative error ~2^-22). x = -inf gives 0; callers never pass m = -inf (a tile or row of -inf only has
// zero weights, handled where m is found).
__device__ __forceinline__ float weight(float x, float scale_log2, float m_scaled) {
  float r;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(fmaf(x, scale_log2, -m_scaled)));
  return r;
}

// weight() for a maximum that may be -inf (then every x is -inf too and the weight is 0).
__device__ __forceinline__ float weight_or_zero(float x, float m, float scale_log2) {
  return m == NEG_INF ? 0.0f : weight(x, scale_log2, m * scale_log2);
}

extern "C" __global__ void __launch_bounds__(1024, 1)
seekmath_sample_rows(const logit_t* logits, long long row_stride, int vocab, const float* uniforms,
                     long long uniform_row_stride, float inv_temperature, int greedy, long long* tokens,
                     float* logprobs, long long* ids, long long* positions, long long* slots,
                     const long long* first_slot, double* packed) {
  extern __shared__ float shared[];
  const int tiles = (vocab + TILE - 1) / TILE;
  float* tile_max = shared;               // [tiles]
  float* tile_sum_t = shared + tiles;     // [tiles]: sum of exp((l - tile_max) * inv_temperature)
  float* tile_sum_1 = shared + 2 * tiles; // [tiles]: sum of exp(l - tile_max)
  __shared__ float warp_best_value[WARPS];
  __shared__ long long warp_best_index[WARPS];

  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const long long row_index = blockIdx.x;
  const logit_t* row = logits + row_index * row_stride;
  const bool aligned = (reinterpret_cast<unsigned long long>(row) % 16) == 0;
  const bool unit_temperature = inv_temperature == 1.0f;

  // Pass 1: per tile (max, sums), and each lane's first maximum.
  float best_value = NEG_INF;
  long long best_index = 0x7fffffffffffffffLL;
  const float scale_t = inv_temperature * LOG2E;
  for (int tile = warp; tile < tiles; tile += WARPS) {
    float x[LANE_ELEMS];
    const long long base = (long long)tile * TILE + lane * LANE_ELEMS;
    load_lane(row, base, vocab, aligned, x);
    float m = NEG_INF;
    if (greedy) {
#pragma unroll
      for (int k = 0; k < LANE_ELEMS; ++k) {
        if (x[k] > best_value) { best_value = x[k]; best_index = base + k; }
      }
    }
#pragma unroll
    for (int k = 0; k < LANE_ELEMS; ++k) m = fmaxf(m, x[k]);
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) m = fmaxf(m, __shfl_xor_sync(FULL_MASK, m, offset));
    float s_t = 0.0f, s_1 = 0.0f;
    if (m != NEG_INF) {  // uniform across the warp
      const float m_t = m * scale_t, m_1 = m * LOG2E;
#pragma unroll
      for (int k = 0; k < LANE_ELEMS; ++k) {
        s_t += weight(x[k], scale_t, m_t);
        if (!unit_temperature) s_1 += weight(x[k], LOG2E, m_1);
      }
    }
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) {
      s_t += __shfl_xor_sync(FULL_MASK, s_t, offset);
      s_1 += __shfl_xor_sync(FULL_MASK, s_1, offset);
    }
    if (lane == 0) {
      tile_max[tile] = m;
      tile_sum_t[tile] = s_t;
      tile_sum_1[tile] = unit_temperature ? s_t : s_1;
    }
  }
  // First maximum of the row: largest value, then smallest index.
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    float v = __shfl_xor_sync(FULL_MASK, best_value, offset);
    long long i = __shfl_xor_sync(FULL_MASK, best_index, offset);
    if (v > best_value || (v == best_value && i < best_index)) { best_value = v; best_index = i; }
  }
  if (lane == 0) { warp_best_value[warp] = best_value; warp_best_index[warp] = best_index; }
  __syncthreads();
  if (warp != 0) return;

  best_value = warp_best_value[lane];
  best_index = warp_best_index[lane];
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    float v = __shfl_xor_sync(FULL_MASK, best_value, offset);
    long long i = __shfl_xor_sync(FULL_MASK, best_index, offset);
    if (v > best_value || (v == best_value && i < best_index)) { best_value = v; best_index = i; }
  }
  if (best_index >= vocab) best_index = 0;  // not greedy, or an all -inf (or NaN) row

  // Tile weights in units of the row maximum; lane j owns a contiguous run of tiles so a scan over lanes gives
  // the running sums in vocabulary order.
  const int per_lane = (tiles + 31) / 32;
  const int first = lane * per_lane;
  const int last = min(first + per_lane, tiles);
  float row_max = NEG_INF;
  for (int t = first; t < last; ++t) row_max = fmaxf(row_max, tile_max[t]);
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) row_max = fmaxf(row_max, __shfl_xor_sync(FULL_MASK, row_max, offset));
  float lane_t = 0.0f, lane_1 = 0.0f;
  for (int t = first; t < last; ++t) {
    lane_t += tile_sum_t[t] * weight_or_zero(tile_max[t], row_max, scale_t);
    lane_1 += tile_sum_1[t] * weight_or_zero(tile_max[t], row_max, LOG2E);
  }
  float inclusive = lane_t;
#pragma unroll
  for (int offset = 1; offset < 32; offset <<= 1) {
    float up = __shfl_up_sync(FULL_MASK, inclusive, offset);
    if (lane >= offset) inclusive += up;
  }
  float total_1 = lane_1;
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) total_1 += __shfl_xor_sync(FULL_MASK, total_1, offset);
  const float total_t = __shfl_sync(FULL_MASK, inclusive, 31);

  long long token = best_index;
  if (!greedy) {
    // Row r's uniform: uniforms[r] alone, or in a decode step column slots[r] - first_slot + 1 of the row's table
    // (the index of the token being generated).
    const long long column = slots != nullptr ? slots[row_index] - first_slot[0] + 1 : 0;
    const float target = uniforms[row_index * uniform_row_stride + column] * total_t;
    // The lane whose run of tiles holds the target, then the tile inside that run (serial, at most per_lane).
    unsigned int over = __ballot_sync(FULL_MASK, inclusive > target);
    int tile = -1;
    float before = 0.0f;
    if (over != 0) {
      int owner = __ffs(over) - 1;
      if (lane == owner) {
        float running = inclusive - lane_t;
        for (int t = first; t < last; ++t) {
          float w = tile_sum_t[t] * weight_or_zero(tile_max[t], row_max, scale_t);
          if (running + w > target) { tile = t; break; }
          running += w;
        }
        if (tile < 0) tile = last - 1;
        before = running;
      }
      tile = __shfl_sync(FULL_MASK, tile, owner);
      before = __shfl_sync(FULL_MASK, before, owner);
    }
    if (tile >= 0) {
      // The token inside the tile: lane sums, a scan over lanes, then the element inside the lane.
      float x[LANE_ELEMS], w[LANE_ELEMS];
      long long base = (long long)tile * TILE + lane * LANE_ELEMS;
      load_lane(row, base, vocab, aligned, x);
      float lane_sum = 0.0f;
#pragma unroll
      for (int k = 0; k < LANE_ELEMS; ++k) { w[k] = weight_or_zero(x[k], row_max, scale_t); lane_sum += w[k]; }
      float scan = lane_sum;
#pragma unroll
      for (int offset = 1; offset < 32; offset <<= 1) {
        float up = __shfl_up_sync(FULL_MASK, scan, offset);
        if (lane >= offset) scan += up;
      }
      const float remaining = target - before;
      unsigned int hit = __ballot_sync(FULL_MASK, scan > remaining);
      long long choice = -1;
      if (hit != 0) {
        int owner = __ffs(hit) - 1;
        if (lane == owner) {
          float running = scan - lane_sum;
          for (int k = 0; k < LANE_ELEMS; ++k) {
            running += w[k];
            if (running > remaining && w[k] > 0.0f) { choice = base + k; break; }
          }
          // Rounding left nothing past `remaining` in this lane: its last positive weight.
          if (choice < 0) {
            for (int k = LANE_ELEMS - 1; k >= 0; --k) if (w[k] > 0.0f) { choice = base + k; break; }
          }
        }
        choice = __shfl_sync(FULL_MASK, choice, owner);
      } else {
        // The element sums of the tile fell just short of its tile weight: its last positive weight.
        unsigned int positive = 0;
        long long last_positive = -1;
        for (int k = LANE_ELEMS - 1; k >= 0; --k) if (w[k] > 0.0f) { last_positive = base + k; break; }
        positive = __ballot_sync(FULL_MASK, last_positive >= 0);
        if (positive != 0) choice = __shfl_sync(FULL_MASK, last_positive, 31 - __clz(positive));
      }
      if (choice >= 0) token = choice;
    }
  }
  if (lane == 0) {
    const float logprob = to_float(row[token]) - row_max - logf(total_1);
    if (tokens != nullptr) {
      tokens[row_index] = token;
      logprobs[row_index] = logprob;
    }
    if (slots != nullptr) {
      // The rest of the decode step (crates/model engine/state.rs): the token is fed back as the row's next input,
      // the row moves on a position and a cache slot, and (token, log-prob) land in the read-back buffer [2, B] f64.
      // Each row's counters are touched by its own block only, after its last read of them above.
      ids[row_index] = token;
      positions[row_index] += 1;
      slots[row_index] += 1;
      packed[row_index] = (double)token;
      packed[gridDim.x + row_index] = (double)logprob;
    }
  }
}
