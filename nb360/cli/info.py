"""`nb360 info`: version, compiled backends actually loaded, torch/CUDA versions, visible GPUs."""

from __future__ import annotations

import argparse
import json
from typing import Any

from . import add_common_options


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `info` subcommand."""
    parser = subparsers.add_parser(
        "info", help="show version, loaded compiled backends, torch/CUDA and GPUs",
        description="Show nb360's version, which compiled backends are actually loaded (_table, the _C CPU ops, "
                    "the _C CUDA ops and the GPU architectures they were built for), the torch and CUDA versions, "
                    "and whether a GPU is visible.")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    add_common_options(parser)
    parser.set_defaults(func=run)


def _status(backend: dict[str, Any]) -> str:
    if backend.get("loaded"):
        return "loaded"
    return "NOT loaded" + (f" ({backend['error']})" if backend.get("error") else "")


def render(facts: dict[str, Any]) -> str:
    """Render the facts from nb360.info.collect() for humans."""
    b = facts["backends"]
    cuda = b["_C_cuda"]
    if cuda.get("loaded"):
        cuda_line = f"loaded (CUDA {cuda['cuda_version']}, archs {', '.join(cuda['archs'])})"
    elif cuda.get("built"):
        cuda_line = f"built for CUDA {cuda.get('cuda_version')} but NOT loaded"
    else:
        cuda_line = "not built (needs nvcc and a CUDA build of torch at build time)"
    t = facts["torch"]
    lines = [
        f"nb360 {facts['version']} (Python {facts['python']}, {facts['platform']})",
        "compiled backends:",
        f"  _table          {_status(b['_table'])}",
        f"  _C (CPU ops)    {_status(b['_C_cpu'])}" + (f": {len(b['_C_cpu']['ops'])} ops" if b['_C_cpu'].get('loaded') else ""),
        f"  _C (CUDA ops)   {cuda_line}",
    ]
    if t["installed"]:
        lines += [
            f"torch            {t['version']} (CUDA {t['cuda'] or 'none'}, cuDNN {t['cudnn'] or 'none'}, "
            f"{t['threads']} CPU threads)",
            f"GPU              {', '.join(t['gpus']) if t['gpu_visible'] else 'none visible'}",
        ]
    else:
        lines.append("torch            not installed")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Print the installation facts."""
    from ..info import collect

    facts = collect()
    print(json.dumps(facts, indent=2) if args.json else render(facts))
    return 0
