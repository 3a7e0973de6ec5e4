// A host emulation of the slice of the CUDA execution model nb360's kernels use, so their device
// code runs (and is tested) on GPU-less machines. Test-only: never linked into the package.
//
// What it models: a launch runs every block of the grid, one block at a time; a block's threads are
// fibers (ucontext) on one OS thread, switched only at __syncthreads and warp shuffles, always resuming
// the first runnable thread (ascending or descending thread index), so early warps run as far ahead
// as the barriers allow. __syncthreads waits for every live thread of the block, exited threads
// counting as arrived as on the hardware; a full-mask shuffle needs all 32 lanes of its warp.
// __shared__ variables are function statics, right because blocks never overlap (unlike the hardware,
// they keep their values from one block to the next). Launch configurations are checked against the
// hardware limits (1024 threads per block, grid y/z <= 65535) and refused through cudaGetLastError.
// What it catches: wrong indexing and reductions, missing barriers (a stale read in one of the two
// orders; the tests compare them bit for bit), barriers or shuffles in divergent code (reported as a
// deadlock, never hung on), shuffles after lanes exited, and illegal launches.
// What it cannot show: performance, the GPU memory model, and nvcc's code generation.
// Hand-written because CI has only g++: GPGPU-Sim needs the CUDA toolkit's PTX path and a GPU model,
// HIP-CPU would need the sources ported to HIP; this is the smallest model these kernels need.
#pragma once

#include <ucontext.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "cuda_runtime_api.h"

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  dim3() = default;
  dim3(unsigned x_, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}  // NOLINT: implicit, as in CUDA
};

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
// Blocks run one after another, so one static per __shared__ variable is the block's shared memory.
#define __shared__ static

namespace nb360_emu {

enum class Wait { kNone, kBlock, kWarp };
enum class Order { kAscending = 0, kDescending = 1 };

constexpr std::size_t kFiberStack = 256 * 1024;

struct Fiber {
  ucontext_t context{};
  dim3 thread_idx;
  bool done = false;
  Wait wait = Wait::kNone;
  std::uint64_t wait_generation = 0;
};

struct WarpState {
  unsigned lanes = 0, live = 0, arrived = 0;
  std::uint64_t generation = 0;
  alignas(8) unsigned char slots[2][32][8] = {};  // double-buffered shuffle exchange, by generation parity
};

struct BlockRun {
  void (*body)(void*) = nullptr;
  void* body_arg = nullptr;
  dim3 block_idx, block_dim, grid_dim;
  std::vector<Fiber> fibers;
  std::vector<WarpState> warps;
  ucontext_t scheduler{};
  int current = -1;
  unsigned live = 0, block_arrived = 0;
  std::uint64_t block_generation = 0;
  std::string error;
};

inline thread_local BlockRun* tl_run = nullptr;
inline thread_local cudaError_t tl_last_error = cudaSuccess;
inline thread_local Order tl_order = Order::kAscending;
inline thread_local std::string tl_emulator_error;  // first emulator-detected fault since the last reset
inline thread_local long tl_launches = 0;

inline BlockRun& run() { return *tl_run; }
inline Fiber& fiber() { return tl_run->fibers[tl_run->current]; }

inline void fail(const std::string& what) {
  if (tl_run->error.empty()) tl_run->error = what;
}

// Back to the scheduler; it resumes this fiber once its barrier's generation has moved on.
inline void block_until(Wait kind, std::uint64_t generation) {
  Fiber& f = fiber();
  f.wait = kind;
  f.wait_generation = generation;
  swapcontext(&f.context, &tl_run->scheduler);
}

inline void release_completed_barriers() {
  BlockRun& r = run();
  if (r.block_arrived > 0 && r.block_arrived == r.live) {
    r.block_arrived = 0;
    ++r.block_generation;
  }
  for (WarpState& w : r.warps) {
    if (w.arrived > 0 && w.arrived == w.live) {
      w.arrived = 0;
      ++w.generation;
    }
  }
}

inline void sync_block() {
  BlockRun& r = run();
  const std::uint64_t generation = r.block_generation;
  ++r.block_arrived;
  release_completed_barriers();
  block_until(Wait::kBlock, generation);
}

inline WarpState& my_warp() { return run().warps[fiber().thread_idx.x / 32]; }

// __shfl_down_sync over a full warp: every lane publishes its value, waits for the others, then reads
// lane + delta (its own value past the warp's end).
template <typename T>
T shfl_down(unsigned mask, T value, unsigned delta, int width) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "shuffle of a type wider than 8 bytes");
  WarpState& w = my_warp();
  const unsigned lane = fiber().thread_idx.x % 32;
  if (mask != 0xffffffffu || width != 32) fail("__shfl_down_sync: only full-warp masks and width 32 are emulated");
  if (w.live != w.lanes || w.lanes != 32)
    fail("a full-mask shuffle (__shfl_down_sync) in a warp where lanes have exited or do not exist (undefined on the GPU)");
  const std::uint64_t generation = w.generation;
  unsigned char(&buffer)[32][8] = w.slots[generation & 1];
  std::memcpy(buffer[lane], &value, sizeof(T));
  ++w.arrived;
  release_completed_barriers();
  block_until(Wait::kWarp, generation);
  const unsigned source = lane + delta;
  if (source >= 32) return value;
  T out;
  std::memcpy(&out, buffer[source], sizeof(T));
  return out;
}

