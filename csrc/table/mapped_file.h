// A read-only memory map of a whole file, with bounds-checked access.
//
// Shared by every lookup in nb360._table: pages live in the OS page cache, so many
// processes opening the same table share them, and opening costs one mmap() call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace nb360 {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // throws FileOpenError naming the path
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::string& path() const { return path_; }
  std::uint64_t size() const { return size_; }
  const std::uint8_t* data() const { return data_; }

  // Drops this process's page-table entries for the mapping (madvise MADV_DONTNEED). The pages stay
  // in the OS page cache, shared by every process; the next access maps them again (a minor fault).
  void release_pages() const;

  // True when [offset, offset + nbytes) lies inside the file (overflow-safe).
  bool contains(std::uint64_t offset, std::uint64_t nbytes) const {
    return offset <= size_ && nbytes <= size_ - offset;
  }

 private:
  std::string path_;
  std::uint64_t size_ = 0;
  const std::uint8_t* data_ = nullptr;
};

}  // namespace nb360
