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


def _pixel_stride(t: torch.Tensor) -> int:
    """As pixel_stride in csrc/ops/cell_node_kernels.cpp: elements between neighbouring pixels."""
    if t.shape[-1] > 1:
        return t.stride(-1)
    if t.dim() == 4 and t.shape[2] > 1:
        return t.stride(2)
    return t.shape[1]


def _strides(t: torch.Tensor) -> list[int]:
    """(sN, sC, sP) of an activation operand, as the glue passes them (0 for a dimension of size 1)."""
    return [t.stride(0) if t.shape[0] > 1 else 0, t.stride(1) if t.shape[1] > 1 else 0, _pixel_stride(t)]


def _all_strides(tensors) -> ctypes.Array:
    return _int64s([v for t in tensors for v in _strides(t)])


def is_channels_last_view(t: torch.Tensor) -> bool:
    """As is_channels_last_view in csrc/ops/cell_node_kernels.cpp."""
    if t.dim() not in (3, 4) or (t.shape[1] > 1 and t.stride(1) != 1):
        return False
    p, w, h = _pixel_stride(t), t.shape[-1], t.shape[2] if t.dim() == 4 else 1
    if h * w > 1 and p < t.shape[1]:
        return False
    return not (h > 1 and w > 1 and t.stride(2) != w * p)


def empty_channels_last(t: torch.Tensor) -> torch.Tensor:
    """An uninitialised channels-last tensor shaped like t, as the C++ helper of that name."""
    if t.dim() == 4:
        return torch.empty(t.shape, dtype=t.dtype, memory_format=torch.channels_last)
    return torch.empty((t.shape[0], t.shape[2], t.shape[1]), dtype=t.dtype).transpose(1, 2)


def as_channels_last_view(t: torch.Tensor) -> torch.Tensor:
    """t when it is a channels-last view, else a channels-last copy (as the public ops' glue does)."""
    if is_channels_last_view(t):
        return t
    out = empty_channels_last(t)
    out.copy_(t)
    return out


def _format_of(t: torch.Tensor) -> torch.memory_format:
    return torch.channels_last if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last) \
        else torch.contiguous_format


def _prefers_channels_last(t: torch.Tensor) -> bool:
    from nb360.ops.cell_node import prefers_channels_last

    return prefers_channels_last(t)


def _shape4(t: torch.Tensor) -> list[int]:
    return [t.shape[0], t.shape[1], 1, t.shape[2]] if t.dim() == 3 else list(t.shape)