inline void fiber_entry() {
  BlockRun& r = run();
  r.body(r.body_arg);
  Fiber& f = fiber();
  f.done = true;
  --r.live;
  WarpState& w = r.warps[f.thread_idx.x / 32];
  --w.live;
  if (w.arrived > 0) fail("a lane exited while the rest of its warp waits in a full-mask shuffle (undefined on the GPU)");
  release_completed_barriers();
  // Returning resumes uc_link: the scheduler.
}

inline bool runnable(const BlockRun& r, const Fiber& f) {
  if (f.done) return false;
  switch (f.wait) {
    case Wait::kNone: return true;
    case Wait::kBlock: return r.block_generation != f.wait_generation;
    case Wait::kWarp: return r.warps[f.thread_idx.x / 32].generation != f.wait_generation;
  }
  return false;
}

// Runs one block: its threads as fibers.
inline void run_block(BlockRun& r, unsigned threads) {
  static thread_local std::vector<std::unique_ptr<char[]>> stacks;
  while (stacks.size() < threads) stacks.emplace_back(new char[kFiberStack]);
  r.fibers.assign(threads, Fiber{});
  r.warps.assign((threads + 31) / 32, WarpState{});
  for (unsigned t = 0; t < threads; ++t) {
    Fiber& f = r.fibers[t];
    f.thread_idx = dim3(t % r.block_dim.x, (t / r.block_dim.x) % r.block_dim.y, t / (r.block_dim.x * r.block_dim.y));
    getcontext(&f.context);
    f.context.uc_stack.ss_sp = stacks[t].get();
    f.context.uc_stack.ss_size = kFiberStack;
    f.context.uc_link = &r.scheduler;
    makecontext(&f.context, fiber_entry, 0);
    WarpState& w = r.warps[t / 32];
    ++w.lanes;
    ++w.live;
  }
  r.live = threads;
  r.block_arrived = 0;
  BlockRun* outer = tl_run;
  tl_run = &r;
  // Eager schedule: always resume the first runnable thread in tl_order, so the first warps run as
  // far ahead of the others as the barriers let them; a missing barrier then shows as a stale read.
  while (r.live > 0 && r.error.empty()) {
    int next = -1;
    for (unsigned i = 0; i < threads; ++i) {
      const unsigned t = tl_order == Order::kAscending ? i : threads - 1 - i;
      if (runnable(r, r.fibers[t])) {
        next = static_cast<int>(t);
        break;
      }
    }
    if (next < 0) {
      fail("deadlock: threads wait at a barrier the others never reach (__syncthreads or a shuffle in divergent code)");
      break;
    }
    Fiber& f = r.fibers[next];
    f.wait = Wait::kNone;
    r.current = next;
    swapcontext(&r.scheduler, &f.context);
  }
  tl_run = outer;
}

inline bool valid_launch(const dim3& grid, const dim3& block) {
  const unsigned long long threads = 1ull * block.x * block.y * block.z;
  return grid.x >= 1 && grid.y >= 1 && grid.z >= 1 && grid.x <= 0x7fffffffu && grid.y <= 65535 &&
         grid.z <= 65535 && threads >= 1 && threads <= 1024 && block.z <= 64;
}

// kernel<<<grid, block, shared, stream>>>(args...) is rewritten to Launch(kernel, grid, block, shared, stream)(args...).
template <typename Kernel>
struct Launch {
  Kernel kernel;
  dim3 grid, block;
  std::size_t dynamic_shared;

  Launch(Kernel k, dim3 g, dim3 b, std::size_t shared = 0, cudaStream_t = nullptr)
      : kernel(k), grid(g), block(b), dynamic_shared(shared) {}

  template <typename... Args>
  void operator()(Args... args) const {
    ++tl_launches;
    if (dynamic_shared != 0) {
      tl_emulator_error = "dynamic shared memory is not emulated";
      return;
    }
    if (!valid_launch(grid, block)) {
      tl_last_error = cudaErrorInvalidConfiguration;
      return;
    }
    struct Call {
      Kernel kernel;
      std::tuple<Args...> args;
      static void invoke(void* self) {
        auto* c = static_cast<Call*>(self);
        std::apply(c->kernel, c->args);  // each thread gets the same by-value arguments, as in CUDA
      }
    } call{kernel, std::tuple<Args...>(args...)};
    const unsigned threads = block.x * block.y * block.z;
    BlockRun r;
    r.body = &Call::invoke;
    r.body_arg = &call;
    r.block_dim = block;
    r.grid_dim = grid;
    for (unsigned z = 0; z < grid.z; ++z)
      for (unsigned y = 0; y < grid.y; ++y)
        for (unsigned x = 0; x < grid.x; ++x) {
          r.block_idx = dim3(x, y, z);
          run_block(r, threads);
          if (!r.error.empty()) {
            if (tl_emulator_error.empty()) tl_emulator_error = r.error;
            tl_last_error = cudaErrorLaunchFailure;
            return;
          }
        }
  }
};

}  // namespace nb360_emu

#define threadIdx (::nb360_emu::fiber().thread_idx)
#define blockIdx (::nb360_emu::run().block_idx)
#define blockDim (::nb360_emu::run().block_dim)
#define gridDim (::nb360_emu::run().grid_dim)

inline void __syncthreads() { ::nb360_emu::sync_block(); }

template <typename T>
T __shfl_down_sync(unsigned mask, T value, unsigned delta, int width = 32) {
  return ::nb360_emu::shfl_down(mask, value, delta, width);
}

inline cudaError_t cudaGetLastError() {
  const cudaError_t e = ::nb360_emu::tl_last_error;
  ::nb360_emu::tl_last_error = cudaSuccess;
  return e;
}
