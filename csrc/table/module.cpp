// nb360._table: the torch-free compiled core of the precomputed table (pybind11 + numpy).
//
// TableFile opens an nb360 table (an HDF5 file) by mmap and reads where its datasets lie from the
// HDF5 metadata; RunView answers single and batched lookups on one run group with the GIL
// released for batches. The Python API in nb360/table/ builds on these.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <vector>
#include <memory>
#include <string>

#include "checksum.h"
#include "errors.h"
#include "sigbus_guard.h"
#include "table_file.h"

namespace py = pybind11;
using nb360::RunView;
using nb360::TableFile;

namespace nb360 {
void bind_nats_plan(py::module_& m);  // nats_plan.cpp: NATS-Bench query semantics for nb360.compat.nats
}

namespace {

using IndexArray = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;

[[noreturn]] void throw_out_of_range(const char* what, std::int64_t position, std::int64_t value, std::int64_t size) {
  throw nb360::OutOfRangeError(std::string(what) + " " + std::to_string(value) + " (at position " +
                               std::to_string(position) + ") is out of range [0, " + std::to_string(size) + ")");
}

// Each index array holds either n elements or one (broadcast to all n).
py::tuple gather(const RunView& run, const IndexArray& archs, const IndexArray& metrics, const IndexArray& epochs) {
  const py::ssize_t n = std::max({archs.size(), metrics.size(), epochs.size()});
  for (const IndexArray* x : {&archs, &metrics, &epochs}) {
    if (x->size() != n && x->size() != 1) {
      throw py::value_error("gather: archs, metrics and epochs must each hold n elements or one");
    }
  }
  py::array_t<float> values(n);
  py::array_t<bool> present(n);
  const std::int64_t* a = archs.data();
  const std::int64_t* m = metrics.data();
  const std::int64_t* e = epochs.data();
  const std::int64_t sa = archs.size() == n ? 1 : 0, sm = metrics.size() == n ? 1 : 0, se = epochs.size() == n ? 1 : 0;
  std::int64_t bad;
  {
    py::gil_scoped_release release;
    bad = run.gather(n, a, sa, m, sm, e, se, values.mutable_data(),
                     reinterpret_cast<std::uint8_t*>(present.mutable_data()));
  }
  if (bad >= 0) {
    const std::int64_t av = a[bad * sa], mv = m[bad * sm], ev = e[bad * se];
    if (av < 0 || av >= run.num_archs()) throw_out_of_range("arch index", bad, av, run.num_archs());
    if (mv < 0 || mv >= run.num_metrics()) throw_out_of_range("metric index", bad, mv, run.num_metrics());
    throw_out_of_range("epoch", bad, ev, run.num_epochs());
  }
  return py::make_tuple(values, present);
}

py::tuple gather_scalars(const RunView& run, const IndexArray& archs, std::int64_t index) {
  const py::ssize_t n = archs.size();
  py::array_t<double> values(n);
  py::array_t<bool> present(n);
  std::int64_t bad;
  {
    py::gil_scoped_release release;
    bad = run.gather_scalars(n, archs.data(), index, values.mutable_data(),
                             reinterpret_cast<std::uint8_t*>(present.mutable_data()));
  }
  if (bad >= 0) throw_out_of_range("arch index", bad, archs.data()[bad], run.num_archs());
  return py::make_tuple(values, present);
}

py::dict dataset_info(const TableFile& table, std::uint64_t address) {
  const nb360::DatasetInfo d = table.dataset(address);
  py::dict out;
  out["shape"] = py::tuple(py::cast(d.shape));
  out["dtype"] = std::string("<") + d.kind + std::to_string(d.itemsize);
  out["offset"] = d.offset;
  out["nbytes"] = d.nbytes;
  return out;
}

}  // namespace

