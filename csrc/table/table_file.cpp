#include "table_file.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "checksum.h"
#include "cursor.h"
#include "errors.h"

namespace nb360 {
namespace {

const char kMagic[8] = {'N', 'B', '3', '6', '0', 'T', 'B', 'L'};

void expect(const DatasetInfo& d, char kind, int itemsize, std::size_t rank, const char* name) {
  if (d.kind != kind || d.itemsize != itemsize || d.shape.size() != rank) {
    std::string shape;
    for (auto s : d.shape) shape += (shape.empty() ? "" : ", ") + std::to_string(s);
    throw FormatError(std::string("run dataset '") + name + "' is " + d.dtype() + " with shape (" + shape +
                      "), expected " + kind + std::to_string(itemsize) + " of rank " + std::to_string(rank));
  }
}

std::string range_message(const char* what, std::int64_t value, std::int64_t size) {
  return std::string(what) + " " + std::to_string(value) + " is out of range [0, " + std::to_string(size) + ")";
}

template <typename T>
inline T load(const std::uint8_t* base, std::uint64_t index) {
  T v;
  std::memcpy(&v, base + index * sizeof(T), sizeof(T));  // alignment-safe; compiles to one load
  return v;
}

}  // namespace

TableFile::TableFile(const std::string& path) : file_(std::make_unique<MappedFile>(path)) {
  if (file_->size() < kUserBlockSize) {
    throw FormatError("'" + path + "' is too small to be an nb360 table (" + std::to_string(file_->size()) +
                      " bytes)");
  }
  if (std::memcmp(file_->data(), kMagic, 8) != 0) {
    const bool hdf5 = has_hdf5_signature(*file_);
    throw FormatError("'" + path + "' is not an nb360 table" +
                      (hdf5 ? " (it is an HDF5 file without the nb360 header: convert released NATS-Bench files "
                              "with `nb360 table import`)"
                            : " (no nb360 header)"));
  }
  Cursor c(file_->data(), 8, kUserBlockSize, "nb360 table header");
  const std::uint32_t header_version = c.u32();
  schema_version_ = c.u32();
  index_address_ = c.u64();
  const std::uint32_t stored = c.u32();
  if (stored != lookup3(file_->data(), 24)) throw FormatError("the nb360 table header of '" + path + "' is corrupt");
  if (header_version != kHeaderFormatVersion) {
    throw FormatError("'" + path + "' has nb360 header version " + std::to_string(header_version) +
                      "; this nb360 reads version " + std::to_string(kHeaderFormatVersion) + ": upgrade nb360");
  }
  if (schema_version_ != kSchemaVersion) {
    throw FormatError("'" + path + "' uses table schema version " + std::to_string(schema_version_) +
                      " but this nb360 reads version " + std::to_string(kSchemaVersion) +
                      ": upgrade nb360, or re-create the table with this one (`nb360 table import`)");
  }
  sb_ = read_superblock(*file_);
}

DatasetInfo TableFile::dataset(std::uint64_t address) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = cache_.find(address);
  if (it != cache_.end()) return it->second;
  DatasetInfo info = read_dataset(*file_, sb_, address);
  cache_.emplace(address, info);
  return info;
}

std::string TableFile::bytes_of(std::uint64_t address) const {
  const DatasetInfo d = dataset(address);
  if (d.kind != 'u' || d.itemsize != 1 || d.shape.size() != 1) throw FormatError("the table index is not a byte array");
  return std::string(reinterpret_cast<const char*>(file_->data() + d.offset), d.nbytes);
}

RunView::RunView(std::shared_ptr<const TableFile> table, std::uint64_t arch_rows, std::uint64_t curves,
                 std::uint64_t curves_present, std::uint64_t scalars, std::uint64_t scalars_present)
    : table_(std::move(table)) {
  const DatasetInfo r = table_->dataset(arch_rows);
  const DatasetInfo c = table_->dataset(curves);
  const DatasetInfo cp = table_->dataset(curves_present);
  const DatasetInfo s = table_->dataset(scalars);
  const DatasetInfo sp = table_->dataset(scalars_present);
  expect(r, 'i', 4, 1, "arch_rows");
  expect(c, 'f', 4, 3, "curves");
  expect(cp, 'u', 1, 3, "curves_present");
  expect(s, 'f', 8, 2, "scalars");
  expect(sp, 'u', 1, 2, "scalars_present");
  if (cp.shape != c.shape) throw FormatError("run datasets 'curves' and 'curves_present' differ in shape");
  if (sp.shape != s.shape) throw FormatError("run datasets 'scalars' and 'scalars_present' differ in shape");
  if (s.shape[0] != c.shape[0]) throw FormatError("run datasets 'curves' and 'scalars' differ in row count");
  constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max());
  for (auto d : c.shape) if (d > kMax) throw FormatError("run dataset dimension too large");
  if (s.shape[1] > kMax || r.shape[0] > kMax) throw FormatError("run dataset dimension too large");
  archs_ = static_cast<std::int64_t>(r.shape[0]);
  rows_ = static_cast<std::int64_t>(c.shape[0]);
  metrics_ = static_cast<std::int64_t>(c.shape[1]);
  epochs_ = static_cast<std::int64_t>(c.shape[2]);
  scalars_ = static_cast<std::int64_t>(s.shape[1]);
  const std::uint8_t* base = table_->file().data();
  arch_rows_ = base + r.offset;
  curves_ = base + c.offset;
  curves_present_ = base + cp.offset;
  scalar_values_ = base + s.offset;
  scalars_present_ = base + sp.offset;
  // Validate the row map once, so lookups can trust it.
  for (std::int64_t a = 0; a < archs_; ++a) {
    const std::int32_t row_of_a = load<std::int32_t>(arch_rows_, static_cast<std::uint64_t>(a));
    if (row_of_a < -1 || row_of_a >= rows_) {
      throw FormatError("run dataset 'arch_rows' maps arch " + std::to_string(a) + " to row " +
                        std::to_string(row_of_a) + ", outside [-1, " + std::to_string(rows_) + "): the file is corrupt");
    }
  }
}

