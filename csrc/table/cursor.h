// A bounds-checked little-endian reader over a byte range of a Region (a pread copy of the file).
//
// Every read of file metadata goes through a Cursor, so a corrupt or truncated file raises
// FormatError instead of reading out of bounds. Positions are file offsets.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

#include "errors.h"
#include "mapped_file.h"

namespace nb360 {

class Cursor {
 public:
  // Reads file bytes [pos, end) from `region` (end is clipped to the region); `what` names the
  // structure in error messages.
  Cursor(const Region& region, std::uint64_t pos, std::uint64_t end, std::string what)
      : region_(&region), pos_(pos), end_(end < region.end() ? end : region.end()), what_(std::move(what)) {
  }

  std::uint64_t pos() const { return pos_; }
  std::uint64_t end() const { return end_; }
  std::uint64_t remaining() const { return pos_ <= end_ ? end_ - pos_ : 0; }

  void need(std::uint64_t n) const {
    if (pos_ < region_->base || pos_ > end_ || n > end_ - pos_) {
      throw FormatError(what_ + " is truncated or corrupt: needs " + std::to_string(n) + " more bytes at offset " +
                        std::to_string(pos_) + " but only " + std::to_string(remaining()) + " remain");
    }
  }

  // An unsigned little-endian integer of `nbytes` bytes (1..8).
  std::uint64_t u(int nbytes) {
    need(static_cast<std::uint64_t>(nbytes));
    std::uint64_t v = 0;
    const std::uint8_t* p = region_->at(pos_);
    for (int i = 0; i < nbytes; ++i) v |= std::uint64_t(p[i]) << (8 * i);
    pos_ += static_cast<std::uint64_t>(nbytes);
    return v;
  }
  std::uint8_t u8() { return static_cast<std::uint8_t>(u(1)); }
  std::uint16_t u16() { return static_cast<std::uint16_t>(u(2)); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(u(4)); }
  std::uint64_t u64() { return u(8); }

  const std::uint8_t* bytes(std::uint64_t n) {
    need(n);
    const std::uint8_t* p = region_->at(pos_);
    pos_ += n;
    return p;
  }
  void skip(std::uint64_t n) { bytes(n); }
  void seek(std::uint64_t pos) { pos_ = pos; }

 private:
  const Region* region_;
  std::uint64_t pos_;
  std::uint64_t end_;
  std::string what_;
};

}  // namespace nb360
