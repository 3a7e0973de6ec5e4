#include "checked_dataset.h"

#include <algorithm>
#include <cstdio>

#include "checksum.h"
#include "errors.h"
#include "sigbus_guard.h"

namespace nb360 {

std::uint64_t CheckedDataset::chunk_count(std::uint64_t nbytes, int shift) {
  const std::uint64_t size = std::uint64_t(1) << shift;
  return nbytes / size + (nbytes % size != 0 ? 1 : 0);
}

std::vector<std::uint64_t> chunk_checksums(const std::uint8_t* data, std::uint64_t nbytes, int shift) {
  const std::uint64_t size = std::uint64_t(1) << shift;
  std::vector<std::uint64_t> out;
  out.reserve(static_cast<std::size_t>(CheckedDataset::chunk_count(nbytes, shift)));
  for (std::uint64_t begin = 0; begin < nbytes; begin += size) {
    out.push_back(xxh64(data + begin, static_cast<std::size_t>(std::min(size, nbytes - begin))));
  }
  return out;
}

CheckedDataset::CheckedDataset(const MappedFile* file, const DatasetInfo& info, std::vector<std::uint64_t> expected,
                               int shift, std::string name)
    : file_(file), info_(info), expected_(std::move(expected)), shift_(shift), name_(std::move(name)) {
  data_ = info.nbytes != 0 ? file->data() + info.offset : nullptr;
  if (!expected_.empty()) {
    if (expected_.size() != chunk_count(info.nbytes, shift)) {
      throw FormatError("dataset " + name_ + " has " + std::to_string(chunk_count(info.nbytes, shift)) +
                        " chunks but the table records " + std::to_string(expected_.size()) +
                        " checksums for it: the file is corrupt");
    }
    verified_.reset(new std::atomic<std::uint8_t>[expected_.size()]);
    for (std::size_t k = 0; k < expected_.size(); ++k) verified_[k].store(0, std::memory_order_relaxed);
    all_verified_.store(false, std::memory_order_relaxed);
  }
}

void CheckedDataset::verify(std::uint64_t k) const {
  const std::uint64_t size = std::uint64_t(1) << shift_;
  const std::uint64_t begin = k * size;
  const std::uint64_t n = std::min(size, info_.nbytes - begin);
  std::uint64_t computed = 0;
  const std::uint8_t* bytes = data_ + begin;
  if (!guarded([&] { computed = xxh64(bytes, static_cast<std::size_t>(n)); })) {
    file_->changed("it shrank while being read");
  }
  if (computed != expected_[k]) {
    char hex[64];
    std::snprintf(hex, sizeof(hex), "%016llx, recorded %016llx", static_cast<unsigned long long>(computed),
                  static_cast<unsigned long long>(expected_[k]));
    throw FormatError("'" + file_->path() + "': dataset " + name_ + " is corrupt: its bytes [" + std::to_string(begin) + ", " +
                      std::to_string(begin + n) + ") fail their checksum (XXH64 " + hex +
                      "); download or re-create the table");
  }
  std::uint8_t expected_flag = 0;
  if (verified_[k].compare_exchange_strong(expected_flag, 1, std::memory_order_acq_rel)) {
    if (verified_count_.fetch_add(1, std::memory_order_acq_rel) + 1 == expected_.size()) {
      all_verified_.store(true, std::memory_order_release);
    }
  }
}

void CheckedDataset::verify_all() const {
  if (all_verified()) return;
  for (std::uint64_t k = 0; k < expected_.size(); ++k) {
    if (verified_[k].load(std::memory_order_acquire) == 0) verify(k);
  }
}

}  // namespace nb360