std::int64_t RunView::row(std::int64_t arch) const {
  return load<std::int32_t>(arch_rows_, static_cast<std::uint64_t>(arch));
}

void RunView::check(std::int64_t arch, std::int64_t metric, std::int64_t epoch) const {
  if (arch < 0 || arch >= archs_) throw OutOfRangeError(range_message("arch index", arch, archs_));
  if (metric < 0 || metric >= metrics_) throw OutOfRangeError(range_message("metric index", metric, metrics_));
  if (epoch < 0 || epoch >= epochs_) throw OutOfRangeError(range_message("epoch", epoch, epochs_));
}

float RunView::get(std::int64_t arch, std::int64_t metric, std::int64_t epoch) const {
  check(arch, metric, epoch);
  const std::int64_t r = row(arch);
  const std::uint64_t flat = (static_cast<std::uint64_t>(r) * metrics_ + metric) * epochs_ + epoch;
  if (r < 0 || curves_present_[flat] == 0) {
    throw MissingValueError("not recorded: arch " + std::to_string(arch) + ", metric " + std::to_string(metric) +
                            ", epoch " + std::to_string(epoch));
  }
  return load<float>(curves_, flat);
}

std::int64_t RunView::gather(std::int64_t n, const std::int64_t* archs, std::int64_t arch_stride,
                             const std::int64_t* metrics, std::int64_t metric_stride, const std::int64_t* epochs,
                             std::int64_t epoch_stride, float* values, std::uint8_t* present) const {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t a = archs[i * arch_stride], m = metrics[i * metric_stride], e = epochs[i * epoch_stride];
    if (a < 0 || a >= archs_ || m < 0 || m >= metrics_ || e < 0 || e >= epochs_) return i;
    const std::int64_t r = row(a);
    if (r < 0) {
      values[i] = nan;
      present[i] = 0;
      continue;
    }
    const std::uint64_t flat = (static_cast<std::uint64_t>(r) * metrics_ + m) * epochs_ + e;
    const float v = load<float>(curves_, flat);
    values[i] = v;
    // The schema stores NaN wherever the mask is 0, so the mask is read only for NaN values: one
    // random memory access per lookup instead of two (recorded NaNs, e.g. a diverged loss, stay present).
    present[i] = (v == v) ? 1 : (curves_present_[flat] != 0);
  }
  return -1;
}

double RunView::scalar(std::int64_t arch, std::int64_t index) const {
  if (arch < 0 || arch >= archs_) throw OutOfRangeError(range_message("arch index", arch, archs_));
  if (index < 0 || index >= scalars_) throw OutOfRangeError(range_message("scalar index", index, scalars_));
  const std::int64_t r = row(arch);
  const std::uint64_t flat = static_cast<std::uint64_t>(r) * scalars_ + index;
  if (r < 0 || scalars_present_[flat] == 0) {
    throw MissingValueError("not recorded: arch " + std::to_string(arch) + ", scalar " + std::to_string(index));
  }
  return load<double>(scalar_values_, flat);
}

std::int64_t RunView::gather_scalars(std::int64_t n, const std::int64_t* archs, std::int64_t index, double* values,
                                     std::uint8_t* present) const {
  if (index < 0 || index >= scalars_) throw OutOfRangeError(range_message("scalar index", index, scalars_));
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t a = archs[i];
    if (a < 0 || a >= archs_) return i;
    const std::int64_t r = row(a);
    const std::uint64_t flat = static_cast<std::uint64_t>(r) * scalars_ + index;
    const std::uint8_t p = r >= 0 && scalars_present_[flat] != 0;
    present[i] = p;
    values[i] = p ? load<double>(scalar_values_, flat) : std::numeric_limits<double>::quiet_NaN();
  }
  return -1;
}

}  // namespace nb360
