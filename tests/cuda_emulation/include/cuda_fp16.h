// Host-emulation stand-in for CUDA's cuda_fp16.h: __half as IEEE binary16 bits, converted with
// round-to-nearest-even through the host compiler's _Float16 (the same rounding as __float2half).
#pragma once

#include <cstdint>
#include <cstring>

struct __half {
  std::uint16_t bits;
};

inline float __half2float(__half h) {
  _Float16 f;
  std::memcpy(&f, &h.bits, 2);
  return static_cast<float>(f);
}

inline __half __float2half(float v) {
  const _Float16 f = static_cast<_Float16>(v);
  __half h;
  std::memcpy(&h.bits, &f, 2);
  return h;
}
