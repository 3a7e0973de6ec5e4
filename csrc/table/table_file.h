// An opened nb360 table: the mapped HDF5 file, its nb360 user-block header, and typed views of
// one run group (task, fidelity, seed) answering single and batched lookups.
//
// The user block (the first 4096 bytes, which HDF5 leaves to applications) holds a small header:
//   0  "NB360TBL"  8 bytes magic
//   8  u32         header format version (2; version 1 ends after byte 27)
//  12  u32         table schema version
//  16  u64         HDF5 address of the object header of the `/nb360_index` dataset (JSON, uint8)
//  24  u32         lookup3 checksum of bytes [0, 24)
//  28  u32         checksum algorithm of the index and the data chunks (1 = XXH64, seed 0)
//  32  u32         log2 of the chunk size of the data checksums
//  36  u32         reserved (0)
//  40  u64         length of the JSON index in bytes
//  48  u64         XXH64 of the JSON index
//  56  u32         lookup3 checksum of bytes [0, 56)
// Everything else (where each dataset's bytes lie, shapes, types) is read from the HDF5
// metadata itself (hdf5_object.h); the JSON index names the runs, metrics and datasets, and per
// run the HDF5 address and XXH64 of its `chunk_checksums` dataset (docs/table-format.md).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "checked_dataset.h"
#include "hdf5_object.h"
#include "mapped_file.h"

namespace nb360 {

constexpr std::uint32_t kHeaderFormatVersion = 2;
constexpr std::uint32_t kSchemaVersion = 1;  // the table schema this build reads (docs/table-format.md)
constexpr std::uint64_t kUserBlockSize = 4096;  // so large datasets can be page-aligned
constexpr std::uint32_t kChecksumXxh64 = 1;

class TableFile {
 public:
  // verify=false accepts tables of header version 1 (no checksums) and skips the checksums of
  // version 2: values of a corrupt file are then returned unchecked.
  explicit TableFile(const std::string& path, bool verify = true);

  const MappedFile& file() const { return *file_; }
  const Superblock& superblock() const { return sb_; }
  std::uint32_t schema_version() const { return schema_version_; }
  std::uint32_t header_version() const { return header_version_; }
  std::uint64_t index_address() const { return index_address_; }
  bool verifies() const { return verify_; }
  int chunk_shift() const { return chunk_shift_; }

  // The dataset whose object header is at relative `address` (parsed once, then cached).
  DatasetInfo dataset(std::uint64_t address) const;
  // The raw bytes of a uint8 dataset, read with pread.
  std::string bytes_of(std::uint64_t address) const;
  // The JSON index, checked against the header's XXH64 (version 2, verify=true).
  std::string index_json() const;

  // Every lookup starts here: throws ClosedError after close(), FileChangedError when the file on disk
  // changed. An fstat costs 0.25-1 µs (measured on the development VM), as much as a whole single
  // lookup, so single lookups (thorough=false) re-check the file at most once per millisecond and
  // batches (thorough=true) before and after every call; a truncation raises at once either way
  // (sigbus_guard.h), and arch rows live in checked private memory, so no read leaves the mapping.
  void enter(bool thorough = true) const {
    if (closed_.load(std::memory_order_acquire)) closed_error();
    if (thorough) {
      file_->check_unchanged();
    } else {
      file_->check_unchanged_now_and_then();
    }
  }
  // Marks the table closed: every later lookup, in every thread, raises ClosedError. The mapping is
  // released when the last view of it is gone (lookups in flight finish on valid memory).
  void close() { closed_.store(true, std::memory_order_release); }
  bool closed() const { return closed_.load(std::memory_order_acquire); }

 private:
  [[noreturn]] void closed_error() const;

  std::unique_ptr<MappedFile> file_;
  Superblock sb_;
  bool verify_ = true;
  std::uint32_t header_version_ = 0;
  std::uint32_t schema_version_ = 0;
  std::uint64_t index_address_ = 0;
  std::uint64_t index_length_ = 0;
  std::uint64_t index_xxh64_ = 0;
  int chunk_shift_ = 16;
  std::atomic<bool> closed_{false};
  mutable std::mutex mutex_;
  mutable std::map<std::uint64_t, DatasetInfo> cache_;
};

// One run group. arch_rows (A,) int32 maps each arch of the space to its row, or -1 when the run
// does not record it (copied into memory and validated once); curves (R, M, E) float32 with
// presence (R, M, E) uint8; scalars (R, S) float64 with presence (R, S) uint8 are read from the
// mapping, each chunk checked against its checksum on first touch. All lookups are thread-safe.
class RunView {
 public:
  // `addresses`: the object-header addresses of arch_rows, curves, curves_present, scalars and
  // scalars_present; `checksums`: the address of the run's chunk_checksums dataset and its XXH64
  // (from the checked index), ignored when the table does not verify.
  RunView(std::shared_ptr<const TableFile> table, const std::vector<std::uint64_t>& addresses,
          std::uint64_t checksums_address, std::uint64_t checksums_xxh64, const std::string& name);

  std::int64_t num_archs() const { return archs_; }
  std::int64_t num_rows() const { return rows_; }
  std::int64_t num_metrics() const { return metrics_; }
  std::int64_t num_epochs() const { return epochs_; }
  std::int64_t num_scalars() const { return scalars_; }

  // One value; throws OutOfRangeError or MissingValueError.
  float get(std::int64_t arch, std::int64_t metric, std::int64_t epoch) const;
  // n lookups; values of missing entries are NaN with present[i] = 0. Each index array advances by
  // its stride (1, or 0 to broadcast one index). Returns -1, or the first position whose index is
  // out of range (nothing more is written then). `single`: the gather is one small part of a single
  // query (the NATS facade builds one answer from a dozen of them), so the file is re-checked as a
  // single lookup re-checks it (at most once per millisecond) instead of by an fstat before and after
  // every gather, which cost more than the whole answer; reads stay guarded and checksummed.
  std::int64_t gather(std::int64_t n, const std::int64_t* archs, std::int64_t arch_stride, const std::int64_t* metrics,
                      std::int64_t metric_stride, const std::int64_t* epochs, std::int64_t epoch_stride, float* values,
                      std::uint8_t* present, bool single = false) const;
  // One scalar (params, flops, ...); throws OutOfRangeError or MissingValueError.
  double scalar(std::int64_t arch, std::int64_t index) const;
  std::int64_t gather_scalars(std::int64_t n, const std::int64_t* archs, std::int64_t index, double* values,
                              std::uint8_t* present, bool single = false) const;

  // The row of an arch (-1 when not recorded); the arch must be in range.
  std::int64_t row(std::int64_t arch) const { return rows_of_[static_cast<std::size_t>(arch)]; }
  const std::vector<std::int32_t>& arch_rows() const { return rows_of_; }
  // Checks every chunk of the run (before zero-copy views of it are handed out).
  void verify_all() const;

 private:
  void check(std::int64_t arch, std::int64_t metric, std::int64_t epoch) const;
  void finish_batch() const;

  std::shared_ptr<const TableFile> table_;
  std::string name_;
  std::int64_t archs_ = 0, rows_ = 0, metrics_ = 0, epochs_ = 0, scalars_ = 0;
  std::vector<std::int32_t> rows_of_;
  std::unique_ptr<CheckedDataset> curves_, curves_present_, scalar_values_, scalars_present_;
};

}  // namespace nb360