PYBIND11_MODULE(_table, m) {
  m.doc() = "nb360's torch-free compiled table core: memory-mapped HDF5 tables, bounds-checked lookups.";

  // A corrupt, changed or closed table raises nb360's own error types (nb360.errors) from every
  // lookup, so callers and the CLI treat them as the user-facing errors they are.
  py::module_ errors = py::module_::import("nb360.errors");
  auto format_error = py::register_exception<nb360::FormatError>(m, "FormatError", errors.attr("DataError"));
  py::register_exception<nb360::FileChangedError>(m, "FileChangedError", format_error);
  py::register_exception<nb360::ClosedError>(m, "ClosedError", errors.attr("ClosedTableError"));
  py::register_exception<nb360::MissingValueError>(m, "MissingValueError", PyExc_LookupError);
  py::register_exception<nb360::OutOfRangeError>(m, "OutOfRangeError", PyExc_IndexError);
  py::register_exception<nb360::FileOpenError>(m, "FileOpenError", PyExc_OSError);

  m.attr("SCHEMA_VERSION") = nb360::kSchemaVersion;
  m.attr("HEADER_VERSION") = nb360::kHeaderFormatVersion;
  m.attr("USER_BLOCK_SIZE") = nb360::kUserBlockSize;
  m.attr("CHECKSUM_XXH64") = nb360::kChecksumXxh64;

  m.def(
      "xxh64",
      [](py::buffer data, std::uint64_t seed) {
        const py::buffer_info info = data.request();
        const auto* p = static_cast<const std::uint8_t*>(info.ptr);
        const std::size_t n = static_cast<std::size_t>(info.size * info.itemsize);
        py::gil_scoped_release release;
        return nb360::xxh64(p, n, seed);
      },
      py::arg("data"), py::arg("seed") = 0, "XXH64 of a contiguous buffer (the table's data and index checksum).");
  m.def(
      "chunk_checksums",
      [](py::buffer data, int shift) {
        const py::buffer_info info = data.request();
        if (shift < 10 || shift > 30) throw py::value_error("chunk_checksums: shift must be in [10, 30]");
        const auto* p = static_cast<const std::uint8_t*>(info.ptr);
        const std::uint64_t n = static_cast<std::uint64_t>(info.size * info.itemsize);
        std::vector<std::uint64_t> sums;
        {
          py::gil_scoped_release release;
          sums = nb360::chunk_checksums(p, n, shift);
        }
        py::array_t<std::uint64_t> out(static_cast<py::ssize_t>(sums.size()));
        std::copy(sums.begin(), sums.end(), out.mutable_data());
        return out;
      },
      py::arg("data"), py::arg("shift"), "XXH64 of each 2**shift-byte chunk of a contiguous buffer (uint64 array).");

  m.def(
      "lookup3",
      [](py::bytes data, std::uint32_t initval) {
        const std::string s = data;
        return nb360::lookup3(reinterpret_cast<const std::uint8_t*>(s.data()), s.size(), initval);
      },
      py::arg("data"), py::arg("initval") = 0, "Jenkins lookup3 hash (HDF5's metadata checksum).");

  py::class_<TableFile, std::shared_ptr<TableFile>>(m, "TableFile", py::buffer_protocol(),
                                                     "An opened nb360 table file (read-only memory map).")
      .def(py::init<std::string, bool>(), py::arg("path"), py::arg("verify") = true)
      .def_property_readonly("path", [](const TableFile& t) { return t.file().path(); })
      .def_property_readonly("header_version", &TableFile::header_version)
      .def_property_readonly("fileno", [](const TableFile& t) { return t.file().fd(); },
                             "The descriptor of the mapped file (for os.pread; stays valid until the table is freed).")
      .def_property_readonly("chunk_shift", &TableFile::chunk_shift)
      .def_property_readonly("verifies", &TableFile::verifies, "Whether lookups check the chunk checksums.")
      .def_property_readonly("closed", &TableFile::closed)
      .def("close", &TableFile::close,
           "Make every later lookup raise ClosedError (in every thread); the mapping goes with the last view.")
      .def("_read_mapped",
           [](const TableFile& t, std::uint64_t offset) {
             if (!t.file().contains(offset, 1)) throw py::index_error("offset past the end of the mapping");
             std::uint8_t v = 0;
             const std::uint8_t* p = t.file().data() + offset;
             if (!nb360::guarded([&] { v = *p; })) t.file().changed("it shrank while being read");
             return v;
           },
           py::arg("offset"), "Test hook: one byte of the mapping read under the SIGBUS guard, with no fstat check.")
      .def("check_unchanged", [](const TableFile& t) { t.enter(); },
           "Raise ClosedError or FileChangedError when the table was closed or changed on disk.")
      .def_property_readonly("size", [](const TableFile& t) { return t.file().size(); }, "File size in bytes.")
      .def_property_readonly("schema_version", &TableFile::schema_version)
      .def_property_readonly("index_address", &TableFile::index_address)
      .def("index_json", [](const TableFile& t) { return py::bytes(t.index_json()); },
           "The bytes of the /nb360_index dataset (UTF-8 JSON), checked against the header's XXH64.")
      .def("release_pages", [](const TableFile& t) { t.file().release_pages(); },
           "Drop this process's mapped pages (they stay in the shared page cache); lowers RSS after a traversal.")
      .def("dataset_info", &dataset_info, py::arg("address"),
           "Shape, dtype, absolute offset and size of the dataset whose object header is at `address`.")
      // The whole file as a read-only buffer: np.frombuffer(table_file, dtype, count, offset) gives
      // zero-copy views that numpy refuses to make writeable (the mapping is PROT_READ).
      .def_buffer([](TableFile& t) {
        return py::buffer_info(const_cast<std::uint8_t*>(t.file().data()), 1,
                               py::format_descriptor<std::uint8_t>::format(), 1,
                               {static_cast<py::ssize_t>(t.file().size())}, {1}, /*readonly=*/true);
      });

  py::class_<RunView, std::shared_ptr<RunView>>(m, "RunView", "Typed lookups on one run group of a table.")
      .def(py::init<std::shared_ptr<const TableFile>, const std::vector<std::uint64_t>&, std::uint64_t, std::uint64_t,
                    const std::string&>(),
           py::arg("table"), py::arg("addresses"), py::arg("checksums_address") = 0, py::arg("checksums_xxh64") = 0,
           py::arg("name") = "run",
           "addresses: object-header addresses of arch_rows, curves, curves_present, scalars, scalars_present.")
      .def_property_readonly("num_archs", &RunView::num_archs)
      .def_property_readonly("num_rows", &RunView::num_rows)
      .def_property_readonly("num_metrics", &RunView::num_metrics)
      .def_property_readonly("num_epochs", &RunView::num_epochs)
      .def_property_readonly("num_scalars", &RunView::num_scalars)
      .def("get", &RunView::get, py::arg("arch"), py::arg("metric"), py::arg("epoch"),
           "One curve value; raises MissingValueError when not recorded.")
      .def("gather", &gather, py::arg("archs"), py::arg("metrics"), py::arg("epochs"),
           "Batched lookup of int64 arrays (n elements, or one to broadcast) -> (float32 values, bool present); "
           "missing values are NaN.")
      .def("scalar", &RunView::scalar, py::arg("arch"), py::arg("index"))
      .def("arch_rows",
           [](const RunView& run) {
             const auto& rows = run.arch_rows();
             py::array_t<std::int32_t> out(static_cast<py::ssize_t>(rows.size()));
             std::copy(rows.begin(), rows.end(), out.mutable_data());
             return out;
           },
           "A copy of the checked row of every arch (-1: not recorded).")
      .def("verify_all", &RunView::verify_all, py::call_guard<py::gil_scoped_release>(),
           "Check every chunk of the run against its checksum.")
      .def("gather_scalars", &gather_scalars, py::arg("archs"), py::arg("index"));

  nb360::bind_nats_plan(m);
}
