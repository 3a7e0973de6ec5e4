// Hand-written because no library on the build path exposes HDF5's metadata checksum, and
// verifying it is what lets the table core reject corrupted metadata instead of misreading it.
// Follows Bob Jenkins' public-domain lookup3.c (hashlittle), byte-at-a-time variant.
#include "checksum.h"

namespace nb360 {
namespace {

inline std::uint32_t rot(std::uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

inline void mix(std::uint32_t& a, std::uint32_t& b, std::uint32_t& c) {
  a -= c; a ^= rot(c, 4);  c += b;
  b -= a; b ^= rot(a, 6);  a += c;
  c -= b; c ^= rot(b, 8);  b += a;
  a -= c; a ^= rot(c, 16); c += b;
  b -= a; b ^= rot(a, 19); a += c;
  c -= b; c ^= rot(b, 4);  b += a;
}

inline void final_mix(std::uint32_t& a, std::uint32_t& b, std::uint32_t& c) {
  c ^= b; c -= rot(b, 14);
  a ^= c; a -= rot(c, 11);
  b ^= a; b -= rot(a, 25);
  c ^= b; c -= rot(b, 16);
  a ^= c; a -= rot(c, 4);
  b ^= a; b -= rot(a, 14);
  c ^= b; c -= rot(b, 24);
}

inline std::uint32_t word(const std::uint8_t* k) {
  return std::uint32_t(k[0]) | (std::uint32_t(k[1]) << 8) | (std::uint32_t(k[2]) << 16) | (std::uint32_t(k[3]) << 24);
}

}  // namespace

std::uint32_t lookup3(const std::uint8_t* k, std::size_t length, std::uint32_t initval) {
  std::uint32_t a, b, c;
  a = b = c = 0xdeadbeefU + static_cast<std::uint32_t>(length) + initval;
  while (length > 12) {
    a += word(k);
    b += word(k + 4);
    c += word(k + 8);
    mix(a, b, c);
    length -= 12;
    k += 12;
  }
  if (length == 0) return c;
  // The last 1..12 bytes, zero-padded (lookup3's switch with fall-through).
  std::uint8_t tail[12] = {0};
  for (std::size_t i = 0; i < length; ++i) tail[i] = k[i];
  a += word(tail);
  b += word(tail + 4);
  c += word(tail + 8);
  final_mix(a, b, c);
  return c;
}

}  // namespace nb360
