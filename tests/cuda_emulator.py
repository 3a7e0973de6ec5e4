"""Build and call nb360's CUDA kernel sources on the host emulator (tests/cuda_emulation/).

The kernels in csrc/ops/cuda/*_kernel.cu are compiled unchanged with g++ against stand-in CUDA
headers, after one mechanical rewrite: each ``kernel<<<grid, block, shared, stream>>>(args)`` launch
becomes ``::nb360_emu::Launch(kernel, grid, block, shared, stream)(args)``. The wrappers below do
what the torch glue (csrc/ops/cuda/<op>.cu) does around the launchers, on CPU tensors, so a test can
run the device code on machines without a GPU and compare it with the CPU kernels and the reference.
"""

from __future__ import annotations

import ctypes
import re
import shutil
import subprocess
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
KERNEL_DIR = ROOT / "csrc" / "ops" / "cuda"
EMULATION_DIR = Path(__file__).resolve().parent / "cuda_emulation"
KERNEL_SOURCES = sorted(KERNEL_DIR.glob("*_kernel.cu"))
SELFTEST_SOURCE = EMULATION_DIR / "selftest_kernels.cu"

# A launch: the kernel expression (a name with optional template arguments), then <<<config>>>.
LAUNCH = re.compile(r"([A-Za-z_]\w*(?:<[\w\s:,*]*>)?)\s*<<<(.*?)>>>", re.DOTALL)

ASCENDING, DESCENDING = 0, 1
DTYPES = {torch.float32: 0, torch.float64: 1, torch.float16: 2, torch.bfloat16: 3}


def rewrite_launches(source: str) -> tuple[str, int]:
    """Turn every triple-chevron launch into an emulator Launch call; returns the text and the count."""
    return LAUNCH.subn(r"::nb360_emu::Launch(\1, \2)", source)


def compiler() -> str | None:
    """The host C++ compiler the emulator builds with (g++, else c++), or None."""
    return shutil.which("g++") or shutil.which("c++")


