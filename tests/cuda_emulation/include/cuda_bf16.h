// Host-emulation stand-in for CUDA's cuda_bf16.h: __nv_bfloat16 as the top 16 bits of a float,
// converted with round-to-nearest-even (as __float2bfloat16 does); NaN stays a quiet NaN.
// Hand-written: g++ 12 has no __bf16 arithmetic type to lean on.
#pragma once

#include <cstdint>
#include <cstring>

struct __nv_bfloat16 {
  std::uint16_t bits;
};

inline float __bfloat162float(__nv_bfloat16 h) {
  const std::uint32_t u = static_cast<std::uint32_t>(h.bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline __nv_bfloat16 __float2bfloat16(float v) {
  std::uint32_t u;
  std::memcpy(&u, &v, 4);
  __nv_bfloat16 h;
  if ((u & 0x7fffffffu) > 0x7f800000u) {
    h.bits = static_cast<std::uint16_t>((u >> 16) | 0x40u);
    return h;
  }
  u += 0x7fffu + ((u >> 16) & 1u);
  h.bits = static_cast<std::uint16_t>(u >> 16);
  return h;
}
