#include "mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <stdexcept>

#include "errors.h"

namespace nb360 {

namespace {
FileOpenError os_error(const std::string& what, const std::string& path) {
  return FileOpenError(what + " '" + path + "': " + std::strerror(errno));
}

std::int64_t nanoseconds(const struct timespec& t) { return std::int64_t(t.tv_sec) * 1000000000 + t.tv_nsec; }

std::int64_t mtime_ns(const struct stat& st) {
#ifdef __APPLE__
  return nanoseconds(st.st_mtimespec);
#else
  return nanoseconds(st.st_mtim);
#endif
}
}  // namespace

MappedFile::MappedFile(const std::string& path) : path_(path) {
  // O_NONBLOCK: opening a FIFO (or a device) must not wait for a writer; only regular files pass below.
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd_ < 0) throw os_error("cannot open", path);
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const FileOpenError error = os_error("cannot stat", path);
    ::close(fd_);
    throw error;
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd_);
    throw FileOpenError("not a regular file: '" + path + "' (a table is a plain .h5 file)");
  }
  size_ = static_cast<std::uint64_t>(st.st_size);
  mtime_ns_ = mtime_ns(st);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd_, 0);
    if (p == MAP_FAILED) {
      const FileOpenError error = os_error("cannot mmap", path);
      ::close(fd_);
      throw error;
    }
    data_ = static_cast<const std::uint8_t*>(p);
  }
}

Region MappedFile::read(std::uint64_t offset, std::uint64_t n, const std::string& what) const {
  if (!contains(offset, n)) {
    throw FormatError(what + " [" + std::to_string(offset) + ", +" + std::to_string(n) + ") lies past the end of the file (" +
                      std::to_string(size_) + " bytes): the file is truncated or corrupt");
  }
  Region region;
  region.base = offset;
  region.bytes.resize(static_cast<std::size_t>(n));
  std::uint64_t done = 0;
  while (done < n) {
    const ssize_t got = ::pread(fd_, region.bytes.data() + done, static_cast<std::size_t>(n - done),
                                static_cast<off_t>(offset + done));
    if (got < 0) {
      if (errno == EINTR) continue;
      throw FormatError("cannot read '" + path_ + "': " + std::strerror(errno));
    }
    if (got == 0) changed("it ended at byte " + std::to_string(offset + done) + " while reading " + what);
    done += static_cast<std::uint64_t>(got);
  }
  return region;
}

void MappedFile::check_unchanged() const {
  if (changed_.load(std::memory_order_relaxed)) changed("");
  struct stat st {};
  if (::fstat(fd_, &st) != 0) changed(std::string("fstat failed: ") + std::strerror(errno));
  if (static_cast<std::uint64_t>(st.st_size) != size_) {
    changed("its size went from " + std::to_string(size_) + " to " + std::to_string(st.st_size) + " bytes");
  }
  // Size and modification time, not the change time: deleting or renaming the file (or replacing it
  // by renaming a new one over it, as nb360's writer does) changes the ctime but keeps the mapped
  // inode and its content, which stay valid to read.
  if (mtime_ns(st) != mtime_ns_) changed("it was modified");
}

std::int64_t MappedFile::coarse_now_ns() {
  struct timespec t {};
#ifdef CLOCK_MONOTONIC_COARSE
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &t);  // Linux: vDSO, no system call
#else
  ::clock_gettime(CLOCK_MONOTONIC, &t);
#endif
  return nanoseconds(t);
}

void MappedFile::changed(const std::string& how) const {
  changed_.store(true, std::memory_order_relaxed);
  throw FileChangedError("the table file '" + path_ + "' changed on disk while it was open" +
                         (how.empty() ? std::string() : " (" + how + ")") +
                         ": open it again. Replace a table by writing a new file and renaming it over the old one "
                         "(as nb360 does), never by overwriting it in place (e.g. cp onto an open table)");
}

void MappedFile::release_pages() const {
  if (data_ != nullptr) ::madvise(const_cast<std::uint8_t*>(data_), size_, MADV_DONTNEED);
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<std::uint8_t*>(data_), size_);
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace nb360