class EmulatedKernels:
    """nb360's CUDA launchers run on the host emulator, wrapped like the torch glue wraps them."""

    def __init__(self, library: ctypes.CDLL):
        self.lib = library
        self.lib.emu_fault.restype = ctypes.c_char_p
        self.lib.emu_launches.restype = ctypes.c_long
        for name in ("emu_cell_node_forward", "emu_cell_node_backward", "emu_channel_stats", "emu_relu_backward_add",
                     "emu_mixed_sum_forward", "emu_mixed_sum_backward_partials", "emu_mixed_sum_backward_blocks"):
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

    # ---- the node kernels' internal ops (nb360::_cell_node_forward etc.), as csrc/ops/cuda/cell_node.cu calls them

    def cell_node_forward_into(self, inputs, convs, conv_bias, weights, gamma, beta, mean, var, batch_stats: bool,
                               eps: float, out, relu_out=None, order: int = ASCENDING):
        """nb360::_cell_node_forward through the CUDA launcher: writes out (and relu_out); returns (mean, var)."""
        acc = _acc(inputs[0].dtype)
        small = [None if t is None else t.to(acc).contiguous()
                 for t in (weights, gamma, beta, None if batch_stats else mean, None if batch_stats else var,
                           conv_bias)]
        mean_out = torch.empty(len(convs), inputs[0].shape[1], dtype=acc)
        var_out = torch.empty_like(mean_out)
        channels_last = inputs[0].shape[1] > 1 and out.stride(1) == 1
        code = self.lib.emu_cell_node_forward(
            ctypes.c_int(order), ctypes.c_int(DTYPES[inputs[0].dtype]), ctypes.c_int(len(inputs)),
            _int64s(_shape4(inputs[0])), _pointers(inputs), _all_strides(inputs), _pointers(convs),
            _all_strides(convs), _ptr(small[5]), ctypes.c_int(int(channels_last)), *[_ptr(t) for t in small[:5]],
            ctypes.c_int(int(batch_stats)), ctypes.c_double(eps), _ptr(out), _int64s(_strides(out)), _ptr(relu_out),
            _int64s(_strides(relu_out)) if relu_out is not None else None, _ptr(mean_out), _ptr(var_out))
        self._check(code, "cell_node")
        return mean_out, var_out

    def cell_node_backward_into(self, grad, inputs, convs, conv_bias, weights, gamma, beta, mean, var,
                                batch_stats: bool, eps: float, grad_inputs, input_modes, grad_convs,
                                order: int = ASCENDING):
        """nb360::_cell_node_backward through the CUDA launcher: writes the activation gradients in place (an
        entry of no elements is skipped), returns (grad_weights, grad_gamma, grad_beta, grad_conv_bias,
        coefficients)."""
        acc = _acc(inputs[0].dtype)
        w, g, b, bias = [None if t is None else t.to(acc).contiguous() for t in (weights, gamma, beta, conv_bias)]
        C = inputs[0].shape[1]
        grad_w = torch.empty(len(inputs), 5, dtype=acc)
        grad_gamma, grad_beta, grad_bias = (torch.empty(len(convs), C, dtype=acc) for _ in range(3))
        coefficients = torch.empty(3, len(convs), C, dtype=acc)
        live = [t if m else inputs[0] for t, m in zip(grad_inputs, input_modes)]  # skipped ones are not read
        skipped = [t.numel() == 0 and inputs[0].numel() > 0 for t in grad_convs]
        written = [inputs[0] if s else t for t, s in zip(grad_convs, skipped)]
        conv_ptrs = (ctypes.c_void_p * len(written))(*[None if s else t.data_ptr() for t, s in zip(written, skipped)])
        code = self.lib.emu_cell_node_backward(
            ctypes.c_int(order), ctypes.c_int(DTYPES[inputs[0].dtype]), ctypes.c_int(len(inputs)),
            _int64s(_shape4(inputs[0])), _pointers(inputs), _all_strides(inputs), _pointers(convs),
            _all_strides(convs), _ptr(bias), ctypes.c_int(int(C > 1 and written[0].stride(1) == 1)), _ptr(w),
            _ptr(g), _ptr(b), ctypes.c_int(int(batch_stats)), ctypes.c_double(eps), _ptr(grad),
            _int64s(_strides(grad)), _ptr(mean.to(acc).contiguous()), _ptr(var.to(acc).contiguous()),
            _pointers(live), _all_strides(live), (ctypes.c_int * len(input_modes))(*input_modes),
            conv_ptrs, _all_strides(written), _ptr(grad_w), _ptr(grad_gamma), _ptr(grad_beta),
            _ptr(grad_bias), _ptr(coefficients))
        self._check(code, "cell_node_backward")
        # As the glue: the small gradients in the dtype of what they are gradients of.
        bn_dtype = gamma.dtype if gamma is not None else mean.dtype
        bias_dtype = conv_bias.dtype if conv_bias is not None else mean.dtype
        return (grad_w.to(weights.dtype), grad_gamma.to(bn_dtype), grad_beta.to(bn_dtype), grad_bias.to(bias_dtype),
                coefficients)

    def channel_stats(self, y, bias=None, order: int = ASCENDING):
        """nb360::_channel_stats through the CUDA launcher: (mean, var) of every channel of y (+ bias)."""
        acc = _acc(y.dtype)
        mean = torch.empty(y.shape[1], dtype=acc)
        var = torch.empty_like(mean)
        code = self.lib.emu_channel_stats(ctypes.c_int(order), ctypes.c_int(DTYPES[y.dtype]), _int64s(_shape4(y)),
                                          _ptr(y), _int64s(_strides(y)),
                                          _ptr(None if bias is None else bias.to(acc).contiguous()), _ptr(mean),
                                          _ptr(var))
        self._check(code, "channel_stats")
        return mean, var

    def relu_backward_add(self, dst, src, add, order: int = ASCENDING) -> None:
        """nb360::_relu_backward_add: the CUDA kernel for tensors of one dense layout, else ATen (as the glue)."""
        if not (dst.shape == src.shape == add.shape and dst.stride() == src.stride() == add.stride()
                and dst.dtype == src.dtype == add.dtype and dst.is_contiguous(memory_format=_format_of(dst))):
            dst.add_(torch.ops.aten.threshold_backward(add, src, 0))
            return
        code = self.lib.emu_relu_backward_add(ctypes.c_int(order), ctypes.c_int(DTYPES[dst.dtype]), _ptr(dst),
                                              _ptr(src), _ptr(add), ctypes.c_int64(dst.numel()))
        self._check(code, "relu_backward_add")

    # ---- the public ops, as the device-generic implementations in csrc/ops/cell_node.cpp build them

    def cell_node(self, xs, ys, weights, gamma, beta, running_mean, running_var, batch_stats: bool, eps: float,
                  order: int = ASCENDING):
        """cell_node forward through the CUDA launcher: (out, mean, var)."""
        out = empty_channels_last(xs[0])
        mean, var = self.cell_node_forward_into([as_channels_last_view(x) for x in xs],
                                                [as_channels_last_view(y) for y in ys], None, weights, gamma, beta,
                                                running_mean, running_var, batch_stats, eps, out, order=order)
        return (out if _prefers_channels_last(xs[0]) else out.contiguous()), mean, var

    def cell_node_backward(self, grad, xs, ys, weights, gamma, beta, mean, var, batch_stats: bool, eps: float,
                           order: int = ASCENDING):
        """cell_node backward through the CUDA launcher: (grad_inputs, grad_convs, grad_w, grad_gamma, grad_beta)."""
        grad_x = [empty_channels_last(xs[0]) for _ in xs]
        grad_y = [empty_channels_last(xs[0]) for _ in ys]
        gw, gg, gb, _, _ = self.cell_node_backward_into(as_channels_last_view(grad), [as_channels_last_view(x) for x in xs],
                                                     [as_channels_last_view(y) for y in ys], None, weights, gamma, beta,
                                                     mean, var, batch_stats, eps, grad_x, [1] * len(xs), grad_y,
                                                     order=order)
        cl = _prefers_channels_last(xs[0])
        return ([t if cl else t.contiguous() for t in grad_x], [t if cl else t.contiguous() for t in grad_y], gw, gg,
                gb)

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
    """A torch.library registration that sends the nb360 node kernels' CPU calls to the emulated CUDA kernels.

    It overrides the internal ops the device-generic C++ (the public cell_node ops and the whole-cell
    search_cell) calls through the dispatcher, and mixed_sum. Call ``._destroy()`` on the result to restore
    the C++ CPU kernels. Everything above them (search_cell's convolutions and gradient bookkeeping, the
    supernet, autograd, optimizers) then runs unchanged on the CUDA device code.
    """
    import warnings

    lib = torch.library.Library("nb360", "IMPL")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "overriding a previously registered kernel": that is the point
        lib.impl("_cell_node_forward", lambda *a: kernels.cell_node_forward_into(*a, order=order), "CPU")
        lib.impl("_cell_node_backward", lambda *a: kernels.cell_node_backward_into(*a, order=order), "CPU")
        lib.impl("_channel_stats", lambda y, bias: kernels.channel_stats(y, bias, order=order), "CPU")
        lib.impl("_relu_backward_add", lambda d, s, a: kernels.relu_backward_add(d, s, a, order=order), "CPU")
        lib.impl("mixed_sum", lambda xs, w: kernels.mixed_sum(xs, w, order=order), "CPU")
        lib.impl("mixed_sum_backward", lambda g, xs, w: kernels.mixed_sum_backward(g, xs, w, order=order), "CPU")
    return lib
