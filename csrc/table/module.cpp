// nb360._table: the torch-free compiled core of the precomputed table (pybind11 + numpy).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

#include "mapped_file.h"

namespace py = pybind11;

namespace {

// Gathers float32 elements region[indices] from a contiguous float32 region of the file.
// Raises IndexError on any out-of-range index and ValueError when the region is not in the file.
py::array_t<float> gather_f32(const nb360::MappedFile& file, std::uint64_t offset, std::uint64_t count,
                              py::array_t<std::int64_t, py::array::c_style | py::array::forcecast> indices) {
  if (offset % alignof(float) != 0) throw py::value_error("region offset is not 4-byte aligned");
  if (count > (UINT64_MAX / sizeof(float)) || !file.contains(offset, count * sizeof(float))) {
    throw py::value_error("region [" + std::to_string(offset) + ", +" + std::to_string(count) +
                          " float32) lies outside '" + file.path() + "' (" + std::to_string(file.size()) +
                          " bytes)");
  }
  py::buffer_info in = indices.request();
  std::vector<py::ssize_t> shape(in.shape.begin(), in.shape.end());
  py::array_t<float> out(shape);
  const auto* idx = static_cast<const std::int64_t*>(in.ptr);
  float* dst = out.mutable_data();
  const auto* src = reinterpret_cast<const float*>(file.data() + offset);
  const py::ssize_t n = in.size;
  py::ssize_t bad = -1;
  {
    py::gil_scoped_release release;  // pure memory reads: let other Python threads run
    for (py::ssize_t i = 0; i < n; ++i) {
      const std::int64_t k = idx[i];
      if (k < 0 || static_cast<std::uint64_t>(k) >= count) {
        bad = i;
        break;
      }
      dst[i] = src[k];
    }
  }
  if (bad >= 0) {
    throw py::index_error("index " + std::to_string(idx[bad]) + " is out of range for a region of " +
                          std::to_string(count) + " elements");
  }
  return out;
}

}  // namespace

PYBIND11_MODULE(_table, m) {
  m.doc() = "nb360's torch-free compiled table core: memory-mapped, bounds-checked lookups.";

  py::class_<nb360::MappedFile, std::shared_ptr<nb360::MappedFile>>(m, "MappedFile",
                                                                   "A read-only memory map of a whole file.")
      .def(py::init([](const std::string& path) {
             try {
               return std::make_shared<nb360::MappedFile>(path);
             } catch (const std::runtime_error& e) {
               PyErr_SetString(PyExc_OSError, e.what());
               throw py::error_already_set();
             }
           }),
           py::arg("path"))
      .def_property_readonly("path", &nb360::MappedFile::path)
      .def_property_readonly("size", &nb360::MappedFile::size, "File size in bytes.")
      .def("gather_f32", &gather_f32, py::arg("offset"), py::arg("count"), py::arg("indices"),
           "Return region[indices] for the float32 region of `count` elements at byte `offset`.");
}