def build(out_dir: Path, mutation: tuple[str, str, str] | None = None) -> ctypes.CDLL:
    """Compile the kernel sources, the self-test kernels and the C harness into one emulated library.

    mutation = (source file name, text, replacement) plants a bug in one kernel source first (the text
    must occur exactly once), for tests that show the emulated tests catch such bugs.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    units = [EMULATION_DIR / "harness.cpp"]
    for source in [*KERNEL_SOURCES, SELFTEST_SOURCE]:
        text = source.read_text()
        if mutation is not None and mutation[0] == source.name:
            if text.count(mutation[1]) != 1:
                raise ValueError(f"mutation text occurs {text.count(mutation[1])} times in {source.name}")
            text = text.replace(mutation[1], mutation[2])
        rewritten, count = rewrite_launches(text)
        if count != text.count("<<<"):
            raise RuntimeError(f"{source.name}: rewrote {count} of {text.count('<<<')} kernel launches")
        unit = out_dir / f"{source.stem}.emu.cpp"
        # #line keeps compiler messages pointing at the real source.
        unit.write_text(f'#include "nb360_cuda_emulator.h"\n#line 1 "{source}"\n{rewritten}')
        units.append(unit)
    library = out_dir / "libnb360_cuda_emulated.so"
    cmd = [compiler() or "g++", "-std=c++20", "-O2", "-fPIC", "-shared", "-Wall", "-Wno-unknown-pragmas",
           f"-I{EMULATION_DIR / 'include'}", f"-I{KERNEL_DIR}", *map(str, units), "-o", str(library)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"building the CUDA emulation failed:\n{proc.stderr}")
    return ctypes.CDLL(str(library))


def _pointers(tensors) -> ctypes.Array:
    return (ctypes.c_void_p * max(len(tensors), 1))(*[t.data_ptr() for t in tensors])


def _int64s(values) -> ctypes.Array:
    return (ctypes.c_int64 * max(len(values), 1))(*values)


def _ptr(t: torch.Tensor | None) -> ctypes.c_void_p:
    return ctypes.c_void_p(t.data_ptr() if t is not None else None)


def _acc(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _plane_contiguous(t: torch.Tensor) -> torch.Tensor:
    """As the glue: keep (n, c) planes contiguous with packed channels (a channel slice passes), else copy."""
    hw = t[0, 0].numel() if t.shape[0] and t.shape[1] else 1
    inner = t.stride()[2:]
    packed = t.stride(1) == hw and inner == torch.empty(t.shape[2:]).stride()
    return t if packed else t.contiguous()


def _batch_stride(t: torch.Tensor) -> int:
    return t.stride(0) if t.shape[0] > 1 else 0


def _shape4(t: torch.Tensor) -> list[int]:
    return [t.shape[0], t.shape[1], 1, t.shape[2]] if t.dim() == 3 else list(t.shape)


class EmulatedKernels:
    """nb360's CUDA launchers run on the host emulator, wrapped like the torch glue wraps them."""

    def __init__(self, library: ctypes.CDLL):
        self.lib = library
        self.lib.emu_fault.restype = ctypes.c_char_p
        self.lib.emu_launches.restype = ctypes.c_long
        for name in ("emu_cell_node_forward", "emu_cell_node_backward", "emu_mixed_sum_forward",
                     "emu_mixed_sum_backward_partials", "emu_mixed_sum_backward_blocks"):
            getattr(self.lib, name).restype = ctypes.c_int
        self.lib.emu_mixed_sum_backward_blocks.argtypes = [ctypes.c_int64]

    def _check(self, code: int, what: str) -> None:
        if code == -1:
            raise RuntimeError(f"{what}: emulator fault: {self.lib.emu_fault().decode()}")
        if code != 0:
            raise RuntimeError(f"{what}: cudaError_t {code}")

    def launches(self) -> int:
        """Kernel launches run so far in this process."""
        return self.lib.emu_launches()

    def cell_node(self, xs, ys, weights, gamma, beta, running_mean, running_var, batch_stats: bool, eps: float,
                  order: int = ASCENDING):
        """cell_node forward through the CUDA launcher: (out, mean, var)."""
        xs = [_plane_contiguous(x) for x in xs]
        ys = [_plane_contiguous(y) for y in ys]
        acc = _acc(xs[0].dtype)
        small = [None if t is None else t.to(acc).contiguous()
                 for t in (weights, gamma, beta, None if batch_stats else running_mean,
                           None if batch_stats else running_var)]
        out = torch.empty(xs[0].shape, dtype=xs[0].dtype)
        mean = torch.empty(len(ys), xs[0].shape[1], dtype=acc)
        var = torch.empty_like(mean)
        code = self.lib.emu_cell_node_forward(
            ctypes.c_int(order), ctypes.c_int(DTYPES[xs[0].dtype]), ctypes.c_int(len(xs)), _int64s(_shape4(xs[0])),
            _pointers(xs), _int64s([_batch_stride(x) for x in xs]), _pointers(ys),
            _int64s([_batch_stride(y) for y in ys]), *[_ptr(t) for t in small], ctypes.c_int(int(batch_stats)),
            ctypes.c_double(eps), _ptr(out), _ptr(mean), _ptr(var))
        self._check(code, "cell_node")
        return out, mean, var

    def cell_node_backward(self, grad, xs, ys, weights, gamma, beta, mean, var, batch_stats: bool, eps: float,
                           order: int = ASCENDING):
        """cell_node backward through the CUDA launcher: (grad_inputs, grad_convs, grad_w, grad_gamma, grad_beta)."""
        xs = [_plane_contiguous(x) for x in xs]
        ys = [_plane_contiguous(y) for y in ys]
        acc = _acc(xs[0].dtype)
        w, g, b = [None if t is None else t.to(acc).contiguous() for t in (weights, gamma, beta)]
        grad_x = [torch.empty(xs[0].shape, dtype=xs[0].dtype) for _ in xs]
        grad_y = [torch.empty(xs[0].shape, dtype=xs[0].dtype) for _ in ys]
        grad_w = torch.empty(len(xs), 5, dtype=acc)
        grad_gamma = torch.empty(len(ys), xs[0].shape[1], dtype=acc)
        grad_beta = torch.empty_like(grad_gamma)
        code = self.lib.emu_cell_node_backward(
            ctypes.c_int(order), ctypes.c_int(DTYPES[xs[0].dtype]), ctypes.c_int(len(xs)), _int64s(_shape4(xs[0])),
            _pointers(xs), _int64s([_batch_stride(x) for x in xs]), _pointers(ys),
            _int64s([_batch_stride(y) for y in ys]), _ptr(w), _ptr(g), _ptr(b), ctypes.c_int(int(batch_stats)),
            ctypes.c_double(eps), _ptr(grad.contiguous()), _ptr(mean.to(acc).contiguous()),
            _ptr(var.to(acc).contiguous()), _pointers(grad_x), _pointers(grad_y), _ptr(grad_w), _ptr(grad_gamma),
            _ptr(grad_beta))
        self._check(code, "cell_node_backward")
        # As the glue: the small gradients in the dtype of what they are gradients of.
        bn_dtype = gamma.dtype if gamma is not None else mean.dtype
        return grad_x, grad_y, grad_w.to(weights.dtype), grad_gamma.to(bn_dtype), grad_beta.to(bn_dtype)

    def mixed_sum(self, xs, weights, order: int = ASCENDING) -> torch.Tensor:
        """mixed_sum forward through the CUDA launcher."""
        xs = [x.contiguous() for x in xs]
        out = torch.empty_like(xs[0])
        code = self.lib.emu_mixed_sum_forward(ctypes.c_int(order), ctypes.c_int(DTYPES[xs[0].dtype]),
                                              ctypes.c_int(len(xs)), _pointers(xs), _ptr(weights.contiguous()),
                                              _ptr(out), ctypes.c_int64(out.numel()))
        self._check(code, "mixed_sum")
        return out

    def mixed_sum_backward(self, grad, xs, weights, order: int = ASCENDING) -> torch.Tensor:
        """The architecture-weight gradient of mixed_sum: per-block partials from the kernel, summed as the glue does."""
        xs = [x.contiguous() for x in xs]
        grad = grad.contiguous()
        blocks = self.lib.emu_mixed_sum_backward_blocks(grad.numel())
        partials = torch.empty(blocks, len(xs), dtype=_acc(grad.dtype))
        code = self.lib.emu_mixed_sum_backward_partials(ctypes.c_int(order), ctypes.c_int(DTYPES[grad.dtype]),
                                                        _ptr(grad), ctypes.c_int(len(xs)), _pointers(xs),
                                                        _ptr(partials), ctypes.c_int64(grad.numel()))
        self._check(code, "mixed_sum_backward")
        return partials.sum(0).to(weights.dtype)


def override_cpu_kernels(kernels: EmulatedKernels, order: int = ASCENDING):
    """A torch.library registration that sends the nb360 ops' CPU calls to the emulated CUDA kernels.

    Call ``._destroy()`` on the result to restore the C++ CPU kernels. Everything above the ops (the
    supernet's fused path, autograd, optimizers) then runs unchanged on the CUDA device code.
    """
    import warnings

    lib = torch.library.Library("nb360", "IMPL")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "overriding a previously registered kernel": that is the point
        lib.impl("cell_node", lambda *a: kernels.cell_node(*a, order=order), "CPU")
        lib.impl("cell_node_backward", lambda *a: tuple(kernels.cell_node_backward(*a, order=order)), "CPU")
        lib.impl("mixed_sum", lambda xs, w: kernels.mixed_sum(xs, w, order=order), "CPU")
        lib.impl("mixed_sum_backward", lambda g, xs, w: kernels.mixed_sum_backward(g, xs, w, order=order), "CPU")
    return lib
