#!/usr/bin/env python3
"""Self-check of an installed nb360: the build is the one pinned, the ops run, and a real table imports and answers.

Run by docker/smoke.sh inside an image (`python /opt/nb360/selfcheck.py`), by cibuildwheel's test step on
each built wheel, and by tests/test_docker.py outside Docker. Exit status 0 when every check passes, 1 when
one fails (each check prints one `ok`/`FAIL` line).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
# The real NATS-Bench fixture (3 architectures) that ships with nb360's tests; images copy it next to this file.
DEFAULT_DATA = HERE / "selfcheck-data" / "nats-tss-v1_0-3ffb9-simple"
# Architecture 11 of NAS-Bench-201, recorded in the fixture for cifar100 (seed 777, 200 epochs).
ARCH_11 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|"


def nb360_command() -> str:
    """The `nb360` entry point of the interpreter running this script (else the one on PATH)."""
    beside = Path(sys.executable).parent / "nb360"
    found = str(beside) if beside.exists() else shutil.which("nb360")
    if not found:
        raise RuntimeError("no `nb360` command next to this python or on PATH")
    return found


def run_nb360(*args: str) -> str:
    """Run the nb360 CLI and return its stdout; raise with its stderr when it fails."""
    proc = subprocess.run([nb360_command(), *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"`nb360 {' '.join(args)}` exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def check_build(info: dict[str, Any], expect_cuda: str, expect_archs: str) -> str:
    """The compiled backends loaded, and the CUDA build is the one this image/wheel pins."""
    backends = info["backends"]
    assert backends["_table"]["loaded"], f"nb360._table did not load: {backends['_table']}"
    assert backends["_C_cpu"]["loaded"], f"nb360._C did not load: {backends['_C_cpu']}"
    cuda = backends["_C_cuda"]
    torch_cuda = info["torch"].get("cuda")
    if expect_cuda in ("", "any"):
        return f"CUDA ops built: {cuda['built']} (not checked)"
    if expect_cuda == "none":
        assert not cuda["built"], f"expected a CPU-only build, but CUDA ops were built: {cuda}"
        assert torch_cuda is None, f"expected a CPU build of torch, got CUDA {torch_cuda}"
        return "CPU-only build, CPU torch"
    assert cuda["built"] and cuda["loaded"], f"expected CUDA {expect_cuda} ops, got {cuda}"
    assert cuda["cuda_version"] == expect_cuda, f"CUDA ops built with CUDA {cuda['cuda_version']}, expected {expect_cuda}"
    assert torch_cuda == expect_cuda, f"torch is built for CUDA {torch_cuda}, expected {expect_cuda}"
    if expect_archs:
        want = [a for a in expect_archs.replace(",", ";").split(";") if a]
        assert cuda["archs"] == want, f"CUDA ops built for {cuda['archs']}, expected {want}"
    return f"CUDA {cuda['cuda_version']} ops for sm {', '.join(cuda['archs'])}; torch {info['torch']['version']}"


def check_ops_cpu() -> str:
    """nb360.ops.mixed_sum on the CPU equals the weighted sum computed by hand."""
    import torch

    import nb360.ops

    xs = [torch.full((4,), float(i)) for i in range(3)]
    out = nb360.ops.mixed_sum(xs, torch.tensor([1.0, 2.0, 3.0]))
    assert torch.equal(out, torch.full((4,), 8.0)), f"mixed_sum gave {out.tolist()}, expected 8.0 everywhere"
    return "mixed_sum on CPU = 0*1 + 1*2 + 2*3"


def gpu_visible(require_gpu: bool) -> bool:
    """Whether a CUDA GPU is visible; its absence is an error only when a GPU is required."""
    import torch

    if not torch.cuda.is_available() and require_gpu:
        raise AssertionError("no CUDA GPU is visible (run the container with --gpus all)")
    return torch.cuda.is_available()


def check_ops_gpu(require_gpu: bool) -> str:
    """With a visible GPU, the CUDA kernel agrees with the CPU kernel; without one, fail only when a GPU is required."""
    import torch

    import nb360.ops

    if not gpu_visible(require_gpu):
        return "no GPU visible: CUDA kernels not run"
    gen = torch.Generator().manual_seed(0)
    xs = [torch.randn(64, 32, generator=gen) for _ in range(5)]
    weights = torch.softmax(torch.randn(5, generator=gen), 0)
    cpu = nb360.ops.mixed_sum(xs, weights)
    gpu = nb360.ops.mixed_sum([x.cuda() for x in xs], weights.cuda()).cpu()
    torch.testing.assert_close(gpu, cpu, rtol=1e-5, atol=1e-6)
    return f"mixed_sum on {torch.cuda.get_device_name(0)} matches the CPU kernel"


def check_cell_node_gpu(require_gpu: bool) -> str:
    """With a visible GPU, the fused cell_node CUDA kernel matches its plain-PyTorch reference, values and gradients."""
    import torch

    from nb360.ops import cell_node, cell_node_reference

    if not gpu_visible(require_gpu):
        return "no GPU visible: fused cell kernel not run"
    gen = torch.Generator().manual_seed(0)
    k, shape = 3, (4, 8, 9, 9)  # SYNTHETIC operands: k source nodes and their 2k conv outputs
    xs = [torch.randn(shape, generator=gen).cuda() for _ in range(k)]
    ys = [torch.randn(shape, generator=gen).cuda() for _ in range(2 * k)]
    weights = torch.softmax(torch.randn(k, 5, generator=gen), -1).cuda().requires_grad_(True)
    fused, reference = cell_node(xs, ys, weights)[0], cell_node_reference(xs, ys, weights)[0]
    torch.testing.assert_close(fused, reference, rtol=1e-4, atol=1e-5)
    grad = torch.randn_like(reference)
    (g_fused,) = torch.autograd.grad(fused, weights, grad)
    (g_reference,) = torch.autograd.grad(reference, weights, grad)
    torch.testing.assert_close(g_fused, g_reference, rtol=1e-4, atol=1e-4)
    return f"cell_node on {torch.cuda.get_device_name(0)} matches the reference (values, weight gradients)"


def check_embedded_table() -> str:
    """The table shipped inside nb360 opens and answers (what `nb360 run` searches)."""
    from nb360.table import Table
    from nb360.table.embedded import embedded_table_path

    table = Table.open(embedded_table_path())
    hp = max({r.hp for r in table.runs}, key=int)
    index, value = table.best("ori-test-rel_l2", hp=hp, mode="min")  # the mean over the recorded seeds
    assert len(table.archs()) > 0 and math.isfinite(value) and 0.0 < value < 1.0, (index, value)
    return f"embedded {table.tasks[0]} table (hp {hp}, seed mean): best ori-test-rel_l2 {value:.4f} at arch {index}"


def check_table(data: Path) -> str:
    """`nb360 table import` converts the real NATS-Bench fixture and `nb360 table query` reads it back."""
    if not (data / "meta.pickle.pbz2").is_file():
        raise AssertionError(f"self-check data not found: {data} (pass --data DIR)")
    with tempfile.TemporaryDirectory(prefix="nb360-selfcheck-") as tmp:
        table = Path(tmp) / "fixture.h5"
        run_nb360("table", "import", str(data), "-o", str(table), "--tasks", "cifar100")
        answer = json.loads(run_nb360("table", "query", str(table), ARCH_11, "--task", "cifar100",
                                      "--metric", "x-valid-accuracy", "--seed", "777", "--json"))
    value = answer["values"]["x-valid-accuracy"]
    assert answer["index"] == 11 and answer["epoch"] == 199, answer
    assert value is not None and math.isfinite(value) and 0.0 < value < 100.0, f"implausible accuracy {value}"
    return f"arch 11 on cifar100 (seed 777, epoch 199): x-valid-accuracy {value:.4f}"


def main(argv: list[str] | None = None) -> int:
    """Run every check, print one line each, return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--expect-cuda", default=os.environ.get("NB360_EXPECT_CUDA", ""),
                        help="CUDA version the build must have (e.g. 12.8), 'none' for CPU-only, '' not to check "
                             "(default: $NB360_EXPECT_CUDA)")
    parser.add_argument("--expect-archs", default=os.environ.get("NB360_EXPECT_CUDA_ARCHS", ""),
                        help="GPU architectures the CUDA ops must be built for, e.g. '80;86;89;90' "
                             "(default: $NB360_EXPECT_CUDA_ARCHS)")
    parser.add_argument("--require-gpu", action="store_true", default=os.environ.get("NB360_REQUIRE_GPU") == "1",
                        help="fail when no GPU is visible (default: $NB360_REQUIRE_GPU=1)")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("NB360_SELFCHECK_DATA", DEFAULT_DATA)),
                        help="the NATS-Bench fixture directory (default: %(default)s)")
    args = parser.parse_args(argv)

    info = json.loads(run_nb360("info", "--json"))
    print(f"nb360 {info['version']}, python {info['python']}, torch {info['torch'].get('version')}")
    checks: list[tuple[str, Callable[[], str]]] = [
        ("build", lambda: check_build(info, args.expect_cuda, args.expect_archs)),
        ("ops-cpu", check_ops_cpu),
        ("ops-gpu", lambda: check_ops_gpu(args.require_gpu)),
        ("cell-gpu", lambda: check_cell_node_gpu(args.require_gpu)),
        ("table", lambda: check_table(args.data)),
        ("embedded", check_embedded_table),
    ]
    failed = 0
    for name, check in checks:
        try:
            print(f"ok    {name:<8} {check()}")
        except Exception as exc:  # a self-check reports every failure, then exits 1
            failed += 1
            print(f"FAIL  {name:<8} {type(exc).__name__}: {exc}")
    print("self-check passed" if not failed else f"self-check FAILED ({failed} of {len(checks)} checks)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
