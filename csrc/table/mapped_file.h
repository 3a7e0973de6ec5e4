// A read-only memory map of a whole file, with bounds-checked access, copies of small regions
// through pread, and a check that the file on disk is still the one that was mapped.
//
// Shared by every lookup in nb360._table: pages live in the OS page cache, so many
// processes opening the same table share them, and opening costs one mmap() call.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace nb360 {

// A copy of the file bytes [base, base + bytes.size()).
struct Region {
  std::uint64_t base = 0;
  std::vector<std::uint8_t> bytes;
  std::uint64_t end() const { return base + bytes.size(); }
  const std::uint8_t* at(std::uint64_t offset) const { return bytes.data() + (offset - base); }
};

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // throws FileOpenError naming the path
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::string& path() const { return path_; }
  std::uint64_t size() const { return size_; }  // the size when opened
  const std::uint8_t* data() const { return data_; }
  int fd() const { return fd_; }  // the open file: reads of it see the mapped inode even after a rename

  // Copies [offset, offset + n) with pread (never through the mapping, so never a SIGBUS): metadata
  // is read this way. Throws FormatError when the range lies past the end of the file as opened, and
  // FileChangedError when the file has shrunk since.
  Region read(std::uint64_t offset, std::uint64_t n, const std::string& what) const;

  // Throws FileChangedError when the file on disk is no longer the one that was mapped (its size or
  // modification time differ): it was truncated or overwritten in place. Latches: once
  // changed, always changed. One fstat (~0.2 µs).
  void check_unchanged() const;
  // check_unchanged() at most once per kRecheckNs (a coarse clock read, ~10 ns, decides); in between
  // only the latched state is checked. For single lookups, which cost less than one fstat.
  void check_unchanged_now_and_then() const {
    if (changed_.load(std::memory_order_relaxed)) changed("");
    const std::int64_t now = coarse_now_ns();
    if (now - last_check_ns_.load(std::memory_order_relaxed) < kRecheckNs) return;
    last_check_ns_.store(now, std::memory_order_relaxed);
    check_unchanged();
  }
  static constexpr std::int64_t kRecheckNs = 1000000;  // 1 ms
  // Marks the file changed (a guarded read faulted) and throws FileChangedError.
  [[noreturn]] void changed(const std::string& how) const;

  // Drops this process's page-table entries for the mapping (madvise MADV_DONTNEED). The pages stay
  // in the OS page cache, shared by every process; the next access maps them again (a minor fault).
  void release_pages() const;

  // True when [offset, offset + nbytes) lies inside the file (overflow-safe).
  bool contains(std::uint64_t offset, std::uint64_t nbytes) const {
    return offset <= size_ && nbytes <= size_ - offset;
  }

 private:
  std::string path_;
  int fd_ = -1;  // kept open for check_unchanged
  std::uint64_t size_ = 0;
  const std::uint8_t* data_ = nullptr;
  static std::int64_t coarse_now_ns();
  std::int64_t mtime_ns_ = 0;
  mutable std::atomic<bool> changed_{false};
  mutable std::atomic<std::int64_t> last_check_ns_{0};
};

}  // namespace nb360
