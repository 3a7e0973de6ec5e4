// A dataset of a mapped table whose bytes are trusted only after their chunk checksums matched.
//
// The dataset's bytes are cut into chunks of 2^shift bytes (the last one shorter); the table stores
// the XXH64 of each (docs/table-format.md, "Checksums"). A lookup calls ensure() on the bytes it is
// about to read: the first touch of a chunk hashes it (a few µs for 64 KiB) and marks it verified;
// later touches cost one relaxed atomic load. A mismatch raises FormatError naming the dataset,
// before any value from it is returned.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "hdf5_object.h"
#include "mapped_file.h"

namespace nb360 {

class CheckedDataset {
 public:
  CheckedDataset() = default;
  // `expected` holds one checksum per chunk, or is empty to trust the bytes unchecked (tables of
  // header version 1, opened with verify=False).
  CheckedDataset(const MappedFile* file, const DatasetInfo& info, std::vector<std::uint64_t> expected, int shift,
                 std::string name);

  const std::uint8_t* data() const { return data_; }
  const DatasetInfo& info() const { return info_; }
  const std::string& name() const { return name_; }

  // Verifies the chunk holding byte `offset` of the dataset (first touch only).
  void ensure(std::uint64_t offset) const {
    const std::uint64_t k = offset >> shift_;
    if (!all_verified_.load(std::memory_order_acquire) && verified_[k].load(std::memory_order_acquire) == 0) verify(k);
  }
  bool all_verified() const { return all_verified_.load(std::memory_order_acquire); }
  // Verifies every chunk (Table.arrays and Table.verify).
  void verify_all() const;

  // Number of chunks and their checksums, computed from bytes (the writer's side).
  static std::uint64_t chunk_count(std::uint64_t nbytes, int shift);

 private:
  void verify(std::uint64_t k) const;

  const MappedFile* file_ = nullptr;
  DatasetInfo info_;
  const std::uint8_t* data_ = nullptr;
  std::vector<std::uint64_t> expected_;
  int shift_ = 16;
  std::string name_;
  std::unique_ptr<std::atomic<std::uint8_t>[]> verified_;
  mutable std::atomic<std::uint64_t> verified_count_{0};
  mutable std::atomic<bool> all_verified_{true};
};

// The XXH64 of each 2^shift-byte chunk of [data, data + nbytes).
std::vector<std::uint64_t> chunk_checksums(const std::uint8_t* data, std::uint64_t nbytes, int shift);

}  // namespace nb360
