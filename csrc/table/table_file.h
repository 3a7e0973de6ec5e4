// An opened nb360 table: the mapped HDF5 file, its nb360 user-block header, and typed views of
// one run group (task, fidelity, seed) answering single and batched lookups.
//
// The user block (the first 4096 bytes, which HDF5 leaves to applications) holds a small header:
//   0  "NB360TBL"  8 bytes magic
//   8  u32         header format version (1)
//  12  u32         table schema version
//  16  u64         HDF5 address of the object header of the `/nb360_index` dataset (JSON, uint8)
//  24  u32         lookup3 checksum of bytes [0, 24)
// Everything else (where each dataset's bytes lie, shapes, types) is read from the HDF5
// metadata itself (hdf5_object.h); the JSON index names the runs, metrics and datasets.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "hdf5_object.h"
#include "mapped_file.h"

namespace nb360 {

constexpr std::uint32_t kHeaderFormatVersion = 1;
constexpr std::uint32_t kSchemaVersion = 1;  // the table schema this build reads (docs/table-format.md)
constexpr std::uint64_t kUserBlockSize = 4096;  // so large datasets can be page-aligned

class TableFile {
 public:
  explicit TableFile(const std::string& path);

  const MappedFile& file() const { return *file_; }
  const Superblock& superblock() const { return sb_; }
  std::uint32_t schema_version() const { return schema_version_; }
  std::uint64_t index_address() const { return index_address_; }

  // The dataset whose object header is at relative `address` (parsed once, then cached).
  DatasetInfo dataset(std::uint64_t address) const;
  // The raw bytes of a uint8 dataset (the JSON index).
  std::string bytes_of(std::uint64_t address) const;

 private:
  std::unique_ptr<MappedFile> file_;
  Superblock sb_;
  std::uint32_t schema_version_ = 0;
  std::uint64_t index_address_ = 0;
  mutable std::mutex mutex_;
  mutable std::map<std::uint64_t, DatasetInfo> cache_;
};

// One run group. arch_rows (A,) int32 maps each arch of the space to its row, or -1 when the run
// does not record it; curves (R, M, E) float32 with presence (R, M, E) uint8; scalars (R, S)
// float64 with presence (R, S) uint8. All lookups are read-only and thread-safe.
class RunView {
 public:
  RunView(std::shared_ptr<const TableFile> table, std::uint64_t arch_rows, std::uint64_t curves,
          std::uint64_t curves_present, std::uint64_t scalars, std::uint64_t scalars_present);

  std::int64_t num_archs() const { return archs_; }
  std::int64_t num_rows() const { return rows_; }
  std::int64_t num_metrics() const { return metrics_; }
  std::int64_t num_epochs() const { return epochs_; }
  std::int64_t num_scalars() const { return scalars_; }

  // One value; throws OutOfRangeError or MissingValueError.
  float get(std::int64_t arch, std::int64_t metric, std::int64_t epoch) const;
  // n lookups; values of missing entries are NaN with present[i] = 0. Each index array advances by
  // its stride (1, or 0 to broadcast one index). Returns -1, or the first position whose index is
  // out of range (nothing more is written then).
  std::int64_t gather(std::int64_t n, const std::int64_t* archs, std::int64_t arch_stride, const std::int64_t* metrics,
                      std::int64_t metric_stride, const std::int64_t* epochs, std::int64_t epoch_stride, float* values,
                      std::uint8_t* present) const;
  // One scalar (params, flops, ...); throws OutOfRangeError or MissingValueError.
  double scalar(std::int64_t arch, std::int64_t index) const;
  std::int64_t gather_scalars(std::int64_t n, const std::int64_t* archs, std::int64_t index, double* values,
                              std::uint8_t* present) const;

  // The row of an arch (-1 when not recorded); the arch must be in range.
  std::int64_t row(std::int64_t arch) const;

 private:
  void check(std::int64_t arch, std::int64_t metric, std::int64_t epoch) const;

  std::shared_ptr<const TableFile> table_;
  std::int64_t archs_ = 0, rows_ = 0, metrics_ = 0, epochs_ = 0, scalars_ = 0;
  const std::uint8_t* arch_rows_ = nullptr;
  const std::uint8_t* curves_ = nullptr;
  const std::uint8_t* curves_present_ = nullptr;
  const std::uint8_t* scalar_values_ = nullptr;
  const std::uint8_t* scalars_present_ = nullptr;
};

}  // namespace nb360
