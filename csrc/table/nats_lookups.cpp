// nb360._table.nats_lookups: compiled arch(i) / query_index_by_arch(x) for nb360.compat.nats.
#include <pybind11/pybind11.h>

namespace py = pybind11;

namespace nb360 {
namespace {

// nats_bench's arch(i) and query_index_by_arch(x) take 0.1-0.2 µs; a Python method cannot beat that
// by much (a call alone costs ~0.05 µs), so the facade installs these two raw C functions (METH_O, no
// pybind11 argument conversion) on the API instance. `self` is the tuple (strings, str2index,
// fallback_arch, fallback_index); any argument but an in-range int or a str goes to the fallbacks
// (the Python methods), which raise nats_bench's errors and handle objects with .tostr().
PyObject* fast_arch(PyObject* self, PyObject* arg) {
  PyObject* strings = PyTuple_GET_ITEM(self, 0);
  if (PyLong_CheckExact(arg)) {
    const Py_ssize_t i = PyLong_AsSsize_t(arg);
    if (i == -1 && PyErr_Occurred()) {
      PyErr_Clear();
    } else if (i >= 0 && i < PyList_GET_SIZE(strings)) {
      PyObject* s = PyList_GET_ITEM(strings, i);
      Py_INCREF(s);
      return s;
    }
  }
  return PyObject_CallOneArg(PyTuple_GET_ITEM(self, 2), arg);
}

PyObject* index_of_str(PyObject* self, PyObject* arch_str) {
  PyObject* index = PyDict_GetItemWithError(PyTuple_GET_ITEM(self, 1), arch_str);
  if (index != nullptr) {
    Py_INCREF(index);
    return index;
  }
  if (PyErr_Occurred()) return nullptr;
  return PyLong_FromLong(-1);
}

PyObject* fast_index(PyObject* self, PyObject* arg) {
  if (PyUnicode_CheckExact(arg)) return index_of_str(self, arg);
  if (!PyLong_Check(arg) && !PyUnicode_Check(arg)) {  // an arch object: its .tostr() (the scripts' CellStructure)
    static PyObject* tostr_name = PyUnicode_InternFromString("tostr");
    PyObject* method = PyObject_GetAttr(arg, tostr_name);
    if (method == nullptr) {
      if (!PyErr_ExceptionMatches(PyExc_AttributeError)) return nullptr;
      PyErr_Clear();
    } else {
      PyObject* text = PyObject_CallNoArgs(method);
      Py_DECREF(method);
      if (text == nullptr) return nullptr;
      PyObject* out = PyUnicode_CheckExact(text) ? index_of_str(self, text) : PyObject_CallOneArg(
                                                                                   PyTuple_GET_ITEM(self, 3), arg);
      Py_DECREF(text);
      return out;
    }
  }
  if (PyLong_CheckExact(arg)) {
    const Py_ssize_t i = PyLong_AsSsize_t(arg);
    if (i == -1 && PyErr_Occurred()) {
      PyErr_Clear();
    } else if (i >= 0 && i < PyList_GET_SIZE(PyTuple_GET_ITEM(self, 0))) {
      Py_INCREF(arg);
      return arg;
    }
  }
  return PyObject_CallOneArg(PyTuple_GET_ITEM(self, 3), arg);
}

PyMethodDef fast_arch_def = {"arch", fast_arch, METH_O, "The arch string of an index (nb360.compat.nats)."};
PyMethodDef fast_index_def = {"query_index_by_arch", fast_index, METH_O,
                              "The index of an arch string or index, -1 when not in the space (nb360.compat.nats)."};

}  // namespace

void bind_nats_lookups(py::module_& m) {
  m.def(
      "nats_lookups",
      [](py::list strings, py::dict str2index, py::object fallback_arch, py::object fallback_index) {
        py::tuple self = py::make_tuple(strings, str2index, fallback_arch, fallback_index);
        auto arch = py::reinterpret_steal<py::object>(PyCFunction_NewEx(&fast_arch_def, self.ptr(), nullptr));
        auto index = py::reinterpret_steal<py::object>(PyCFunction_NewEx(&fast_index_def, self.ptr(), nullptr));
        if (!arch || !index) throw py::error_already_set();
        return py::make_tuple(arch, index);
      },
      py::arg("strings"), py::arg("str2index"), py::arg("fallback_arch"), py::arg("fallback_index"),
      "C functions answering arch(i) / query_index_by_arch(x) for in-range ints and strings, else the fallbacks.");
}

}  // namespace nb360
