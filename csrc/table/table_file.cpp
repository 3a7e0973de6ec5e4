#include "table_file.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "checksum.h"
#include "cursor.h"
#include "errors.h"
#include "sigbus_guard.h"

namespace nb360 {
namespace {

const char kMagic[8] = {'N', 'B', '3', '6', '0', 'T', 'B', 'L'};
constexpr std::uint64_t kHeaderBytes = 60;  // version 2: 56 bytes + their lookup3

void expect(const DatasetInfo& d, char kind, int itemsize, std::size_t rank, const std::string& name) {
  if (d.kind != kind || d.itemsize != itemsize || d.shape.size() != rank) {
    std::string shape;
    for (auto s : d.shape) shape += (shape.empty() ? "" : ", ") + std::to_string(s);
    throw FormatError("run dataset '" + name + "' is " + d.dtype() + " with shape (" + shape + "), expected " + kind +
                      std::to_string(itemsize) + " of rank " + std::to_string(rank));
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

TableFile::TableFile(const std::string& path, bool verify) : file_(std::make_unique<MappedFile>(path)), verify_(verify) {
  install_sigbus_handler();
  if (file_->size() < kUserBlockSize) {
    throw FormatError("'" + path + "' is too small to be an nb360 table (" + std::to_string(file_->size()) +
                      " bytes)");
  }
  const Region head = file_->read(0, kHeaderBytes, "the nb360 header");
  if (std::memcmp(head.bytes.data(), kMagic, 8) != 0) {
    const bool hdf5 = has_hdf5_signature(*file_);
    throw FormatError("'" + path + "' is not an nb360 table" +
                      (hdf5 ? " (it is an HDF5 file without the nb360 header: convert released NATS-Bench files "
                              "with `nb360 table import`)"
                            : " (no nb360 header)"));
  }
  Cursor c(head, 8, head.end(), "nb360 table header");
  header_version_ = c.u32();
  schema_version_ = c.u32();
  index_address_ = c.u64();
  if (c.u32() != lookup3(head.at(0), 24)) throw FormatError("the nb360 table header of '" + path + "' is corrupt");
  if (header_version_ == 1) {
    if (verify_) {
      throw FormatError("'" + path + "' is an nb360 table of header version 1, written before tables carried "
                        "checksums, so nb360 cannot check the values it would return: add them with `nb360 table "
                        "upgrade " + path + "` (it first checks every dataset against the sha256 recorded at "
                        "creation), or re-create the table");
    }
  } else if (header_version_ == kHeaderFormatVersion) {
    const std::uint32_t algorithm = c.u32();
    const std::uint32_t shift = c.u32();
    c.u32();  // reserved
    index_length_ = c.u64();
    index_xxh64_ = c.u64();
    if (c.u32() != lookup3(head.at(0), 56)) throw FormatError("the nb360 table header of '" + path + "' is corrupt");
    if (algorithm != kChecksumXxh64) {
      throw FormatError("'" + path + "' uses checksum algorithm " + std::to_string(algorithm) +
                        ", which this nb360 does not know: upgrade nb360");
    }
    if (shift < 10 || shift > 30) throw FormatError("the nb360 table header of '" + path + "' is corrupt (chunk size)");
    chunk_shift_ = static_cast<int>(shift);
  } else {
    throw FormatError("'" + path + "' has nb360 header version " + std::to_string(header_version_) +
                      "; this nb360 reads versions 1 and " + std::to_string(kHeaderFormatVersion) + ": upgrade nb360");
  }
  if (schema_version_ != kSchemaVersion) {
    throw FormatError("'" + path + "' uses table schema version " + std::to_string(schema_version_) +
                      " but this nb360 reads version " + std::to_string(kSchemaVersion) +
                      ": upgrade nb360, or re-create the table with this one (`nb360 table import`)");
  }
  sb_ = read_superblock(*file_);
}

void TableFile::closed_error() const {
  throw ClosedError("the table '" + file_->path() + "' is closed: open it again with Table.open");
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
  const Region r = file_->read(d.offset, d.nbytes, "the table index");
  return std::string(reinterpret_cast<const char*>(r.bytes.data()), r.bytes.size());
}

std::string TableFile::index_json() const {
  std::string bytes = bytes_of(index_address_);
  if (verify_ && header_version_ >= 2 &&
      (bytes.size() != index_length_ ||
       xxh64(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()) != index_xxh64_)) {
    throw FormatError("the table index of '" + file_->path() + "' fails its checksum: the file is corrupt; download "
                      "or re-create the table");
  }
  return bytes;
}

RunView::RunView(std::shared_ptr<const TableFile> table, const std::vector<std::uint64_t>& addresses,
                 std::uint64_t checksums_address, std::uint64_t checksums_xxh64, const std::string& name)
    : table_(std::move(table)), name_(name) {
  if (!table_) throw std::invalid_argument("RunView needs an open TableFile, got None");
  if (addresses.size() != 5) throw std::invalid_argument("RunView needs the addresses of the five run datasets");
  table_->enter();
  const MappedFile& file = table_->file();
  const char* names[5] = {"arch_rows", "curves", "curves_present", "scalars", "scalars_present"};
  DatasetInfo d[5];
  for (int i = 0; i < 5; ++i) d[i] = table_->dataset(addresses[i]);
  expect(d[0], 'i', 4, 1, name_ + "/arch_rows");
  expect(d[1], 'f', 4, 3, name_ + "/curves");
  expect(d[2], 'u', 1, 3, name_ + "/curves_present");
  expect(d[3], 'f', 8, 2, name_ + "/scalars");
  expect(d[4], 'u', 1, 2, name_ + "/scalars_present");
  if (d[2].shape != d[1].shape) throw FormatError("run datasets 'curves' and 'curves_present' differ in shape");
  if (d[4].shape != d[3].shape) throw FormatError("run datasets 'scalars' and 'scalars_present' differ in shape");
  if (d[3].shape[0] != d[1].shape[0]) throw FormatError("run datasets 'curves' and 'scalars' differ in row count");
  constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max());
  for (auto s : d[1].shape) if (s > kMax) throw FormatError("run dataset dimension too large");
  if (d[3].shape[1] > kMax || d[0].shape[0] > kMax) throw FormatError("run dataset dimension too large");
  archs_ = static_cast<std::int64_t>(d[0].shape[0]);
  rows_ = static_cast<std::int64_t>(d[1].shape[0]);
  metrics_ = static_cast<std::int64_t>(d[1].shape[1]);
  epochs_ = static_cast<std::int64_t>(d[1].shape[2]);
  scalars_ = static_cast<std::int64_t>(d[3].shape[1]);

  // The chunk checksums of the five datasets, in that order, themselves checked against the index.
  const int shift = table_->chunk_shift();
  std::vector<std::uint64_t> expected[5];
  if (table_->verifies()) {
    const DatasetInfo k = table_->dataset(checksums_address);
    expect(k, 'u', 8, 1, name_ + "/chunk_checksums");
    const Region bytes = file.read(k.offset, k.nbytes, "the chunk checksums of " + name_);
    if (xxh64(bytes.bytes.data(), bytes.bytes.size()) != checksums_xxh64) {
      throw FormatError("'" + file.path() + "': run " + name_ + ": its chunk checksums fail their own checksum: the file is corrupt; download "
                        "or re-create the table");
    }
    std::uint64_t at = 0;
    for (int i = 0; i < 5; ++i) {
      const std::uint64_t n = CheckedDataset::chunk_count(d[i].nbytes, shift);
      if (n > k.numel - at) throw FormatError("run " + name_ + " records too few chunk checksums: the file is corrupt");
      for (std::uint64_t j = 0; j < n; ++j) expected[i].push_back(load<std::uint64_t>(bytes.bytes.data(), at + j));
      at += n;
    }
    if (at != k.numel) throw FormatError("run " + name_ + " records too many chunk checksums: the file is corrupt");
  }

  // arch_rows is read once (pread, checked) into memory, so every row a lookup uses was validated.
  const Region rows = file.read(d[0].offset, d[0].nbytes, name_ + "/arch_rows");
  if (table_->verifies() && chunk_checksums(rows.bytes.data(), rows.bytes.size(), shift) != expected[0]) {
    throw FormatError("'" + file.path() + "': dataset " + name_ + "/arch_rows is corrupt: it fails its checksum; download or re-create the "
                      "table");
  }
  rows_of_.resize(static_cast<std::size_t>(archs_));
  for (std::int64_t a = 0; a < archs_; ++a) {
    const std::int32_t row_of_a = load<std::int32_t>(rows.bytes.data(), static_cast<std::uint64_t>(a));
    if (row_of_a < -1 || row_of_a >= rows_) {
      throw FormatError("run dataset 'arch_rows' maps arch " + std::to_string(a) + " to row " +
                        std::to_string(row_of_a) + ", outside [-1, " + std::to_string(rows_) + "): the file is corrupt");
    }
    rows_of_[static_cast<std::size_t>(a)] = row_of_a;
  }
  curves_ = std::make_unique<CheckedDataset>(&file, d[1], std::move(expected[1]), shift, name_ + "/" + names[1]);
  curves_present_ = std::make_unique<CheckedDataset>(&file, d[2], std::move(expected[2]), shift, name_ + "/" + names[2]);
  scalar_values_ = std::make_unique<CheckedDataset>(&file, d[3], std::move(expected[3]), shift, name_ + "/" + names[3]);
  scalars_present_ = std::make_unique<CheckedDataset>(&file, d[4], std::move(expected[4]), shift, name_ + "/" + names[4]);
}

void RunView::check(std::int64_t arch, std::int64_t metric, std::int64_t epoch) const {
  if (arch < 0 || arch >= archs_) throw OutOfRangeError(range_message("arch index", arch, archs_));
  if (metric < 0 || metric >= metrics_) throw OutOfRangeError(range_message("metric index", metric, metrics_));
  if (epoch < 0 || epoch >= epochs_) throw OutOfRangeError(range_message("epoch", epoch, epochs_));
}

void RunView::finish_batch() const { table_->file().check_unchanged(); }

float RunView::get(std::int64_t arch, std::int64_t metric, std::int64_t epoch) const {
  table_->enter(false);
  check(arch, metric, epoch);
  const std::int64_t r = row(arch);
  const std::uint64_t flat = (static_cast<std::uint64_t>(r) * metrics_ + metric) * epochs_ + epoch;
  std::uint8_t p = 0;
  float v = 0;
  if (r >= 0) {
    curves_present_->ensure(flat);
    curves_->ensure(flat * sizeof(float));
    const std::uint8_t* pp = curves_present_->data() + flat;
    const std::uint8_t* vp = curves_->data();
    if (!guarded([&] {
          p = *pp;
          v = load<float>(vp, flat);
        })) {
      table_->file().changed("it shrank while being read");
    }
  }
  if (p == 0) {
    throw MissingValueError("not recorded: arch " + std::to_string(arch) + ", metric " + std::to_string(metric) +
                            ", epoch " + std::to_string(epoch));
  }
  return v;
}

namespace {

// The lookup loop of RunView::gather, on plain local values: the uint8 stores into `present` may
// alias anything the compiler cannot prove private, so nothing here is read through a reference.
std::int64_t gather_loop(std::int64_t n, const std::int64_t* archs, std::int64_t arch_stride, const std::int64_t* metrics,
                         std::int64_t metric_stride, const std::int64_t* epochs, std::int64_t epoch_stride,
                         float* values, std::uint8_t* present, const std::int32_t* rows, std::int64_t num_archs,
                         std::int64_t num_metrics, std::int64_t num_epochs, const std::uint8_t* values_base,
                         const std::uint8_t* present_base, const CheckedDataset* check_values,
                         const CheckedDataset* check_present) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t a = archs[i * arch_stride], m = metrics[i * metric_stride], e = epochs[i * epoch_stride];
    if (a < 0 || a >= num_archs || m < 0 || m >= num_metrics || e < 0 || e >= num_epochs) return i;
    const std::int64_t r = rows[a];
    if (r < 0) {
      values[i] = nan;
      present[i] = 0;
      continue;
    }
    const std::uint64_t flat = (static_cast<std::uint64_t>(r) * num_metrics + m) * num_epochs + e;
    if (check_values != nullptr) {  // both chunks, so every API answers alike on a file with a corrupt mask
      check_values->ensure(flat * sizeof(float));
      check_present->ensure(flat);
    }
    const float v = load<float>(values_base, flat);
    values[i] = v;
    // The schema stores NaN wherever the mask is 0, so the mask is read only for NaN values: one
    // random memory access per lookup instead of two (recorded NaNs, e.g. a diverged loss, stay present).
    present[i] = (v == v) ? 1 : (present_base[flat] != 0);
  }
  return -1;
}

}  // namespace

std::int64_t RunView::gather(std::int64_t n, const std::int64_t* archs, std::int64_t arch_stride,
                             const std::int64_t* metrics, std::int64_t metric_stride, const std::int64_t* epochs,
                             std::int64_t epoch_stride, float* values, std::uint8_t* present, bool single) const {
  table_->enter(!single);
  const bool check_chunks = !(curves_->all_verified() && curves_present_->all_verified());
  std::int64_t bad = -1;
  const bool ok = guarded([&] {
    bad = gather_loop(n, archs, arch_stride, metrics, metric_stride, epochs, epoch_stride, values, present,
                      rows_of_.data(), archs_, metrics_, epochs_, curves_->data(), curves_present_->data(),
                      check_chunks ? curves_.get() : nullptr, check_chunks ? curves_present_.get() : nullptr);
  });
  if (!ok) table_->file().changed("it shrank while being read");
  if (!single) finish_batch();
  return bad;
}

double RunView::scalar(std::int64_t arch, std::int64_t index) const {
  table_->enter(false);
  if (arch < 0 || arch >= archs_) throw OutOfRangeError(range_message("arch index", arch, archs_));
  if (index < 0 || index >= scalars_) throw OutOfRangeError(range_message("scalar index", index, scalars_));
  const std::int64_t r = row(arch);
  const std::uint64_t flat = static_cast<std::uint64_t>(r) * scalars_ + index;
  std::uint8_t p = 0;
  double v = 0;
  if (r >= 0) {
    scalars_present_->ensure(flat);
    scalar_values_->ensure(flat * sizeof(double));
    const std::uint8_t* pp = scalars_present_->data() + flat;
    const std::uint8_t* vp = scalar_values_->data();
    if (!guarded([&] {
          p = *pp;
          v = load<double>(vp, flat);
        })) {
      table_->file().changed("it shrank while being read");
    }
  }
  if (p == 0) {
    throw MissingValueError("not recorded: arch " + std::to_string(arch) + ", scalar " + std::to_string(index));
  }
  return v;
}

std::int64_t RunView::gather_scalars(std::int64_t n, const std::int64_t* archs, std::int64_t index, double* values,
                                     std::uint8_t* present, bool single) const {
  table_->enter(!single);
  if (index < 0 || index >= scalars_) throw OutOfRangeError(range_message("scalar index", index, scalars_));
  const CheckedDataset& sv = *scalar_values_;
  const CheckedDataset& sp = *scalars_present_;
  const std::int32_t* rows = rows_of_.data();
  std::int64_t bad = -1;
  const bool ok = guarded([&] {
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int64_t a = archs[i];
      if (a < 0 || a >= archs_) {
        bad = i;
        return;
      }
      const std::int64_t r = rows[a];
      const std::uint64_t flat = static_cast<std::uint64_t>(r) * scalars_ + index;
      std::uint8_t p = 0;
      if (r >= 0) {
        sp.ensure(flat);
        p = sp.data()[flat] != 0;
      }
      present[i] = p;
      if (p) {
        sv.ensure(flat * sizeof(double));
        values[i] = load<double>(sv.data(), flat);
      } else {
        values[i] = std::numeric_limits<double>::quiet_NaN();
      }
    }
  });
  if (!ok) table_->file().changed("it shrank while being read");
  if (!single) finish_batch();
  return bad;
}

void RunView::verify_all() const {
  table_->enter();
  curves_->verify_all();
  curves_present_->verify_all();
  scalar_values_->verify_all();
  scalars_present_->verify_all();
}

}  // namespace nb360
