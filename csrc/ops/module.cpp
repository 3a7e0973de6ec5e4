// nb360._C: the torch custom-op library. Importing it runs the static TORCH_LIBRARY
// registrars of every op in csrc/ops/*.cpp (CPU) and csrc/ops/cuda/*.cu (CUDA, when built).
// The module itself only carries what the build was compiled with, so `nb360 info` can
// report the backends that are actually loaded.
#include <Python.h>
#include <torch/library.h>

// The namespace is declared once here; each op adds its schema with TORCH_LIBRARY_FRAGMENT.
TORCH_LIBRARY(nb360, m) {}

static struct PyModuleDef nb360_c_module = {
    PyModuleDef_HEAD_INIT, "_C", "nb360 torch custom ops (registered under torch.ops.nb360).", -1, nullptr,
};

PyMODINIT_FUNC PyInit__C(void) {
  PyObject* m = PyModule_Create(&nb360_c_module);
  if (m == nullptr) return nullptr;
  if (PyModule_AddIntConstant(m, "WITH_CUDA", NB360_WITH_CUDA) != 0 ||
      PyModule_AddStringConstant(m, "CUDA_VERSION", NB360_CUDA_VERSION_STR) != 0 ||
      PyModule_AddStringConstant(m, "CUDA_ARCHS", NB360_CUDA_ARCHS_STR) != 0) {
    Py_DECREF(m);
    return nullptr;
  }
  return m;
}
